//! Adam as digitnet trains with it: Burn's `Adam`, each parameter updated in one pass by
//! [`digitnet_kernels::adam_update`].

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, SimpleOptimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use digitnet_kernels::{AdamStep, adam_update};

/// Burn's `Adam` (betas 0.9 and 0.999, as in PyTorch) with the same arithmetic and the same
/// state, so checkpoints of either resume with the other. On flex and ndarray each parameter is
/// updated in one pass, and moments that decay below the smallest normal `f32` are stored as
/// zero: a dead unit's subnormal moment would otherwise slow every later step on x86.
#[derive(Debug, Clone)]
pub struct FusedAdam {
    epsilon: f32,
    weight_decay: Option<f32>,
}

impl FusedAdam {
    /// Adam with `epsilon` and, when given, an L2 `weight_decay` added to the gradients (Burn's
    /// `AdamConfig::with_weight_decay`).
    pub fn new(epsilon: f32, weight_decay: Option<f32>) -> Self {
        Self {
            epsilon,
            weight_decay,
        }
    }

    /// The optimizer of module `M` on backend `B`, as `AdamConfig::init` gives Burn's.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(self) -> OptimizerAdaptor<Self, M, B> {
        OptimizerAdaptor::from(self)
    }
}

impl<B: Backend> SimpleOptimizer<B> for FusedAdam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let (time, moments) = match state {
            Some(AdamState { momentum }) => (
                momentum.time + 1,
                Some([momentum.moment_1, momentum.moment_2]),
            ),
            None => (1, None),
        };
        let step = AdamStep {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            lr,
            time,
        };
        let [tensor, moment_1, moment_2] = adam_update(&step, tensor, grad, moments);
        let momentum = AdaptiveMomentumState::new(time, moment_1, moment_2);
        (tensor, Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}
