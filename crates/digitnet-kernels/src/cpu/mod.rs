//! Kernels on plain `f32` slices (contiguous, row-major NCHW): no Burn types here.

pub(crate) mod adam;
pub(crate) mod conv;
mod direct;
mod gemm;
pub(crate) mod linear;
pub(crate) mod norm;
pub(crate) mod one_channel;
pub(crate) mod pool;
mod simd;
mod transpose;
