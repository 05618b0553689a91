//! Every pair of compiled backends computes the same thing: from one saved record, the logits of
//! the CNNs and the MLP on one batch of real MNIST agree within 1e-4, and so do all parameters
//! after one optimiser step (Adam and SGD with momentum) from the same state. Each job runs
//! through the same dispatcher the CLI uses (`run_on`), so this also covers the dispatch.
//!
//! With `--features wgpu` (CI installs Mesa's lavapipe, a software Vulkan driver), the wgpu
//! backend joins the comparison and trains a tiny run.

use crate::common;

use common::sample;

use std::path::Path;

use burn::data::dataloader::batcher::Batcher;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use digitnet::backend::{BackendJob, BackendKind, run_on};
use digitnet::data::{MnistBatcher, MnistItem};
use digitnet::model::{ModelConfig, Preset};
use digitnet::train::{ArtifactDir, FusedAdam, TrainingConfig, model_io};

/// Largest absolute difference allowed between two backends (f32).
const TOLERANCE: f32 = 1e-4;
/// Images in the compared batch.
const BATCH: usize = 32;
/// Learning rate of the compared optimiser step.
const STEP_LR: f32 = 1e-3;

/// The first test images of the sample.
fn items() -> Vec<MnistItem> {
    let test = sample().test();
    (0..BATCH)
        .map(|i| burn::data::dataset::Dataset::get(&test, i).unwrap())
        .collect()
}

/// A model initialised (seeded) on a CPU backend and saved as SafeTensors: the shared record,
/// the same on every run and in every build. The backend's random generator is global, so seeding
/// and initialising hold a lock: tests running in parallel would otherwise interleave.
fn saved_record(config: &TrainingConfig) -> Vec<u8> {
    static SEED_AND_INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    struct Save(TrainingConfig);
    impl BackendJob for Save {
        type Output = Vec<u8>;
        fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Vec<u8> {
            B::seed(&devices[0], self.0.seed);
            let model = self
                .0
                .digit_model()
                .unwrap()
                .init::<B::InnerBackend>(&devices[0])
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let artifacts = ArtifactDir::new(dir.path());
            model_io::save_model(&model, &artifacts).unwrap();
            std::fs::read(artifacts.file(digitnet::train::artifacts::names::SAFETENSORS)).unwrap()
        }
    }
    let cpu = BackendKind::compiled()
        .into_iter()
        .find(|kind| kind.is_cpu())
        .expect("a CPU backend is compiled in");
    let _seeding = SEED_AND_INIT.lock().unwrap_or_else(|e| e.into_inner());
    run_on(cpu, Save(config.clone())).unwrap()
}

/// Runs `job` (cloned) on every compiled backend. A GPU backend with no device here is left out
/// with a note (a failure under `CI=true`); a CPU backend must run.
fn on_every_backend<J: BackendJob + Clone>(job: J) -> Vec<(BackendKind, J::Output)> {
    BackendKind::compiled()
        .into_iter()
        .filter_map(|kind| match run_on(kind, job.clone()) {
            Ok(output) => Some((kind, output)),
            Err(e) if !kind.is_cpu() => {
                common::missing_tool(
                    &format!("{kind} cannot run here: {e}"),
                    common::gpu_install(kind),
                );
                None
            }
            Err(e) => panic!("{kind} cannot run this test: {e}"),
        })
        .collect()
}

/// Float tensors, flattened, each with its name.
type Named = Vec<(String, Vec<f32>)>;

/// Named float vectors from each backend, compared pairwise; panics on the worst mismatch.
fn assert_pairwise_close(what: &str, results: &[(BackendKind, Named)]) {
    assert!(!results.is_empty());
    for (i, (a_kind, a)) in results.iter().enumerate() {
        for (b_kind, b) in &results[i + 1..] {
            assert_eq!(
                a.len(),
                b.len(),
                "{what}: {a_kind} vs {b_kind}: tensor counts"
            );
            let mut worst = (0.0f32, String::new());
            for ((name, x), (name_b, y)) in a.iter().zip(b) {
                assert_eq!(name, name_b);
                assert_eq!(x.len(), y.len(), "{what}: {name}: lengths");
                for (k, (u, v)) in x.iter().zip(y).enumerate() {
                    assert!(
                        u.is_finite() && v.is_finite(),
                        "{what}: {name}[{k}] not finite"
                    );
                    let diff = (u - v).abs();
                    if diff > worst.0 {
                        worst = (diff, format!("{name}[{k}]: {u} vs {v}"));
                    }
                }
            }
            println!(
                "{what}: {a_kind} vs {b_kind}: max |diff| {:.2e} ({})",
                worst.0, worst.1
            );
            assert!(
                worst.0 <= TOLERANCE,
                "{what}: {a_kind} and {b_kind} differ by {} at {}",
                worst.0,
                worst.1
            );
        }
    }
}

