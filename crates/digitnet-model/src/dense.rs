//! The fully connected stack shared by the CNN head and the MLP.

use burn::nn::{Dropout, Linear, LinearConfig, Relu};
use burn::prelude::*;

/// Linear layers `input -> hidden[0] -> ... -> outputs`.
pub(crate) fn dense_stack<B: Backend>(
    input: usize,
    hidden: &[usize],
    outputs: usize,
    device: &B::Device,
) -> Vec<Linear<B>> {
    let mut sizes = Vec::with_capacity(hidden.len() + 2);
    sizes.push(input);
    sizes.extend_from_slice(hidden);
    sizes.push(outputs);
    sizes
        .windows(2)
        .map(|w| LinearConfig::new(w[0], w[1]).init(device))
        .collect()
}

/// Runs `x` through `linears` with ReLU between them (none after the last) and optional dropout
/// before each.
pub(crate) fn dense_forward<B: Backend>(
    linears: &[Linear<B>],
    dropout: Option<&Dropout>,
    activation: &Relu,
    mut x: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let last = linears.len().saturating_sub(1);
    for (i, linear) in linears.iter().enumerate() {
        if let Some(dropout) = dropout {
            x = dropout.forward(x);
        }
        x = digitnet_kernels::linear(
            x,
            linear.weight.val(),
            linear.bias.as_ref().map(|b| b.val()),
        );
        if i < last {
            x = activation.forward(x);
        }
    }
    x
}
