//! The two operations that dominate a digitnet CNN's training step, 2D convolution and 2x2
//! max-pooling, written once for every Burn backend.
//!
//! On any backend these are Burn's own ops. With the `flex` feature, when the backend is Burn's
//! flex CPU backend (`Flex` or `Autodiff<Flex>`), they run hand-written kernels instead: im2col +
//! GEMM convolution (forward, input gradient and weight gradient) parallel over the batch, and a
//! direct 2x2 max-pool with its backward pass. Burn 0.21's flex computes a convolution's weight
//! gradient as a convolution with the batch as channels and the output as kernel, which runs on
//! one core (one "image" when the input has one channel) and was the largest cost of a CNN
//! training step. The choice is made at run time from the backend type, so models stay generic
//! (`B: Backend`) and give the same results (to float rounding) on every backend.

mod cast;
#[cfg(feature = "flex")]
mod cpu;
#[cfg(feature = "flex")]
mod flex;

use burn::prelude::*;
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;

/// 2D convolution with stride 1, no dilation, one group and `padding` zeros on every side:
/// `x [N, C, H, W]`, `weight [C_out, C, K, K]`, `bias [C_out]` to `[N, C_out, H', W']`.
pub fn conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    padding: usize,
) -> Tensor<B, 4> {
    #[cfg(feature = "flex")]
    let (x, weight, bias) = match uses_own_kernels::<B>() {
        true => match flex::conv2d(x, weight, bias, padding) {
            Ok(y) => return y,
            Err(inputs) => inputs,
        },
        false => (x, weight, bias),
    };
    module::conv2d(
        x,
        weight,
        bias,
        ConvOptions::new([1, 1], [padding, padding], [1, 1], 1),
    )
}

/// 2x2 max-pooling with stride 2 and no padding (an odd last row or column is dropped):
/// `[N, C, H, W]` to `[N, C, H / 2, W / 2]`.
pub fn max_pool2x2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "flex")]
    let x = match uses_own_kernels::<B>() {
        true => match flex::max_pool2x2(x) {
            Ok(y) => return y,
            Err(x) => x,
        },
        false => x,
    };
    module::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
}

/// How many times [`conv2d`] or [`max_pool2x2`] ran digitnet's own kernels in this process
/// (for tests that must know the kernels, not Burn's ops, were measured).
pub fn own_kernel_calls() -> usize {
    #[cfg(feature = "flex")]
    {
        flex::CALLS.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(feature = "flex"))]
    {
        0
    }
}

/// Environment variable that, set to `off`, makes [`conv2d`] and [`max_pool2x2`] use Burn's ops
/// on every backend (to compare the two, or to rule the kernels out when debugging).
pub const KERNELS_ENV: &str = "DIGITNET_FLEX_KERNELS";

/// Whether [`conv2d`] and [`max_pool2x2`] run digitnet's own kernels on backend `B`.
pub fn uses_own_kernels<B: Backend>() -> bool {
    #[cfg(feature = "flex")]
    {
        static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let enabled =
            *ENABLED.get_or_init(|| std::env::var(KERNELS_ENV).map_or(true, |v| v != "off"));
        enabled && flex::is_flex::<B>()
    }
    #[cfg(not(feature = "flex"))]
    {
        false
    }
}
