//! A configurable convolutional classifier: conv blocks (conv, optional batch norm, ReLU,
//! optional 2x2 max-pool, optional dropout), then fully connected layers.

use burn::module::RunningState;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, PaddingConfig2d, Relu};
use burn::prelude::*;

use crate::dense::{dense_forward, dense_stack};
use crate::error::{ModelError, check_dropout, check_positive};

/// One convolutional block: conv -> [batch norm] -> ReLU -> [max-pool 2x2] -> [dropout].
#[derive(Config, Debug, PartialEq)]
pub struct ConvBlockConfig {
    /// Output channels of the convolution.
    pub out_channels: usize,
    /// Square kernel side.
    #[config(default = 3)]
    pub kernel_size: usize,
    /// Zero padding on every side.
    #[config(default = 1)]
    pub padding: usize,
    /// Batch normalisation after the convolution (the convolution then has no bias).
    #[config(default = false)]
    pub batch_norm: bool,
    /// 2x2 max-pooling after the activation (computed before it: max-pooling commutes with
    /// ReLU, so the block gives the same values with a quarter of the ReLU's work).
    #[config(default = true)]
    pub max_pool: bool,
    /// Dropout probability at the end of the block (0 = none).
    #[config(default = 0.0)]
    pub dropout: f64,
}

/// Configuration of a [`Cnn`].
#[derive(Config, Debug, PartialEq)]
pub struct CnnConfig {
    /// The convolutional blocks, in order.
    pub blocks: Vec<ConvBlockConfig>,
    /// Sizes of the hidden fully connected layers after flattening (each followed by ReLU).
    #[config(default = "Vec::new()")]
    pub hidden: Vec<usize>,
    /// Dropout probability before every fully connected layer (0 = none).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Number of output classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Input channels (1 for grayscale).
    #[config(default = 1)]
    pub in_channels: usize,
    /// Input image side in pixels.
    #[config(default = 28)]
    pub image_size: usize,
}

/// A block of a [`Cnn`].
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    conv: Conv2d<B>,
    norm: Option<BatchNorm<B>>,
    pool: Option<MaxPool2d>,
    dropout: Option<Dropout>,
    activation: Relu,
}

impl<B: Backend> ConvBlock<B> {
    /// Applies the block to `[N, C, H, W]` feature maps.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        // ReLU after the max-pool: max-pooling commutes with ReLU (relu(max(a, b)) =
        // max(relu(a), relu(b)), ties and gradients included), so this is the same function
        // with the same gradients as ReLU then pool, with the ReLU on a quarter of the values.
        let mut x = match (self.square_padding(), &self.norm, self.pool_2x2()) {
            // The convolution and pool as one step (fused on the CPU kernels).
            (Some(padding), None, true) => {
                let weight = self.conv.weight.val();
                digitnet_kernels::conv2d_max_pool2x2(x, weight, self.bias(), padding)
            }
            _ => self.max_pool(self.normalise(self.convolve(x))),
        };
        x = self.activation.forward(x);
        if let Some(dropout) = &self.dropout {
            x = dropout.forward(x);
        }
        x
    }
}

impl<B: Backend> ConvBlock<B> {
    /// The convolution alone.
    fn convolve(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self.square_padding() {
            Some(padding) => {
                digitnet_kernels::conv2d(x, self.conv.weight.val(), self.bias(), padding)
            }
            None => self.conv.forward(x),
        }
    }

    fn bias(&self) -> Option<Tensor<B, 1>> {
        self.conv.bias.as_ref().map(|b| b.val())
    }

    /// The batch norm, if the block has one.
    fn normalise(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match &self.norm {
            Some(norm) => batch_norm(norm, x),
            None => x,
        }
    }

    /// The max-pool, if the block has one.
    fn max_pool(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match &self.pool {
            Some(_) if self.pool_2x2() => digitnet_kernels::max_pool2x2(x),
            Some(pool) => pool.forward(x),
            None => x,
        }
    }

    /// Whether the block max-pools 2x2 windows with stride 2, the pool the kernels compute.
    fn pool_2x2(&self) -> bool {
        self.pool.as_ref().is_some_and(|pool| {
            pool.kernel_size == [2, 2] && pool.stride == [2, 2] && !pool.ceil_mode
        })
    }

    /// The block's convolution, batch norm and max-pool (the layers an export writes out).
    #[cfg(feature = "onnx")]
    pub(crate) fn layers(&self) -> (&Conv2d<B>, Option<&BatchNorm<B>>, Option<&MaxPool2d>) {
        (&self.conv, self.norm.as_ref(), self.pool.as_ref())
    }

