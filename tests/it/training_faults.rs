//! Training faults, for real, through the CLI on the committed sample: `kill -9` at random
//! moments never leaves a half-written file under a real name and `--resume` finishes a valid
//! model; a full disk or a read-only artifact directory is refused before any training.
//!
//! The disk tests mount a small or read-only tmpfs inside a user namespace (`unshare -rm`, from
//! util-linux). Where that cannot work, they say so on stderr and pass, except under `CI=true`,
//! where they fail.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use digitnet::model::Preset;
use digitnet::train::artifacts::names;
use digitnet::train::read_metrics_csv;
use digitnet::train::{TrainingConfig, model_io};

const BIN: &str = env!("CARGO_BIN_EXE_digitnet");

fn train_args(artifacts: &Path) -> Vec<String> {
    [
        "train",
        "--preset",
        "cnn-b",
        "--epochs",
        "6",
        "--limit-train",
        "1280",
        "--validation-size",
        "200",
        "--progress",
        "quiet",
        "--offline",
        "--no-verify",
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        common::sample_dir().display().to_string(),
        "--artifacts".into(),
        artifacts.display().to_string(),
    ])
    .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir` with its path relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Checks that every file under its real name is complete: it parses or loads.
fn assert_every_file_complete(dir: &Path, context: &str) {
    for path in files(dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".digitnet-") {
            continue; // a temporary file: never read, removed by the next run
        }
        let bytes = std::fs::read(&path).unwrap();
        let ok = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                model_io::parse_config(&text(&bytes), &path).is_ok() || name != names::CONFIG
            }
            Some("csv") => read_metrics_csv(&path).is_ok(),
            Some("mpk") => rmp_serde::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok(),
            Some("safetensors") => {
                let config = TrainingConfig::for_preset(Preset::CnnB);
                model_io::load_weights::<digitnet::backend::NdArray>(
                    &config,
                    &path,
                    &Default::default(),
                )
                .is_ok()
            }
            Some("png") => image::load_from_memory(&bytes).is_ok(),
            _ => true,
        };
        assert!(ok, "{context}: {} is incomplete", path.display());
    }
}

/// A seed from the clock, printed so that a failure can be replayed with DIGITNET_KILL_SEED.
fn seed() -> u64 {
    std::env::var("DIGITNET_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                .into()
        })
}

#[test]
fn kill_9_at_random_moments_then_resume_gives_a_valid_model() {
    // How long a whole run takes here, to pick moments inside it.
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(train_args(&reference))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let whole = started.elapsed();

    let mut state = seed();
    eprintln!("kill moments from seed {state} (replay: DIGITNET_KILL_SEED={state})");
    let artifacts = dir.path().join("run");
    let mut kills = Vec::new();
    for round in 0..4 {
        // xorshift: a moment between 1% and 60% of a whole run (a resumed run has less to do),
        // so some kills land before the first checkpoint.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let fraction = 0.01 + 0.59 * (state % 1000) as f64 / 1000.0;
        let moment = whole.mul_f64(fraction);
        // After the first round, always `--resume`, whatever the kill left (a checkpoint or not).
        let resume = round > 0;
        let mut args = train_args(&artifacts);
        if resume {
            args.push("--resume".into());
        }
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(moment);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills.push(format!(
            "round {round}: {} at {moment:?}{}",
            if resume { "resume" } else { "fresh run" },
            if finished { " (had finished)" } else { "" }
        ));
        assert_every_file_complete(&artifacts, &kills.join("; "));
    }

    eprintln!("whole run {whole:?}; {kills:#?}");
    // Finish with `--resume`: from the last checkpoint, or afresh when the kills came before one.
    let mut args = train_args(&artifacts);
    args.push("--resume".into());
    let out = Command::new(BIN).args(&args).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{kills:?}: {stderr}");
    assert_every_file_complete(&artifacts, "after the final run");
    let leftovers: Vec<_> = files(&artifacts)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".digitnet-")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let epochs: Vec<usize> = read_metrics_csv(&artifacts.join(names::METRICS))
        .unwrap()
        .iter()
        .map(|r| r.epoch)
        .collect();
    assert_eq!(epochs, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6], "{kills:?}");
    let accuracy: f64 = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy: "))
        .unwrap_or_else(|| panic!("no test accuracy: {}", text(&out.stdout)))
        .parse()
        .unwrap();
    println!("cnn-b, 6 epochs of 1280 images, killed 4 times: test accuracy {accuracy}");
    // Measured 0.911; the bar is a few points below.
    assert!(accuracy > 0.87, "{kills:?}: test accuracy {accuracy}");
}

/// Whether a tmpfs can be mounted in a private user namespace here (`unshare -rm`).
fn mount_available() -> bool {
    let dir = tempfile::tempdir().unwrap();
    common::tool_available(
        "mounting a tmpfs in a user namespace (unshare -rm)",
        Command::new("unshare")
            .args(["-rm", "mount", "-t", "tmpfs", "digitnet-probe"])
            .arg(dir.path()),
        "it needs util-linux's unshare and unprivileged user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1)",
    )
}

/// Runs `digitnet train` with its artifact directory on a fresh tmpfs mounted with `options`,
/// inside a private user and mount namespace.
fn train_on_tmpfs(options: &str) -> (Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("mnt");
    std::fs::create_dir(&mount).unwrap();
    let script = r#"mount -t tmpfs -o "$1" digitnet-test "$2" && shift 2 && exec "$@""#;
    let started = Instant::now();
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh", options])
        .arg(&mount)
        .arg(BIN)
        .args(train_args(&mount.join("run")))
        .output()
        .expect("running unshare (util-linux)");
    (out, started.elapsed())
}

#[test]
fn a_full_disk_is_refused_before_training() {
    if !mount_available() {
        return;
    }
    let (out, took) = train_on_tmpfs("size=1m");
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("mount:") && !stderr.contains("unshare:"),
        "could not mount: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not enough free disk space"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!text(&out.stdout).contains("test accuracy"));
    assert!(
        took < Duration::from_secs(60),
        "refused only after {took:?}"
    );
}

#[test]
fn a_read_only_artifact_dir_is_refused_before_training() {
    if !mount_available() {
        return;
    }
    let (out, _) = train_on_tmpfs("ro");
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("mount:") && !stderr.contains("unshare:"),
        "could not mount: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Read-only file system") && stderr.contains("run"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
