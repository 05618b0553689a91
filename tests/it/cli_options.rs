//! Every option of `digitnet train`, `eval` and `predict`, each checked by its effect on the run:
//! the config it writes, the learning rates and losses in `metrics.csv`, the weights, the lines
//! printed. Small runs (mlp-a on 640 sample images unless said) keep this to seconds.

use std::path::Path;
use std::process::{Command, Output};

use digitnet::train::artifacts::names;
use digitnet::train::{EpochRecord, read_metrics_csv};

use crate::common;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `digitnet <args> --artifacts <dir>` on the sample, offline; it must succeed.
fn digitnet(args: &[&str], artifacts: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .args(args)
        .arg("--artifacts")
        .arg(artifacts)
        .args(["--offline", "--no-verify", "--data-dir"])
        .arg(common::sample_dir())
        .env_remove("DIGITNET_DATA_DIR")
        .env_remove("DIGITNET_MIRRORS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "digitnet {args:?} failed:\n{}",
        text(&out.stderr)
    );
    out
}

/// A small mlp-a run with `extra` options, in `dir/name`; returns its output and directory.
fn train_mlp(dir: &Path, name: &str, extra: &[&str]) -> (Output, std::path::PathBuf) {
    let artifacts = dir.join(name);
    let mut args = vec!["train", "--model", "mlp", "--limit-train", "640"];
    args.extend_from_slice(extra);
    if !extra.contains(&"--progress") {
        args.extend_from_slice(&["--progress", "quiet"]);
    }
    let out = digitnet(&args, &artifacts);
    (out, artifacts)
}

fn metrics(dir: &Path, split: &str) -> Vec<EpochRecord> {
    read_metrics_csv(&dir.join(names::METRICS))
        .unwrap()
        .into_iter()
        .filter(|r| r.split.name() == split)
        .collect()
}

fn saved_config(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(names::CONFIG)).unwrap()).unwrap()
}

fn last_figure(out: &Output, prefix: &str) -> f64 {
    let stdout = text(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' in:\n{stdout}"))
        .trim()
        .parse()
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1e-12)
}

#[test]
fn optimizer_schedule_and_weight_decay_reach_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let sgd = [
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--epochs",
        "4",
        "--seed",
        "3",
    ];
    // SGD with the step schedule: the rate halves after 3 epochs.
    let (_, step) = train_mlp(
        dir.path(),
        "step",
        &[&sgd[..], &["--schedule", "step"]].concat(),
    );
    let config = saved_config(&step);
    assert_eq!(config["optimizer"]["kind"], "sgd", "{config}");
    let lr: Vec<f64> = metrics(&step, "train").iter().map(|r| r.lr).collect();
    assert!(
        close(lr[0], 0.05) && close(lr[2], 0.05) && close(lr[3], 0.025),
        "{lr:?}"
    );

    // The same run with a constant rate keeps 0.05, and learns differently from epoch 4 on.
    let (_, constant) = train_mlp(
        dir.path(),
        "constant",
        &[&sgd[..], &["--schedule", "constant"]].concat(),
    );
    let constant_lr: Vec<f64> = metrics(&constant, "train").iter().map(|r| r.lr).collect();
    assert!(
        constant_lr.iter().all(|&r| close(r, 0.05)),
        "{constant_lr:?}"
    );
    let loss = |dir: &Path| -> Vec<f64> { metrics(dir, "train").iter().map(|r| r.loss).collect() };
    assert_eq!(
        loss(&step)[..3],
        loss(&constant)[..3],
        "same seed, same rates"
    );
    assert_ne!(loss(&step)[3], loss(&constant)[3]);

    // Weight decay changes every epoch's loss and is recorded.
    let (_, decayed) = train_mlp(
        dir.path(),
        "decayed",
        &[&sgd[..], &["--schedule", "step", "--weight-decay", "0.01"]].concat(),
    );
    assert_eq!(saved_config(&decayed)["optimizer"]["weight_decay"], 0.01);
    assert_ne!(loss(&decayed)[0], loss(&step)[0]);

    // Adam with the cosine schedule: rates fall epoch by epoch from the peak.
    let (_, cosine) = train_mlp(
        dir.path(),
        "cosine",
        &[
            "--optimizer",
            "adam",
            "--schedule",
            "cosine",
            "--epochs",
            "3",
        ],
    );
    assert_eq!(saved_config(&cosine)["optimizer"]["kind"], "adam");
    let lr: Vec<f64> = metrics(&cosine, "train").iter().map(|r| r.lr).collect();
    assert!(lr[0] < 1e-3 && lr[0] > lr[1] && lr[1] > lr[2], "{lr:?}");
}