    /// The padding when the convolution is the kind [`digitnet_kernels::conv2d`] computes
    /// (stride 1, no dilation, one group, the same zero padding on every side), else `None`.
    fn square_padding(&self) -> Option<usize> {
        let conv = &self.conv;
        let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
        match conv.padding {
            PaddingConfig2d::Explicit(a, b, c, d) if plain && a == b && b == c && c == d => Some(a),
            PaddingConfig2d::Valid if plain => Some(0),
            _ => None,
        }
    }
}

/// Burn's `BatchNorm::forward` (batch statistics and a running-statistics update when the
/// backend tracks gradients, the running statistics otherwise), computed by
/// [`digitnet_kernels`] so that it runs fused on the CPU backend.
fn batch_norm<B: Backend>(norm: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
    if !B::ad_enabled(&x.device()) {
        let (mean, var) = (norm.running_mean.value(), norm.running_var.value());
        return digitnet_kernels::batch_norm_eval(x, mean, var, gamma, beta, norm.epsilon);
    }
    let (y, mean, var) = digitnet_kernels::batch_norm_train(x, gamma, beta, norm.epsilon);
    let m = norm.momentum;
    let update = |running: Tensor<B, 1>, batch: Tensor<B, 1>| {
        running
            .mul_scalar(1.0 - m)
            .add(batch.mul_scalar(m))
            .detach()
    };
    set_running(
        &norm.running_mean,
        update(norm.running_mean.value_sync(), mean),
    );
    set_running(
        &norm.running_var,
        update(norm.running_var.value_sync(), var),
    );
    y
}

/// Makes `value` the running statistic at once. Burn's `RunningState` keeps one pending value
/// per thread and averages them at the next update from a thread that has one, so steps that run
/// on different threads (the kernels' pool picks any of its threads) would average diverging
/// copies, differently from run to run. Syncing right after the update, on the same thread,
/// leaves no pending value behind: the statistics follow the sequence of steps, whichever
/// threads ran them.
fn set_running<B: Backend>(state: &RunningState<Tensor<B, 1>>, value: Tensor<B, 1>) {
    state.update(value);
    let _ = state.value_sync();
}

/// A convolutional digit classifier; `forward` maps `[N, 1, 28, 28]` images to `[N, 10]` logits.
#[derive(Module, Debug)]
pub struct Cnn<B: Backend> {
    blocks: Vec<ConvBlock<B>>,
    linears: Vec<Linear<B>>,
    dropout: Option<Dropout>,
    activation: Relu,
}

impl CnnConfig {
    /// Side of the feature maps after all blocks, or an error when a block shrinks them to nothing.
    pub fn output_side(&self) -> Result<usize, ModelError> {
        let mut side = self.image_size;
        for (i, block) in self.blocks.iter().enumerate() {
            let padded = side + 2 * block.padding;
            if block.kernel_size == 0 || padded < block.kernel_size {
                return Err(ModelError::InvalidConfig(format!(
                    "blocks[{i}]: kernel {} does not fit a {side}x{side} input with padding {}",
                    block.kernel_size, block.padding
                )));
            }
            side = padded - block.kernel_size + 1;
            if block.max_pool {
                side /= 2;
            }
            if side == 0 {
                return Err(ModelError::InvalidConfig(format!(
                    "blocks[{i}] shrinks the feature maps to nothing"
                )));
            }
        }
        Ok(side)
    }

    /// Number of features entering the first fully connected layer.
    pub fn flat_features(&self) -> Result<usize, ModelError> {
        let side = self.output_side()?;
        let channels = self
            .blocks
            .last()
            .map_or(self.in_channels, |b| b.out_channels);
        Ok(channels * side * side)
    }

    /// Checks every value; [`CnnConfig::init`] calls this first.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_positive("in_channels", self.in_channels)?;
        check_positive("num_classes", self.num_classes)?;
        check_positive("image_size", self.image_size)?;
        check_dropout("dropout", self.dropout)?;
        for (i, block) in self.blocks.iter().enumerate() {
            check_positive(&format!("blocks[{i}].out_channels"), block.out_channels)?;
            check_dropout(&format!("blocks[{i}].dropout"), block.dropout)?;
        }
        for (i, &h) in self.hidden.iter().enumerate() {
            check_positive(&format!("hidden[{i}]"), h)?;
        }
        self.flat_features().map(|_| ())
    }

    /// Builds the network on `device` with freshly initialised weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Cnn<B>, ModelError> {
        self.validate()?;
        let mut in_channels = self.in_channels;
        let blocks = self
            .blocks
            .iter()
            .map(|block| {
                let p = block.padding;
                let conv = Conv2dConfig::new(
                    [in_channels, block.out_channels],
                    [block.kernel_size, block.kernel_size],
                )
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(!block.batch_norm)
                .init(device);
                in_channels = block.out_channels;
                ConvBlock {
                    conv,
                    norm: block
                        .batch_norm
                        .then(|| BatchNormConfig::new(block.out_channels).init(device)),
                    pool: block.max_pool.then(|| MaxPool2dConfig::new([2, 2]).init()),
                    dropout: (block.dropout > 0.0)
                        .then(|| DropoutConfig::new(block.dropout).init()),
                    activation: Relu::new(),
                }
            })
            .collect();
        let linears = dense_stack(
            self.flat_features()?,
            &self.hidden,
            self.num_classes,
            device,
        );
        Ok(Cnn {
            blocks,
            linears,
            dropout: (self.dropout > 0.0).then(|| DropoutConfig::new(self.dropout).init()),
            activation: Relu::new(),
        })
    }
}

