//! The Burn backends compiled into this build (one cargo feature each), type aliases for code
//! that picks one, the devices each can use, and a run-time choice that dispatches a generic job
//! to the chosen backend.

mod probe;

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::AutodiffBackend;

pub use probe::{DeviceClass, DeviceInfo, devices};

/// Burn's flex CPU backend with `f32` floats (feature `flex`, on by default; the fastest on CPU).
#[cfg(feature = "flex")]
pub type Flex = burn::backend::Flex;

/// Burn's ndarray CPU backend with `f32` floats (feature `ndarray`, on by default).
#[cfg(feature = "ndarray")]
pub type NdArray = burn::backend::NdArray<f32>;

/// Burn's wgpu GPU backend (Vulkan, Metal, DX12) with `f32` floats and autotuning (feature
/// `wgpu`).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu<f32>;

/// Burn's CUDA backend (NVIDIA GPUs) with `f32` floats and autotuning (feature `cuda`).
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda<f32>;

// `DefaultBackend`: the best backend compiled into this build, chosen by cargo feature (CUDA,
// else wgpu, else flex, else ndarray), so that code written against it swaps backends with
// `--features wgpu` or `--no-default-features --features ndarray` and no edit.

/// The best backend compiled into this build: CUDA (feature `cuda`). For a choice at run time,
/// see [`BackendKind`] and [`run_on`].
#[cfg(feature = "cuda")]
pub type DefaultBackend = Cuda;
/// The best backend compiled into this build: wgpu (feature `wgpu`, without `cuda`). For a
/// choice at run time, see [`BackendKind`] and [`run_on`].
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type DefaultBackend = Wgpu;
/// The best backend compiled into this build: flex (feature `flex`, without a GPU feature). For
/// a choice at run time, see [`BackendKind`] and [`run_on`].
#[cfg(all(feature = "flex", not(any(feature = "cuda", feature = "wgpu"))))]
pub type DefaultBackend = Flex;
/// The best backend compiled into this build: ndarray (feature `ndarray` alone). For a choice
/// at run time, see [`BackendKind`] and [`run_on`].
#[cfg(all(
    feature = "ndarray",
    not(any(feature = "cuda", feature = "wgpu", feature = "flex"))
))]
pub type DefaultBackend = NdArray;

/// The default device of [`DefaultBackend`] (the first GPU, or the CPU).
#[cfg(any(
    feature = "cuda",
    feature = "wgpu",
    feature = "flex",
    feature = "ndarray"
))]
pub fn default_device() -> burn::tensor::Device<DefaultBackend> {
    Default::default()
}

/// A backend chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Burn's flex CPU backend.
    Flex,
    /// Burn's ndarray CPU backend.
    NdArray,
    /// Burn's wgpu GPU backend.
    Wgpu,
    /// Burn's CUDA backend.
    Cuda,
}

impl BackendKind {
    /// Every backend digitnet knows, compiled in or not, best first.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Cuda,
        BackendKind::Wgpu,
        BackendKind::Flex,
        BackendKind::NdArray,
    ];

    /// The name used on the command line (and the name of its cargo feature).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::NdArray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// Whether this build includes the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::NdArray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// Whether the backend computes on the host CPU.
    pub fn is_cpu(self) -> bool {
        matches!(self, BackendKind::Flex | BackendKind::NdArray)
    }

    /// The backends compiled into this build, best first.
    pub fn compiled() -> Vec<BackendKind> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The best backend this build can use on this machine: a GPU backend when it finds GPU
    /// hardware, else the fastest CPU backend compiled in. (A software GPU driver such as
    /// lavapipe is much slower than a CPU backend, so it is used only when asked for.)
    pub fn best() -> Option<BackendKind> {
        Self::compiled().into_iter().find(|kind| {
            kind.is_cpu()
                || devices(*kind).is_ok_and(|found| found.iter().any(|d| d.class.is_hardware_gpu()))
        })
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a backend cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// No backend of that name exists.
    #[error("unknown backend '{asked}'; this build has: {available}")]
    Unknown {
        /// The name asked for.
        asked: String,
        /// The backends compiled in.
        available: String,
    },
    /// The backend's cargo feature was not enabled.
    #[error(
        "backend '{asked}' is not compiled in (build with `--features {asked}`); this build has: \
         {available}"
    )]
    NotCompiled {
        /// The name asked for.
        asked: String,
        /// The backends compiled in.
        available: String,
    },
    /// The backend is compiled in but this machine offers it no device.
    #[error("backend '{backend}' cannot run here: {reason}")]
    NoDevice {
        /// The backend.
        backend: String,
        /// What is missing.
        reason: String,
    },
    /// Fewer devices than asked for.
    #[error("backend '{backend}' has {found} device(s), {asked} were asked for: {list}")]
    TooFewDevices {
        /// The backend.
        backend: String,
        /// How many were asked for.
        asked: usize,
        /// How many exist.
        found: usize,
        /// The devices that exist.
        list: String,
    },
}