/// Two runs with one seed on flex give bit-identical metrics (all but the wall times) and
/// weights (`model.safetensors`, byte for byte); another seed gives others. The default CNN, so
/// digitnet's kernels and batch norm are in the run. (`model.mpk` also holds Burn's parameter
/// ids, which Burn draws at random in every process, so it differs in those bytes.)
#[test]
fn the_same_seed_gives_bit_identical_metrics_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let artifacts = dir.path().join(name);
        digitnet(
            &[
                "train",
                "--backend",
                "flex",
                "--epochs",
                "2",
                "--limit-train",
                "320",
                "--seed",
                seed,
                "--progress",
                "quiet",
            ],
            &artifacts,
        );
        let rows: Vec<(usize, digitnet::data::Split, f64, f64, f64)> =
            read_metrics_csv(&artifacts.join(names::METRICS))
                .unwrap()
                .into_iter()
                .map(|r| (r.epoch, r.split, r.loss, r.accuracy, r.lr))
                .collect();
        let weights = std::fs::read(artifacts.join(names::SAFETENSORS)).unwrap();
        (rows, weights)
    };
    let (rows_a, weights_a) = run("a", "11");
    let (rows_b, weights_b) = run("b", "11");
    assert_eq!(rows_a.len(), 4);
    assert_eq!(rows_a, rows_b, "metrics of two runs with seed 11");
    assert!(
        weights_a == weights_b,
        "weights of two runs with seed 11 differ"
    );
    let (rows_c, weights_c) = run("c", "12");
    assert_ne!(rows_a, rows_c);
    assert!(weights_a != weights_c);
}

#[test]
fn early_stopping_ends_the_run_when_the_validation_loss_stops_improving() {
    let dir = tempfile::tempdir().unwrap();
    // A high constant rate on 640 images overfits within a few epochs.
    let (out, artifacts) = train_mlp(
        dir.path(),
        "early",
        &[
            "--lr",
            "0.01",
            "--schedule",
            "constant",
            "--epochs",
            "30",
            "--early-stopping",
            "2",
        ],
    );
    let valid: Vec<f64> = metrics(&artifacts, "valid")
        .iter()
        .map(|r| r.loss)
        .collect();
    let n = valid.len();
    assert!(n < 30, "ran all 30 epochs: {valid:?}");
    let best_before = valid[..n - 2].iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(
        valid[n - 2..].iter().all(|&l| l >= best_before),
        "stopped while still improving: {valid:?}"
    );
    let accuracy = last_figure(&out, "test accuracy:");
    println!("mlp-a, early stopping after {n} epochs: test accuracy {accuracy}");
    // Measured 0.828 (after 9 epochs); the bar is a few points below.
    assert!(accuracy > 0.78);
}

/// `--validate-on-test --target-accuracy F`: the test set is evaluated after every epoch (the
/// summary line says `test`) and the run ends at the first epoch that reaches F, whose figure is
/// the one the final test report prints.
#[test]
fn target_accuracy_on_the_test_set_ends_the_run_at_the_first_epoch_that_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("target");
    let args = [
        "train",
        "--model",
        "mlp",
        "--epochs",
        "8",
        "--validate-on-test",
        "--target-accuracy",
        "0.85",
        "--progress",
        "quiet",
    ];
    let out = digitnet(&args, &artifacts);
    let stderr = text(&out.stderr);
    let valid: Vec<f64> = metrics(&artifacts, "valid")
        .iter()
        .map(|r| r.accuracy)
        .collect();
    let (&last, before) = valid.split_last().unwrap();
    assert!(
        last >= 0.85 && before.iter().all(|&a| a < 0.85),
        "{valid:?}"
    );
    assert!(valid.len() >= 2 && valid.len() < 8, "{valid:?}");
    assert!(stderr.contains("  test loss "), "{stderr}");
    assert!(
        close(last_figure(&out, "test accuracy:"), last),
        "{valid:?}"
    );
    assert_eq!(saved_config(&artifacts)["validation_size"], 0);
}

