//! `digitnet train`, `eval` and `predict` as a user runs them, on the committed sample: a run
//! killed during epoch 2 and resumed ends with both epochs and a valid model; eval and predict
//! read the artifacts; a broken record is a clear error.

use crate::common;

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
        !artifacts.join(names::SAFETENSORS).exists(),
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
    println!("cnn-bn, 2 epochs of 640 images, killed and resumed: test accuracy {test_accuracy}");
    // Measured 0.699; the bar is a few points below.
    assert!(test_accuracy > 0.65, "test accuracy {test_accuracy}");
    for name in [
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
    let (png, label) = common::test_digit_png(0, dir.path());
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
    assert_eq!(
        fields[1],
        label.to_string(),
        "test image 0 is a {label}: {stdout}"
    );
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

/// `--resume` in a directory that a run killed before its first checkpoint left behind (here
/// built by hand: its `config.json`, an empty `checkpoint/`, a temporary file), or in an empty
/// one, starts afresh, says so, and ends with a valid model.
#[test]
fn resume_before_the_first_checkpoint_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    let interrupted = dir.path().join("interrupted");
    std::fs::create_dir_all(interrupted.join(names::CHECKPOINTS)).unwrap();
    let config = digitnet::train::TrainingConfig::for_preset(digitnet::model::Preset::MlpA)
        .with_epochs(1)
        .with_limit_train(Some(640))
        .with_validation_size(Some(200));
    std::fs::write(interrupted.join(names::CONFIG), config.to_string()).unwrap();
    std::fs::write(interrupted.join(".digitnet-config.json.part"), b"{\"half").unwrap();
    for artifacts in [&empty, &interrupted] {
        let out = digitnet()
            .args(["train", "--resume", "--model", "mlp", "--epochs", "1"])
            .args(["--limit-train", "640", "--progress", "quiet"])
            .arg("--artifacts")
            .arg(artifacts)
            .args(sample_args())
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", artifacts.display());
        assert!(
            stderr.contains("nothing to resume") && stderr.contains("starting afresh"),
            "{stderr}"
        );
        let accuracy = accuracy_line(&out, "test");
        println!("mlp-a, 1 epoch of 640 images, resumed afresh: test accuracy {accuracy}");
        // Measured 0.661; the bar is a few points below.
        assert!(accuracy > 0.62, "{stderr}");
        assert_eq!(
            epochs_in_metrics(artifacts),
            vec![(1, "train".into()), (1, "valid".into())]
        );
        assert!(artifacts.join(names::SAFETENSORS).is_file());
        assert!(!artifacts.join(".digitnet-config.json.part").exists());
    }
}

/// `--resume` refuses a directory holding files that are not a digitnet run's, and deletes none.
#[test]
fn resume_in_a_directory_of_other_files_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.tex"), b"precious").unwrap();
    let out = digitnet()
        .args(["train", "--resume"])
        .arg("--artifacts")
        .arg(dir.path())
        .args(sample_args())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("nothing to resume") && stderr.contains("thesis.tex"),
        "{stderr}"
    );
    assert_eq!(common::entries(dir.path()), ["thesis.tex"]);
}