impl BackendError {
    fn available() -> String {
        let names: Vec<&str> = BackendKind::compiled().iter().map(|b| b.name()).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    }

    pub(crate) fn not_compiled(asked: &str) -> Self {
        BackendError::NotCompiled {
            asked: asked.to_string(),
            available: Self::available(),
        }
    }

    #[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
    pub(crate) fn no_device(backend: &str, reason: &str) -> Self {
        BackendError::NoDevice {
            backend: backend.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl FromStr for BackendKind {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let kind = Self::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| BackendError::Unknown {
                asked: s.to_string(),
                available: BackendError::available(),
            })?;
        if !kind.is_compiled() {
            return Err(BackendError::not_compiled(s));
        }
        Ok(kind)
    }
}

/// A job written once, generically, for every backend (training needs autodiff; inference uses
/// `B::InnerBackend`).
pub trait BackendJob {
    /// What the job returns.
    type Output;

    /// Runs the job on backend `B`. `devices` is never empty; its first device is the main one
    /// (a job that uses one device uses that one).
    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Self::Output;
}

/// Runs `job` on the backend `kind`, on its default device. An error, before anything runs, if
/// `kind` is not compiled into this build or this machine has no device for it.
pub fn run_on<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output, BackendError> {
    run_on_devices(kind, 1, job)
}

/// Runs `job` on the first `count` devices of the backend `kind` (for data-parallel training).
/// On a CPU backend the one CPU device is repeated: `count` workers share the cores.
pub fn run_on_devices<J: BackendJob>(
    kind: BackendKind,
    count: usize,
    job: J,
) -> Result<J::Output, BackendError> {
    let found = devices(kind)?;
    let count = count.max(1);
    if !kind.is_cpu() && found.len() < count {
        return Err(BackendError::TooFewDevices {
            backend: kind.name().to_string(),
            asked: count,
            found: found.len(),
            list: found
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    let picked = &found[..count.min(found.len())];
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => {
            Ok(job.run::<burn::backend::Autodiff<Flex>>(vec![Default::default(); count]))
        }
        #[cfg(feature = "ndarray")]
        BackendKind::NdArray => {
            Ok(job.run::<burn::backend::Autodiff<NdArray>>(vec![Default::default(); count]))
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(job.run::<burn::backend::Autodiff<Wgpu>>(wgpu_devices(picked))),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(job.run::<burn::backend::Autodiff<Cuda>>(
            picked
                .iter()
                .map(|d| burn::backend::cuda::CudaDevice { index: d.index })
                .collect(),
        )),
        #[allow(unreachable_patterns)]
        other => {
            let _ = picked;
            Err(BackendError::not_compiled(other.name()))
        }
    }
}

/// Burn's wgpu devices for the adapters found; a single device is Burn's default choice (the
/// high-performance adapter), which also honours `CUBECL_WGPU_DEFAULT_DEVICE`.
#[cfg(feature = "wgpu")]
fn wgpu_devices(picked: &[DeviceInfo]) -> Vec<burn::backend::wgpu::WgpuDevice> {
    use burn::backend::wgpu::WgpuDevice;
    if picked.len() == 1 {
        return vec![WgpuDevice::DefaultDevice];
    }
    picked
        .iter()
        .map(|d| match d.class {
            DeviceClass::DiscreteGpu => WgpuDevice::DiscreteGpu(d.index),
            DeviceClass::IntegratedGpu => WgpuDevice::IntegratedGpu(d.index),
            DeviceClass::VirtualGpu => WgpuDevice::VirtualGpu(d.index),
            DeviceClass::SoftwareGpu | DeviceClass::Cpu => WgpuDevice::Cpu,
        })
        .collect()
}