/// `--model mlp` trains the MLP; `--resume --epochs N` then extends the finished run to N epochs
/// without repeating the first; `eval --split` evaluates the split named; `predict --all` prints
/// the ten probabilities.
#[test]
fn model_resume_epochs_eval_split_and_predict_all() {
    let dir = tempfile::tempdir().unwrap();
    let (out, artifacts) = train_mlp(dir.path(), "mlp", &["--epochs", "1"]);
    assert!(
        text(&out.stderr).contains("training mlp-a (109386 parameters)"),
        "{}",
        text(&out.stderr)
    );
    assert!(saved_config(&artifacts)["model"].get("Mlp").is_some());

    let out = digitnet(
        &["train", "--resume", "--epochs", "3", "--progress", "lines"],
        &artifacts,
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("trained 2 epoch(s)"), "{stderr}");
    assert!(!stderr.contains("train epoch 1/3"), "{stderr}");
    let epochs: Vec<usize> = metrics(&artifacts, "train")
        .iter()
        .map(|r| r.epoch)
        .collect();
    assert_eq!(epochs, [1, 2, 3]);
    let trained_test = last_figure(&out, "test accuracy:");

    for (split, images) in [("train", 1800), ("valid", 200), ("test", 1000)] {
        let out = digitnet(&["eval", "--split", split], &artifacts);
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("{split} set: {images} images")),
            "{stdout}"
        );
        let accuracy = last_figure(&out, &format!("{split} accuracy:"));
        if split == "test" {
            assert_eq!(accuracy, trained_test);
        }
        if split == "valid" {
            let last_valid = metrics(&artifacts, "valid")[2].accuracy;
            assert!(
                (accuracy - last_valid).abs() < 1e-3,
                "{accuracy} vs {last_valid}"
            );
        }
    }

    let (png, label) = common::test_digit_png(0, dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .args(["predict", "--all", "--artifacts"])
        .arg(&artifacts)
        .arg(&png)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (head, all) = stdout.trim().split_once(" [").unwrap();
    let fields: Vec<&str> = head.split(' ').collect();
    let probabilities: Vec<f64> = all
        .trim_end_matches(']')
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(probabilities.len(), 10, "{stdout}");
    assert!(
        (probabilities.iter().sum::<f64>() - 1.0).abs() < 0.005,
        "{stdout}"
    );
    let best = (0..10)
        .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
        .unwrap();
    assert_eq!(fields[1], label.to_string(), "{stdout}");
    assert_eq!(best, usize::from(label), "{stdout}");
    assert_eq!(fields[2].parse::<f64>().unwrap(), probabilities[best]);
}

/// `--progress lines` prints the progress of each split and epoch (images done of the total);
/// `quiet` only the epoch summaries. `--devices 2` trains data-parallel: each optimiser step takes
/// a batch on each of two workers, so the first step of an epoch has done 128 images, not 64.
#[test]
fn progress_modes_and_two_devices() {
    let dir = tempfile::tempdir().unwrap();
    let progress_lines = |out: &Output| -> Vec<String> {
        text(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("train epoch 1/"))
            .map(str::to_string)
            .collect()
    };
    let (lines, _) = train_mlp(
        dir.path(),
        "lines",
        &["--epochs", "1", "--progress", "lines"],
    );
    let shown = progress_lines(&lines);
    assert!(
        shown.first().is_some_and(|l| l.contains("[64/640]"))
            && shown.last().is_some_and(|l| l.contains("[640/640]")),
        "{}",
        text(&lines.stderr)
    );
    let (quiet, _) = train_mlp(
        dir.path(),
        "quiet",
        &["--epochs", "1", "--progress", "quiet"],
    );
    assert!(progress_lines(&quiet).is_empty(), "{}", text(&quiet.stderr));
    assert!(text(&quiet.stderr).contains("epoch 1/1  train loss"));

    let (two, artifacts) = train_mlp(
        dir.path(),
        "two",
        &["--epochs", "2", "--devices", "2", "--progress", "lines"],
    );
    let stderr = text(&two.stderr);
    assert!(stderr.contains("(2 device(s))"), "{stderr}");
    assert!(
        progress_lines(&two)
            .first()
            .is_some_and(|l| l.contains("[128/640]")),
        "two batches a step: {stderr}"
    );
    let train = metrics(&artifacts, "train");
    assert!(train[1].loss < train[0].loss, "{train:?}");
    let accuracy = last_figure(&two, "test accuracy:");
    println!("mlp-a, 2 workers, 2 epochs on 640 images: test accuracy {accuracy}");
    // Measured 0.631; the bar is a few points below.
    assert!(accuracy > 0.59);
}