/// Gradients agree up to f32 rounding. In a batch-norm network rounding is amplified: the
/// backward pass of batch norm subtracts sums over 25,088 values (32 images x 28 x 28) that
/// nearly cancel, so the summation order, which differs per backend (and per thread count), moves
/// a conv-weight gradient by up to a few percent of its tensor's largest (measured on cnn-bn
/// records initialised in other ways: wgpu/lavapipe vs ndarray up to 2.1%, flex vs ndarray up to
/// 0.6%; with this file's records 0.03%; without batch norm, below 0.01%). The check is therefore relative to each tensor's largest gradient: a real bug (a
/// missing term, a wrong sign, a wrong layout) moves gradients by their own size, far beyond it.
/// The step itself is then held to the absolute 1e-4.
fn assert_gradients_close(what: &str, results: &[(BackendKind, Stepped)]) {
    const RELATIVE: f32 = 5e-2;
    for (i, (a_kind, a)) in results.iter().enumerate() {
        for (b_kind, b) in &results[i + 1..] {
            let mut worst = (0.0f32, String::new());
            for ((name, x), (_, y)) in a.grads.iter().zip(&b.grads) {
                let scale = x.iter().chain(y).fold(0.0f32, |m, v| m.max(v.abs()));
                for (k, (u, v)) in x.iter().zip(y).enumerate() {
                    assert!(
                        u.is_finite() && v.is_finite(),
                        "{what}: {name}[{k}] not finite"
                    );
                    let diff = (u - v).abs();
                    let relative = diff / scale.max(TOLERANCE);
                    if relative > worst.0 {
                        worst = (
                            relative,
                            format!("{name}[{k}]: {u} vs {v}, largest {scale}"),
                        );
                    }
                }
            }
            println!(
                "{what}: gradients: {a_kind} vs {b_kind}: max |diff| / largest |gradient| {:.2e} ({})",
                worst.0, worst.1
            );
            assert!(
                worst.0 <= RELATIVE,
                "{what}: gradients of {a_kind} and {b_kind} differ by {} of the largest at {}",
                worst.0,
                worst.1
            );
        }
    }
}

/// The logits of `record` on the batch agree on every compiled backend.
fn assert_logits_agree(what: &str, config: TrainingConfig, record: Vec<u8>) -> Vec<BackendKind> {
    let results = on_every_backend(Logits {
        config,
        record,
        items: items(),
    });
    assert_pairwise_close(what, &results);
    results.into_iter().map(|(kind, _)| kind).collect()
}

/// Inference logits of the saved record on the batch.
#[derive(Clone)]
struct Logits {
    config: TrainingConfig,
    record: Vec<u8>,
    items: Vec<MnistItem>,
}

impl BackendJob for Logits {
    type Output = Named;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Self::Output {
        let device = &devices[0];
        let model = model_io::load_weights_from_bytes::<B::InnerBackend>(
            &self.config,
            &self.record,
            Path::new("record.safetensors"),
            device,
        )
        .unwrap();
        let batch: digitnet::data::MnistBatch<B::InnerBackend> =
            MnistBatcher::default().batch(self.items, device);
        let logits = model
            .forward(batch.images)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        vec![("logits".to_string(), logits)]
    }
}

/// Which optimiser the step test takes.
#[derive(Clone, Copy, Debug)]
enum Step {
    Adam,
    SgdMomentum,
}

/// All parameters after one optimiser step on the batch from the saved record.
#[derive(Clone)]
struct OneStep {
    config: TrainingConfig,
    record: Vec<u8>,
    items: Vec<MnistItem>,
    step: Step,
}

impl BackendJob for OneStep {
    type Output = Stepped;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Self::Output {
        let device = &devices[0];
        let model = model_io::load_weights_from_bytes::<B>(
            &self.config,
            &self.record,
            Path::new("record.safetensors"),
            device,
        )
        .unwrap();
        let batch = MnistBatcher::default().batch(self.items, device);
        let loss = burn::nn::loss::CrossEntropyLossConfig::new()
            .init(device)
            .forward(model.forward(batch.images), batch.targets);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let gradients = {
            let mut collect = CollectParams::with_grads(&grads);
            model.visit(&mut collect);
            collect.params
        };
        let lr = f64::from(STEP_LR);
        let model = match self.step {
            Step::Adam => FusedAdam::new(1e-8, None).init().step(lr, model, grads),
            Step::SgdMomentum => SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
                .init()
                .step(lr, model, grads),
        };
        let mut params = CollectParams::default();
        model.visit(&mut params);
        Stepped {
            params: params.params,
            grads: gradients,
        }
    }
}

