//! Type aliases for the Burn backends compiled into this build (one per cargo feature).
//!
//! Every digitnet function is generic over `B: Backend`; these aliases are for code that picks a
//! concrete backend, e.g. `digitnet::model::Preset::CnnB.config().init::<digitnet::backend::NdArray>(&device)`.

/// Burn's ndarray CPU backend with `f32` floats (feature `ndarray`, on by default).
#[cfg(feature = "ndarray")]
pub type NdArray = burn::backend::NdArray<f32>;

/// Burn's wgpu GPU backend (Vulkan, Metal, DX12) with `f32` floats (feature `wgpu`).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu<f32>;

/// Names of the backends compiled into this build, in order of preference.
pub fn compiled() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "ndarray") {
        names.push("ndarray");
    }
    names
}
