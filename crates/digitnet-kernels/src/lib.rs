//! The operations that dominate a digitnet model's training step, 2D convolution, 2x2
//! max-pooling, batch normalisation and the fully connected layer, written once for every Burn
//! backend.
//!
//! On any backend these are Burn's own ops. With the `flex` or `ndarray` feature, when the
//! backend is that CPU backend of Burn's (`Flex` or `NdArray`, or `Autodiff` over either), they
//! run hand-written kernels instead, each with its backward pass registered in Burn's autodiff
//! graph: im2col + GEMM convolution (forward, input gradient and weight gradient) parallel over
//! the batch, a direct convolution for one-channel input that can be fused with the 2x2
//! max-pool after it, a direct 2x2 max-pool, a fused batch norm and, on ndarray, the fully connected
//! layer, plus Adam's update of a parameter in one pass. The GEMM is the `gemm` crate's
//! (AVX-512, AVX2+FMA or plain code, picked at run time for the CPU), told per call how many
//! threads to use, so no second thread pool competes with rayon's and no setup call is needed.
//! The choice is made at run time from the backend type, so models stay generic (`B: Backend`)
//! and give the same results (to float rounding) on every backend. `benches/RESULTS.md` records
//! why each kernel exists and what it measured.

mod adam;
mod cast;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod dispatch;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod host;

use burn::prelude::*;
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;

pub use adam::{AdamStep, adam_update};

/// 2D convolution with stride 1, no dilation, one group and `padding` zeros on every side:
/// `x [N, C, H, W]`, `weight [C_out, C, K, K]`, `bias [C_out]` to `[N, C_out, H', W']`.
pub fn conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    padding: usize,
) -> Tensor<B, 4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let (x, weight, bias) = match uses_own_kernels::<B>() {
        true => match dispatch::conv2d(x, weight, bias, padding) {
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

/// A fully connected layer, `x [N, I] * weight [I, O] + bias [O]` to `[N, O]`: the product
/// Burn's `Linear` computes (its `weight` and `bias` are these), as one layer of an MLP or a CNN
/// head. The kernels' own layer runs on ndarray; flex's matmul is already as fast.
pub fn linear<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 2> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let (x, weight, bias) = match uses_own_kernels::<B>() {
        true => match dispatch::linear(x, weight, bias) {
            Ok(y) => return y,
            Err(inputs) => inputs,
        },
        false => (x, weight, bias),
    };
    module::linear(x, weight, bias)
}

/// 2x2 max-pooling with stride 2 and no padding (an odd last row or column is dropped):
/// `[N, C, H, W]` to `[N, C, H / 2, W / 2]`.
pub fn max_pool2x2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let x = match uses_own_kernels::<B>() {
        true => match dispatch::max_pool2x2(x) {
            Ok(y) => return y,
            Err(x) => x,
        },
        false => x,
    };
    module::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
}

/// [`conv2d`] then [`max_pool2x2`]: the same function and gradients, as one step. With the CPU
/// kernels, a one-channel input (a network's first layer, whose output is the largest tensor
/// of the model) runs fused: the full-size convolution output is computed image by image in
/// the cache and never stored, nor is its gradient. Otherwise it is exactly the two calls.
pub fn conv2d_max_pool2x2<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    padding: usize,
) -> Tensor<B, 4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let (x, weight, bias) = match uses_own_kernels::<B>() {
        true => match dispatch::conv2d_max_pool2x2(x, weight, bias, padding) {
            Ok(y) => return y,
            Err(inputs) => inputs,
        },
        false => (x, weight, bias),
    };
    max_pool2x2(conv2d(x, weight, bias, padding))
}

/// Batch normalisation in training mode over `x [N, C, H, W]` with per-channel `gamma`, `beta`:
/// returns `(y, mean, var)`, the batch mean and (biased) variance per channel being detached,
/// for the caller's running statistics. The same arithmetic as Burn's `BatchNorm` in training.
pub fn batch_norm_train<B: Backend>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    epsilon: f64,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>) {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let (x, gamma, beta) = match uses_own_kernels::<B>() {
        true => match dispatch::batch_norm_train(x, gamma, beta, epsilon) {
            Ok(out) => return out,
            Err(inputs) => inputs,
        },
        false => (x, gamma, beta),
    };
    let [n, c, h, w] = x.dims();
    let per_channel = |t: Tensor<B, 4>| t.swap_dims(0, 1).reshape([c, n * h * w]).mean_dim(1);
    let mean = per_channel(x.clone()).reshape([1, c, 1, 1]);
    let var = per_channel((x.clone() - mean.clone()).square()).reshape([1, c, 1, 1]);
    let y = normalise(x, mean.clone(), var.clone(), gamma, beta, epsilon);
    (y, mean.detach().reshape([c]), var.detach().reshape([c]))
}

/// Batch normalisation in inference mode: `x [N, C, H, W]` normalised with the given per-channel
/// `mean` and `var`, then scaled by `gamma` and shifted by `beta`.
pub fn batch_norm_eval<B: Backend>(
    x: Tensor<B, 4>,
    mean: Tensor<B, 1>,
    var: Tensor<B, 1>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    epsilon: f64,
) -> Tensor<B, 4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let (x, [mean, var, gamma, beta]) = match uses_own_kernels::<B>() {
        true => match dispatch::batch_norm_eval(x, [mean, var, gamma, beta], epsilon) {
            Ok(y) => return y,
            Err(inputs) => inputs,
        },
        false => (x, [mean, var, gamma, beta]),
    };
    let c = x.dims()[1];
    normalise(
        x,
        mean.reshape([1, c, 1, 1]),
        var.reshape([1, c, 1, 1]),
        gamma,
        beta,
        epsilon,
    )
}

/// `(x - mean) / sqrt(var + epsilon) * gamma + beta`, as Burn's `BatchNorm` writes it.
fn normalise<B: Backend>(
    x: Tensor<B, 4>,
    mean: Tensor<B, 4>,
    var: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    epsilon: f64,
) -> Tensor<B, 4> {
    let c = x.dims()[1];
    let std = var.add_scalar(epsilon).sqrt();
    (x - mean) / std * gamma.reshape([1, c, 1, 1]) + beta.reshape([1, c, 1, 1])
}

/// Runs `f` on a thread of the kernels' thread pool (rayon's global pool) when backend `B` runs
/// digitnet's own kernels, and on this thread otherwise. Each kernel already moves its own work
/// onto the pool, so nothing needs this; a whole forward pass run inside saves one hand-over per
/// operation, which shows in a single image's latency (`Cnn::forward` uses it).
pub fn on_kernel_threads<B: Backend, R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if uses_own_kernels::<B>() {
        return dispatch::in_pool(f);
    }
    f()
}

/// How many times [`conv2d`], [`max_pool2x2`], [`conv2d_max_pool2x2`] or a batch norm ran digitnet's own kernels in this process
/// (for tests that must know the kernels, not Burn's ops, were measured).
pub fn own_kernel_calls() -> usize {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        dispatch::CALLS.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    {
        0
    }
}

/// Environment variable that, set to `off`, makes every function here use Burn's ops
/// on every backend (to compare the two, or to rule the kernels out when debugging).
pub const KERNELS_ENV: &str = "DIGITNET_KERNELS";

/// Whether the functions here run digitnet's own kernels on backend `B`.
pub fn uses_own_kernels<B: Backend>() -> bool {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let enabled =
            *ENABLED.get_or_init(|| std::env::var(KERNELS_ENV).map_or(true, |v| v != "off"));
        enabled && dispatch::is_host::<B>()
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    {
        false
    }
}

#[cfg(test)]
mod tests;