/// Parameters after the step, and the gradients the step used.
struct Stepped {
    params: Vec<(String, Vec<f32>)>,
    grads: Vec<(String, Vec<f32>)>,
}

/// Every float parameter of a module (or, given gradients, its gradient) with its path (e.g.
/// `model.Cnn.blocks.0.conv.weight`), flattened.
#[derive(Default)]
struct CollectParams<'a> {
    path: Vec<String>,
    params: Vec<(String, Vec<f32>)>,
    grads: Option<&'a GradientsParams>,
}

impl<'a> CollectParams<'a> {
    fn with_grads(grads: &'a GradientsParams) -> Self {
        Self {
            grads: Some(grads),
            ..Self::default()
        }
    }
}

impl<B: AutodiffBackend> ModuleVisitor<B> for CollectParams<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let tensor = match self.grads {
            Some(grads) => match grads.get::<B::InnerBackend, D>(param.id) {
                Some(grad) => grad,
                // Batch norm's running statistics are state, not trained: no gradient.
                None => param.val().inner().zeros_like(),
            },
            None => param.val().inner(),
        };
        let values = tensor.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let name = format!("{} (#{})", self.path.join("."), self.params.len());
        self.params.push((name, values));
    }
}

/// The configurations compared: the default CNN (batch norm), CNN B and MLP A. The step test
/// turns dropout off, since each backend draws its own dropout masks.
fn configs(dropout_off: bool) -> Vec<(Preset, TrainingConfig)> {
    [Preset::CnnBn, Preset::CnnB, Preset::MlpA]
        .into_iter()
        .map(|preset| {
            let mut config = TrainingConfig::for_preset(preset);
            if dropout_off {
                match config.model.as_mut().expect("a preset config has a model") {
                    ModelConfig::Cnn(cnn) => {
                        cnn.dropout = 0.0;
                        for block in &mut cnn.blocks {
                            block.dropout = 0.0;
                        }
                    }
                    ModelConfig::Mlp(mlp) => mlp.dropout = 0.0,
                }
            }
            (preset, config)
        })
        .collect()
}

#[test]
fn backends_compiled_in_are_listed() {
    let compiled = BackendKind::compiled();
    println!("compared backends: {compiled:?}");
    assert!(
        compiled.len() >= 2,
        "the default build has flex and ndarray"
    );
}

#[test]
fn logits_agree_across_backends() {
    for (preset, config) in configs(false) {
        let record = saved_record(&config);
        assert_logits_agree(&format!("{} logits", preset.name()), config, record);
    }
}

#[test]
fn shipped_weights_give_the_same_logits_on_every_backend() {
    let config = digitnet::shipped::config().unwrap();
    let record = digitnet::shipped::weights().to_vec();
    assert_logits_agree("shipped cnn-bn logits", config, record);
}

#[test]
fn one_optimizer_step_agrees_across_backends() {
    let items = items();
    for step in [Step::SgdMomentum, Step::Adam] {
        for (preset, config) in configs(true) {
            let record = saved_record(&config);
            let results = on_every_backend(OneStep {
                config,
                record,
                items: items.clone(),
                step,
            });
            let what = format!("{} after one {step:?} step", preset.name());
            assert_gradients_close(&what, &results);
            assert_pairwise_close(&format!("{what}: parameters"), &conditioned(step, &results));
        }
    }
}

/// Adam's first step moves each parameter by `lr * g / (|g| + eps)`, about `lr * sign(g)`: for a
/// gradient that is zero up to rounding (e.g. a conv bias followed by batch norm, whose true
/// gradient is exactly 0) the direction is rounding noise, on any backend, PyTorch included.
/// Those elements (|g| below `ADAM_GRADIENT_FLOOR` on some backend, or of opposite signs on two
/// backends, which the gradient check bounds to rounding-level values) are compared after the
/// step is undone for them, i.e. as their starting value; the gradient check above still covers
/// them. (Exact zeros, from pixels that are 0 in every image of the batch or inactive ReLUs,
/// move no parameter on any backend and are compared as they are.) The test asserts that such
/// elements stay a small minority.
fn conditioned(step: Step, all: &[(BackendKind, Stepped)]) -> Vec<(BackendKind, Named)> {
    const ADAM_GRADIENT_FLOOR: f32 = 1e-6;
    let Step::Adam = step else {
        return all.iter().map(|(k, r)| (*k, r.params.clone())).collect();
    };
    // Per tensor, per element: is the gradient rounding noise?
    let (_, first) = &all[0];
    let noise: Vec<Vec<bool>> = (0..first.grads.len())
        .map(|t| {
            (0..first.grads[t].1.len())
                .map(|i| {
                    let here = || all.iter().map(|(_, r)| r.grads[t].1[i]);
                    let all_zero = here().all(|g| g == 0.0);
                    let tiny = here().any(|g| g.abs() < ADAM_GRADIENT_FLOOR);
                    let signs_differ = here().any(|g| g > 0.0) && here().any(|g| g < 0.0);
                    !all_zero && (tiny || signs_differ)
                })
                .collect()
        })
        .collect();
    let masked: usize = noise.iter().flatten().filter(|&&n| n).count();
    let total: usize = noise.iter().map(Vec::len).sum();
    println!("  Adam: {masked} of {total} parameters have a rounding-noise gradient");
    assert!(
        masked * 50 <= total,
        "{masked} of {total} gradients are rounding noise"
    );
    all.iter()
        .map(|(kind, r)| {
            let params = r
                .params
                .iter()
                .zip(&r.grads)
                .zip(&noise)
                .map(|(((name, values), (_, grads)), noise)| {
                    let values = values
                        .iter()
                        .zip(grads)
                        .zip(noise)
                        // Undo this backend's own step: p0 = p1 + lr * g / (|g| + eps).
                        .map(|((&v, &g), &n)| {
                            if n {
                                v + STEP_LR * g / (g.abs() + 1e-8)
                            } else {
                                v
                            }
                        })
                        .collect();
                    (name.clone(), values)
                })
                .collect();
            (*kind, params)
        })
        .collect()
}

