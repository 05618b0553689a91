//! The Burn backends compiled into this build (one cargo feature each), type aliases for code
//! that picks one, and a run-time choice that dispatches a generic job to the chosen backend.

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::AutodiffBackend;

/// Burn's flex CPU backend with `f32` floats (feature `flex`, on by default; the fastest on CPU).
#[cfg(feature = "flex")]
pub type Flex = burn::backend::Flex;

/// Burn's ndarray CPU backend with `f32` floats (feature `ndarray`, on by default).
#[cfg(feature = "ndarray")]
pub type NdArray = burn::backend::NdArray<f32>;

/// Burn's wgpu GPU backend (Vulkan, Metal, DX12) with `f32` floats (feature `wgpu`).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu<f32>;

/// A backend chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Burn's flex CPU backend.
    Flex,
    /// Burn's ndarray CPU backend.
    NdArray,
    /// Burn's wgpu GPU backend.
    Wgpu,
}

impl BackendKind {
    /// Every backend digitnet knows, compiled in or not.
    pub const ALL: [BackendKind; 3] = [BackendKind::Wgpu, BackendKind::Flex, BackendKind::NdArray];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::NdArray => "ndarray",
            BackendKind::Wgpu => "wgpu",
        }
    }

    /// Whether this build includes the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::NdArray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backends compiled into this build, best first.
    pub fn compiled() -> Vec<BackendKind> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The best backend compiled in (GPU first, then the fastest CPU backend).
    pub fn best() -> Option<BackendKind> {
        Self::compiled().into_iter().next()
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a backend cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend '{asked}' is not {reason}; this build has: {available}")]
pub struct BackendError {
    asked: String,
    reason: &'static str,
    available: String,
}

impl FromStr for BackendKind {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let available = Self::compiled()
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ");
        let kind = Self::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| BackendError {
                asked: s.to_string(),
                reason: "a known backend",
                available: available.clone(),
            })?;
        if !kind.is_compiled() {
            return Err(BackendError {
                asked: s.to_string(),
                reason: "compiled in (enable its cargo feature)",
                available,
            });
        }
        Ok(kind)
    }
}

/// A job written once, generically, for every backend (training needs autodiff; inference uses
/// `B::InnerBackend`).
pub trait BackendJob {
    /// What the job returns.
    type Output;

    /// Runs the job on backend `B`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output;
}

/// Runs `job` on the backend `kind`, on its default device; an error if `kind` is not compiled
/// into this build.
pub fn run_on<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output, BackendError> {
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => Ok(job.run::<burn::backend::Autodiff<Flex>>(Default::default())),
        #[cfg(feature = "ndarray")]
        BackendKind::NdArray => Ok(job.run::<burn::backend::Autodiff<NdArray>>(Default::default())),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(job.run::<burn::backend::Autodiff<Wgpu>>(Default::default())),
        #[allow(unreachable_patterns)]
        other => Err(other
            .name()
            .parse::<BackendKind>()
            .err()
            .unwrap_or(BackendError {
                asked: other.name().to_string(),
                reason: "compiled in",
                available: String::new(),
            })),
    }
}
