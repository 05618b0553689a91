//! `digitnet train`, `eval` and `predict` as a user runs them, on the committed sample: a run
//! killed during epoch 2 and resumed ends with both epochs and a valid model; eval and predict
//! read the artifacts; a broken record is a clear error.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use digitnet::train::artifacts::names;

fn digitnet() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_digitnet"));
    cmd.env_remove("DIGITNET_DATA_DIR")
        .env_remove("DIGITNET_MIRRORS")
        .env(
            "DIGITNET_CACHE_DIR",
            std::env::temp_dir().join("digitnet-cli-test-cache"),
        );
    cmd
}

fn sample_args() -> Vec<String> {
    vec![
        "--data-dir".into(),
        common::sample_dir().display().to_string(),
        "--offline".into(),
        "--no-verify".into(),
    ]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn epochs_in_metrics(dir: &Path) -> Vec<(usize, String)> {
    let csv = std::fs::read_to_string(dir.join(names::METRICS)).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().to_string(),
            )
        })
        .collect()
}

fn accuracy_line(out: &Output, split: &str) -> f64 {
    let stdout = text(&out.stdout);
    let prefix = format!("{split} accuracy: ");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' line in:\n{stdout}\n{}", text(&out.stderr)));
    line[prefix.len()..].parse().unwrap()
}

#[test]
fn killed_run_resumes_to_the_full_epoch_count_then_eval_and_predict_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("run");
    let mut train = digitnet();
    train
        .args([
            "train",
            "--epochs",
            "2",
            "--limit-train",
            "640",
            "--progress",
            "lines",
        ])
        .arg("--artifacts")
        .arg(&artifacts)
        .args(sample_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = train.spawn().unwrap();
    // Kill the run as soon as epoch 2 has started (epoch 1 is then checkpointed).
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let started_epoch_2 = line.starts_with("train epoch 2/2");
        seen.push(line);
        if started_epoch_2 {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert!(
        seen.iter().any(|l| l.starts_with("train epoch 2/2")),
        "run ended before epoch 2: {seen:#?}"
    );
    assert!(
        !artifacts.join(names::MODEL).exists(),
        "the killed run saved a final model"
    );

    let out = digitnet()
        .args(["train", "--resume", "--progress", "quiet"])
        .arg("--artifacts")
        .arg(&artifacts)
        .args(sample_args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("epoch 2/2"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("epoch 1/2"),
        "epoch 1 ran again"
    );
    let epochs = epochs_in_metrics(&artifacts);
    assert_eq!(
        epochs,
        vec![
            (1, "train".into()),
            (1, "valid".into()),
            (2, "train".into()),
            (2, "valid".into())
        ]
    );
    let test_accuracy = accuracy_line(&out, "test");
    assert!(test_accuracy > 0.5, "test accuracy {test_accuracy}");
    for name in [
        names::MODEL,
        names::SAFETENSORS,
        names::LOSS_PLOT,
        names::ACCURACY_PLOT,
        names::CONFUSION_PLOT,
        names::ERRORS_GRID,
    ] {
        let bytes = std::fs::read(artifacts.join(name)).unwrap_or_default();
        assert!(bytes.len() > 100, "{name} missing or empty");
    }
    let curve = image::open(artifacts.join(names::LOSS_PLOT)).unwrap();
    assert_eq!((curve.width(), curve.height()), (800, 500));

    // eval reproduces the accuracy train printed.
    let out = digitnet()
        .arg("eval")
        .arg("--artifacts")
        .arg(&artifacts)
        .args(sample_args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(accuracy_line(&out, "test"), test_accuracy);

    // predict prints one line per image: <file> <digit> <probability>.
    let raw = common::sample_raw("t10k-images-idx3-ubyte");
    let png = dir.path().join("digit.png");
    image::GrayImage::from_raw(28, 28, raw[16..16 + 784].to_vec())
        .unwrap()
        .save(&png)
        .unwrap();
    let out = digitnet()
        .arg("predict")
        .arg("--artifacts")
        .arg(&artifacts)
        .arg(&png)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let fields: Vec<&str> = stdout.trim().split(' ').collect();
    assert_eq!(fields.len(), 3, "{stdout}");
    assert_eq!(fields[0], png.display().to_string());
    assert!(fields[1].parse::<usize>().unwrap() < 10);
    let p: f64 = fields[2].parse().unwrap();
    assert!((0.1..=1.0).contains(&p), "{stdout}");

    // A record that does not match its config is a clear error, not a panic.
    std::fs::copy(
        artifacts.join(names::CONFIG),
        dir.path().join("config-backup.json"),
    )
    .unwrap();
    let config = std::fs::read_to_string(artifacts.join(names::CONFIG)).unwrap();
    std::fs::write(
        artifacts.join(names::CONFIG),
        config.replacen("\"out_channels\": 32", "\"out_channels\": 16", 1),
    )
    .unwrap();
    let out = digitnet()
        .arg("predict")
        .arg("--artifacts")
        .arg(&artifacts)
        .arg(&png)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("model.safetensors") && stderr.contains("does not match"),
        "{stderr}"
    );
}

#[test]
fn resume_without_a_previous_run_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = digitnet()
        .args(["train", "--resume"])
        .arg("--artifacts")
        .arg(dir.path())
        .args(sample_args())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("config.json"), "{stderr}");
}
