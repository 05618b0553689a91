//! Adam's update of one parameter: what an optimizer's step computes for each tensor of a model.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamState, AdaptiveMomentumState, SimpleOptimizer};
use burn::prelude::*;

/// The constants of one Adam step, as Burn's `Adam` (`burn::optim::AdamConfig`) has them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// Decay of the first moment (0.9 in PyTorch and Burn).
    pub beta_1: f32,
    /// Decay of the second moment (0.999 in PyTorch and Burn).
    pub beta_2: f32,
    /// Added to the root of the second moment (scaled by its bias correction, as Burn does).
    pub epsilon: f32,
    /// L2 penalty: `penalty * param` is added to the gradient first, as Burn's `Adam` does.
    pub weight_decay: Option<f32>,
    /// The learning rate of this step.
    pub lr: f64,
    /// The step count of the parameter: 1 on its first update.
    pub time: usize,
}

/// Adam's update of one parameter with Burn's arithmetic (`burn::optim::Adam`): returns the new
/// parameter, first moment and second moment. `moments` is `None` on the first step.
///
/// On flex and ndarray this is one pass over the values instead of about ten tensor operations,
/// and a moment that falls below `f32::MIN_POSITIVE` is stored as zero. Without that, a
/// parameter whose gradient stays zero (the weights of a dead ReLU unit) keeps a subnormal first
/// moment for good, since `0.9` times the smallest subnormal rounds back to it, and each
/// subnormal operand costs an x86 CPU a slow microcode assist in every later step. Elsewhere it
/// is Burn's own `Adam` step.
pub fn adam_update<B: Backend, const D: usize>(
    step: &AdamStep,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    moments: Option<[Tensor<B, D>; 2]>,
) -> [Tensor<B, D>; 3] {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let (param, grad, moments) = match crate::uses_own_kernels::<B>() {
        true => match crate::dispatch::adam_update(step, (param, grad, moments)) {
            Ok(out) => return out,
            Err(inputs) => inputs,
        },
        false => (param, grad, moments),
    };
    adam_update_ops(step, param, grad, moments)
}

/// [`adam_update`] as Burn's own `Adam` computes it, with the moments in its state.
pub(crate) fn adam_update_ops<B: Backend, const D: usize>(
    step: &AdamStep,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    moments: Option<[Tensor<B, D>; 2]>,
) -> [Tensor<B, D>; 3] {
    let adam = AdamConfig::new()
        .with_beta_1(step.beta_1)
        .with_beta_2(step.beta_2)
        .with_epsilon(step.epsilon)
        .with_weight_decay(step.weight_decay.map(WeightDecayConfig::new))
        .build();
    // Burn's state holds the step count before this step; it adds one.
    let state = moments.map(|[m, v]| {
        AdamState::new(AdaptiveMomentumState::new(
            step.time.saturating_sub(1),
            m,
            v,
        ))
    });
    let (param, state) = adam.step(step.lr, param, grad, state);
    let momentum = state.expect("Burn's Adam keeps a state").momentum;
    [param, momentum.moment_1, momentum.moment_2]
}