/// The GPU code path trains for real: `digitnet train --backend wgpu` on a tiny run (4 batches of
/// mlp-a, 2 epochs) learns (the loss falls) and saves a model that gives the same logits on every
/// backend. It runs in its own process, as a user's run does. (With Burn's kernel fusion on, this
/// test caught a crash in Burn 0.21: "Should have handle for tensor", then burn-fusion's client
/// "CallError", when the asynchronous checkpointer read the model while epoch 2 trained; digitnet
/// builds wgpu without fusion.)
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_trains_a_tiny_run() {
    match digitnet::backend::devices(BackendKind::Wgpu) {
        Ok(devices) if !devices.is_empty() => {}
        found => {
            let problem = format!("wgpu has no device here ({found:?})");
            common::missing_tool(&problem, common::VULKAN_INSTALL);
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .args([
            "train",
            "--backend",
            "wgpu",
            "--preset",
            "mlp-a",
            "--epochs",
            "2",
        ])
        .args([
            "--limit-train",
            "512",
            "--batch-size",
            "128",
            "--validation-size",
            "200",
        ])
        .args(["--progress", "lines", "--offline", "--data-dir"])
        .arg(common::sample_dir())
        .arg("--no-verify")
        .arg("--artifacts")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stderr}\n{stdout}");
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("with wgpu"), "{stderr}");
    let metrics =
        std::fs::read_to_string(dir.path().join(digitnet::train::artifacts::names::METRICS))
            .unwrap();
    let train_loss: Vec<f64> = metrics
        .lines()
        .filter(|l| l.split(',').nth(1) == Some("train"))
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    println!("wgpu train loss per epoch: {train_loss:?}");
    assert_eq!(train_loss.len(), 2);
    assert!(train_loss[1] < train_loss[0], "{train_loss:?}");

    let artifacts = ArtifactDir::new(dir.path());
    let config = model_io::load_config(&artifacts).unwrap();
    let record =
        std::fs::read(artifacts.file(digitnet::train::artifacts::names::SAFETENSORS)).unwrap();
    let compared = assert_logits_agree("mlp-a trained on wgpu", config, record);
    assert!(compared.contains(&BackendKind::Wgpu));
}

/// Without a Vulkan driver the wgpu backend is refused up front with an error that says what is
/// missing (Burn itself would panic on a background thread), and `digitnet backends` says why.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_without_a_driver_is_a_clear_error() {
    use std::process::Command;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_digitnet"))
            .args(args)
            // The Vulkan loader then finds no driver at all.
            .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
            .output()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("seven.png");
    image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([
            if (8..20).contains(&x) && (6..9).contains(&y) || x == 18 && y > 8 {
                0
            } else {
                255
            },
        ])
    })
    .save(&png)
    .unwrap();
    let predict = run(&["predict", "--backend", "wgpu", png.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&predict.stderr);
    println!("{stderr}");
    assert_eq!(predict.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("backend 'wgpu' cannot run here: no GPU adapter found"),
        "{stderr}"
    );
    assert!(stderr.contains("mesa-vulkan-drivers"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let backends = run(&["backends"]);
    let stdout = String::from_utf8_lossy(&backends.stdout);
    assert!(backends.status.success());
    assert!(
        stdout.contains("wgpu     compiled in; no device"),
        "{stdout}"
    );
    // With no GPU the default is a CPU backend.
    assert!(
        stdout.contains("flex     compiled in, the default"),
        "{stdout}"
    );
}