#[cfg(feature = "onnx")]
impl<B: Backend> Cnn<B> {
    /// The convolution blocks, in order.
    pub(crate) fn blocks(&self) -> &[ConvBlock<B>] {
        &self.blocks
    }

    /// The fully connected layers, in order.
    pub(crate) fn linears(&self) -> &[Linear<B>] {
        &self.linears
    }
}

impl<B: Backend> Cnn<B> {
    /// Maps images `[N, C, H, W]` to class logits `[N, num_classes]`.
    /// On flex this runs on the kernels' thread pool ([`digitnet_kernels::on_kernel_threads`]).
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        digitnet_kernels::on_kernel_threads::<B, _>(|| {
            let x = self.blocks.iter().fold(images, |x, block| block.forward(x));
            dense_forward(
                &self.linears,
                self.dropout.as_ref(),
                &self.activation,
                x.flatten(1, 3),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::tensor::Distribution;
    use burn_ndarray::NdArray;

    type B = Autodiff<NdArray>;

    #[test]
    fn pooling_before_the_relu_gives_the_same_values_and_gradients() {
        let device = Default::default();
        for batch_norm in [false, true] {
            let config = CnnConfig::new(vec![ConvBlockConfig::new(6).with_batch_norm(batch_norm)])
                .with_in_channels(3)
                .with_image_size(8);
            let cnn = config.init::<B>(&device).expect("valid config");
            let block = &cnn.blocks[0];
            let x = Tensor::<B, 4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let ours = block.forward(x.clone());
            // The textbook order: conv, [norm], ReLU, then pool.
            let mut y = block.conv.forward(x.clone());
            if let Some(norm) = &block.norm {
                y = norm.forward(y);
            }
            let y = block.activation.forward(y);
            let reference = block.pool.as_ref().expect("pooled block").forward(y);
            let weights =
                Tensor::<B, 4>::random(ours.dims(), Distribution::Normal(0.0, 1.0), &device);
            let g_ours = (ours.clone() * weights.clone()).sum().backward();
            let g_ref = (reference.clone() * weights).sum().backward();
            let max_diff =
                |a: Tensor<NdArray, 4>, b: Tensor<NdArray, 4>| (a - b).abs().max().into_scalar();
            assert!(max_diff(ours.inner(), reference.inner()) < 1e-5);
            let dx = |g| x.grad(g).expect("input gradient");
            assert!(max_diff(dx(&g_ours), dx(&g_ref)) < 1e-5);
            let dw = |g| block.conv.weight.val().grad(g).expect("weight gradient");
            assert!(max_diff(dw(&g_ours), dw(&g_ref)) < 1e-4);
        }
    }

    /// Training steps that run on different threads (as on the kernels' thread pool) leave the
    /// same running statistics as the same steps on one thread.
    #[test]
    fn running_statistics_do_not_depend_on_which_thread_runs_a_step() {
        let device = Default::default();
        let config =
            CnnConfig::new(vec![ConvBlockConfig::new(4).with_batch_norm(true)]).with_image_size(8);
        let batches: Vec<Tensor<B, 4>> = (0..4)
            .map(|i| Tensor::random([3, 1, 8, 8], Distribution::Normal(i as f64, 1.0), &device))
            .collect();
        // Burn initialises parameters lazily, each clone on its own: load a record to fix them.
        let init = || config.init::<B>(&device).expect("valid config");
        let start = init().load_record(init().into_record());
        let running = |threads: bool| {
            let cnn = init().load_record(start.clone().into_record());
            for (i, x) in batches.iter().enumerate() {
                let block = &cnn.blocks[0];
                if threads && i % 2 == 1 {
                    std::thread::scope(|s| {
                        s.spawn(|| block.forward(x.clone()));
                    });
                } else {
                    block.forward(x.clone());
                }
            }
            let norm = cnn.blocks[0].norm.as_ref().expect("batch norm");
            let values = |t: Tensor<B, 1>| t.into_data().to_vec::<f32>().unwrap();
            (
                values(norm.running_mean.value_sync()),
                values(norm.running_var.value_sync()),
            )
        };
        let (a, b, c) = (running(false), running(false), running(true));
        assert_eq!(a, b, "one thread, twice");
        assert_eq!(a, c);
    }
}
