//! Routes [`crate::conv2d`], [`crate::max_pool2x2`] and the batch norms to the CPU kernels when
//! the backend is a [`HostBackend`] `H` (flex or ndarray): `H` itself for inference,
//! `Autodiff<H>` for training, with the kernels' backward steps registered in Burn's autodiff
//! graph.

use std::any::TypeId;
use std::sync::Arc;

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, TensorPrimitive};

use crate::AdamStep;
use crate::cast::cast;
use crate::cpu::adam;
use crate::cpu::conv::{self, ConvShape};
use crate::cpu::linear::{self, LinearShape};
use crate::cpu::norm::{self, NormShape};
use crate::cpu::one_channel;
use crate::cpu::pool;
use crate::host::HostBackend;

/// Calls of the kernels (see [`crate::own_kernel_calls`]).
pub(crate) static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count() {
    CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Runs one kernel's work on a thread of rayon's pool. A kernel makes several parallel passes;
/// started from outside the pool, each would hand its work over and wait for it (about 10 µs
/// each way); from inside, they split in place. So the caller's thread, a training loop's
/// `loss.backward()` included, needs no setup.
pub(crate) fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match rayon::current_thread_index() {
        Some(_) => f(),
        None => rayon::scope(|_| f()),
    }
}

/// Tries `$on::<B, H>(inputs, args…)` for each host backend `H` compiled in, returning from the
/// enclosing function with the first `Ok`; evaluates to `Err(inputs)` when `B` is none of them.
macro_rules! on_host_backends {
    ($on:ident, $inputs:expr $(, $arg:expr)*) => {{
        let inputs = $inputs;
        #[cfg(feature = "flex")]
        let inputs = match $on::<B, burn_flex::Flex>(inputs $(, $arg)*) {
            Ok(out) => return Ok(out),
            Err(inputs) => inputs,
        };
        #[cfg(feature = "ndarray")]
        let inputs = match $on::<B, burn_ndarray::NdArray>(inputs $(, $arg)*) {
            Ok(out) => return Ok(out),
            Err(inputs) => inputs,
        };
        Err(inputs)
    }};
}

type Conv<B> = (Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>);

/// Whether `B` is a host backend compiled in, or autodiff over one.
pub(crate) fn is_host<B: Backend>() -> bool {
    fn is<B: Backend, H: HostBackend>() -> bool {
        let b = TypeId::of::<B>();
        b == TypeId::of::<H>() || b == TypeId::of::<Autodiff<H>>()
    }
    #[cfg(feature = "flex")]
    if is::<B, burn_flex::Flex>() {
        return true;
    }
    #[cfg(feature = "ndarray")]
    if is::<B, burn_ndarray::NdArray>() {
        return true;
    }
    false
}

/// The convolution on a host backend, or the inputs back for Burn's own op (another backend or
/// dtype).
pub(crate) fn conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    padding: usize,
) -> Result<Tensor<B, 4>, Conv<B>> {
    let inputs = (x, weight, bias);
    if !kernels_take(&inputs, padding) {
        return Err(inputs);
    }
    on_host_backends!(conv2d_on, inputs, padding, false)
}

/// The convolution and 2x2 max-pool fused, on a host backend for the shapes the fused kernels
/// take (one input channel), or the inputs back for the two separate ops.
pub(crate) fn conv2d_max_pool2x2<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    padding: usize,
) -> Result<Tensor<B, 4>, Conv<B>> {
    let [n, c, h, w] = x.dims();
    let [co, _, k, _] = weight.dims();
    let pad = padding;
    let fused = one_channel::handles(&ConvShape {
        n,
        c,
        h,
        w,
        co,
        k,
        pad,
    });
    let inputs = (x, weight, bias);
    if !fused || !kernels_take(&inputs, padding) {
        return Err(inputs);
    }
    on_host_backends!(conv2d_on, inputs, padding, true)
}

/// Whether the kernels take these convolution inputs: f32 values, a square kernel over the
/// input's channels, no larger than the padded image.
fn kernels_take<B: Backend>((x, weight, bias): &Conv<B>, padding: usize) -> bool {
    let [_, c, h, w] = x.dims();
    let [_, wc, k, k2] = weight.dims();
    let fits = c == wc && k == k2 && k <= h + 2 * padding && k <= w + 2 * padding;
    let f32s = x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    fits && f32s
}

/// The convolution (then the max-pool, when `pooled`) on host backend `H`, if `B` is `H` or
/// autodiff over it.
fn conv2d_on<B: Backend, H: HostBackend>(
    inputs: Conv<B>,
    padding: usize,
    pooled: bool,
) -> Result<Tensor<B, 4>, Conv<B>> {
    let inputs = match cast::<Conv<B>, Conv<Autodiff<H>>>(inputs) {
        Ok((x, w, b)) => return Ok(back(conv_autodiff(x, w, b, padding, pooled))),
        Err(inputs) => inputs,
    };
    match cast::<Conv<B>, Conv<H>>(inputs) {
        Ok((x, w, b)) => {
            let (x, w, b) = (prim(x), prim(w), b.map(prim));
            let y = match pooled {
                true => conv_pool_host::<H>(&x, &w, b.as_ref(), padding).0,
                false => conv_host::<H>(&x, &w, b.as_ref(), padding),
            };
            Ok(back(float::<H, 4>(y)))
        }
        Err(inputs) => Err(inputs),
    }
}

/// The pooled convolution and each pooling window's winner.
fn conv_pool_host<H: HostBackend>(
    x: &FloatTensor<H>,
    w: &FloatTensor<H>,
    b: Option<&FloatTensor<H>>,
    pad: usize,
) -> (FloatTensor<H>, Vec<u8>) {
    count();
    let s = conv_shape::<H>(x, w, pad);
    let (x, w) = (H::contiguous(x), H::contiguous(w));
    let b = b.map(H::contiguous);
    let (y, winners) = in_pool(|| {
        one_channel::forward_pooled(&s, H::slice(&x), H::slice(&w), b.as_ref().map(H::slice))
    });
    (H::tensor(y, [s.n, s.co, s.ho() / 2, s.wo() / 2]), winners)
}

/// What the fused convolution and max-pool's backward step needs: the convolution's, and each
/// pooling window's winner.
#[derive(Debug, Clone)]
struct ConvPoolState<H: HostBackend> {
    conv: ConvState<H>,
    winners: Arc<Vec<u8>>,
}

impl<H: HostBackend> LayerGrads<H> for ConvPoolState<H> {
    fn grads(&self, dy: &FloatTensor<H>, need_x: bool) -> LayerGradients<H> {
        let conv = &self.conv;
        let s = conv_shape::<H>(&conv.x, &conv.weight, conv.pad);
        let dy = H::contiguous(dy);
        in_pool(|| {
            let dx = need_x.then(|| {
                let full = pool::backward(H::slice(&dy), &self.winners, s.n * s.co, s.ho(), s.wo());
                let w = H::contiguous(&conv.weight);
                let dx = conv::input_grad(&s, H::slice(&w), &full);
                H::tensor(dx, [s.n, s.c, s.h, s.w])
            });
            let (x, dy) = (H::contiguous(&conv.x), H::slice(&dy));
            let (dw, db) = one_channel::pooled_param_grads(&s, H::slice(&x), dy, &self.winners);
            (
                dx,
                H::tensor(dw, [s.co, s.c, s.k, s.k]),
                H::tensor(db, [s.co]),
            )
        })
    }
}

/// The 2x2 max-pool on a host backend, or `x` back for Burn's own op.
pub(crate) fn max_pool2x2<B: Backend>(x: Tensor<B, 4>) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    if x.dtype() != DType::F32 {
        return Err(x);
    }
    on_host_backends!(max_pool2x2_on, x)
}

fn max_pool2x2_on<B: Backend, H: HostBackend>(
    x: Tensor<B, 4>,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let x = match cast::<Tensor<B, 4>, Tensor<Autodiff<H>, 4>>(x) {
        Ok(x) => return Ok(back(pool_autodiff(x))),
        Err(x) => x,
    };
    match cast::<Tensor<B, 4>, Tensor<H, 4>>(x) {
        Ok(x) => {
            let (y, _) = pool_host::<H>(&prim(x));
            Ok(back(float::<H, 4>(y)))
        }
        Err(x) => Err(x),
    }
}

/// A tensor of a concrete backend back as the caller's generic type (which it is).
fn back<T: 'static, B: Backend, const D: usize>(t: T) -> Tensor<B, D> {
    match cast::<T, Tensor<B, D>>(t) {
        Ok(t) => t,
        Err(_) => unreachable!("the caller's backend was checked to be this one"),
    }
}

fn prim<H: Backend, const D: usize>(t: Tensor<H, D>) -> FloatTensor<H> {
    t.into_primitive().tensor()
}

fn float<H: Backend, const D: usize>(t: FloatTensor<H>) -> Tensor<H, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn conv_shape<H: HostBackend>(x: &FloatTensor<H>, w: &FloatTensor<H>, pad: usize) -> ConvShape {
    let [n, c, h, wd] = H::dims(x);
    let [co, _, k, _] = H::dims(w);
    ConvShape {
        n,
        c,
        h,
        w: wd,
        co,
        k,
        pad,
    }
}

fn conv_host<H: HostBackend>(
    x: &FloatTensor<H>,
    w: &FloatTensor<H>,
    b: Option<&FloatTensor<H>>,
    pad: usize,
) -> FloatTensor<H> {
    count();
    let s = conv_shape::<H>(x, w, pad);
    let (x, w) = (H::contiguous(x), H::contiguous(w));
    let b = b.map(H::contiguous);
    let y = in_pool(|| conv::forward(&s, H::slice(&x), H::slice(&w), b.as_ref().map(H::slice)));
    H::tensor(y, [s.n, s.co, s.ho(), s.wo()])
}

/// What the convolution's backward step needs: its input, weight and padding.
#[derive(Debug, Clone)]
struct ConvState<H: HostBackend> {
    x: FloatTensor<H>,
    weight: FloatTensor<H>,
    pad: usize,
}

/// A layer's input (when asked for), weight and bias gradients.
type LayerGradients<H> = (Option<FloatTensor<H>>, FloatTensor<H>, FloatTensor<H>);

impl<H: HostBackend> LayerGrads<H> for ConvState<H> {
    fn grads(&self, dy: &FloatTensor<H>, need_x: bool) -> LayerGradients<H> {
        in_pool(|| self.grads_here(dy, need_x))
    }
}

impl<H: HostBackend> ConvState<H> {
    fn grads_here(&self, dy: &FloatTensor<H>, need_x: bool) -> LayerGradients<H> {
        let s = conv_shape::<H>(&self.x, &self.weight, self.pad);
        let (x, w, dy) = (
            H::contiguous(&self.x),
            H::contiguous(&self.weight),
            H::contiguous(dy),
        );
        let dx = need_x.then(|| {
            H::tensor(
                conv::input_grad(&s, H::slice(&w), H::slice(&dy)),
                [s.n, s.c, s.h, s.w],
            )
        });
        let (dw, db) = conv::param_grads(&s, H::slice(&x), H::slice(&dy));
        (
            dx,
            H::tensor(dw, [s.co, s.c, s.k, s.k]),
            H::tensor(db, [s.co]),
        )
    }
}

/// A layer whose backward step gives its input, weight and bias gradients from the output's.
trait LayerGrads<H: HostBackend>: Clone + std::fmt::Debug + Send + 'static {
    /// Input (when `need_x`), weight and bias gradients from the output's, `dy`.
    fn grads(&self, dy: &FloatTensor<H>, need_x: bool) -> LayerGradients<H>;
}

/// The backward step of a layer `S` with a bias: parents input, weight, bias.
#[derive(Debug)]
struct WithBias<S>(std::marker::PhantomData<S>);

impl<H: HostBackend, S: LayerGrads<H>> Backward<H, 3> for WithBias<S> {
    type State = S;

    fn backward(self, ops: Ops<S, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<H>(&ops.node);
        let (dx, dw, db) = ops.state.grads(&dy, node_x.is_some());
        let ids = [node_x, node_w, node_b].map(|node| node.map(|node| node.id));
        register_all::<H>(grads, ids.into_iter().zip([dx, Some(dw), Some(db)]));
    }
}

/// The backward step of a layer `S` without a bias: parents input, weight.
#[derive(Debug)]
struct NoBias<S>(std::marker::PhantomData<S>);

impl<H: HostBackend, S: LayerGrads<H>> Backward<H, 2> for NoBias<S> {
    type State = S;

    fn backward(self, ops: Ops<S, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<H>(&ops.node);
        let (dx, dw, _) = ops.state.grads(&dy, node_x.is_some());
        let ids = [node_x, node_w].map(|node| node.map(|node| node.id));
        register_all::<H>(grads, ids.into_iter().zip([dx, Some(dw)]));
    }
}

/// `y` of a layer with parents `x`, `w` and maybe `b`, recorded with its backward step.
fn tracked_layer<H: HostBackend, S: LayerGrads<H>>(
    [x, w]: [&FloatTensor<Autodiff<H>>; 2],
    b: Option<&FloatTensor<Autodiff<H>>>,
    state: impl FnOnce() -> S,
    y: FloatTensor<H>,
) -> FloatTensor<Autodiff<H>> {
    match b {
        Some(b) => tracked(WithBias(std::marker::PhantomData), [x, w, b], state, y),
        None => tracked(NoBias(std::marker::PhantomData), [x, w], state, y),
    }
}

/// The convolution (then the max-pool, when `pooled`), recorded with its backward step.
fn conv_autodiff<H: HostBackend>(
    x: Tensor<Autodiff<H>, 4>,
    w: Tensor<Autodiff<H>, 4>,
    b: Option<Tensor<Autodiff<H>, 1>>,
    pad: usize,
    pooled: bool,
) -> Tensor<Autodiff<H>, 4> {
    let x = x.into_primitive().tensor();
    let w = w.into_primitive().tensor();
    let b = b.map(|b| b.into_primitive().tensor());
    let (xp, wp, bp) = (&x.primitive, &w.primitive, b.as_ref().map(|b| &b.primitive));
    let conv = || ConvState::<H> {
        x: xp.clone(),
        weight: wp.clone(),
        pad,
    };
    let out = match pooled {
        false => tracked_layer([&x, &w], b.as_ref(), conv, conv_host::<H>(xp, wp, bp, pad)),
        true => {
            let (y, winners) = conv_pool_host::<H>(xp, wp, bp, pad);
            let state = || ConvPoolState {
                conv: conv(),
                winners: Arc::new(winners),
            };
            tracked_layer([&x, &w], b.as_ref(), state, y)
        }
    };
    float(out)
}

/// `y`, computed from `parents`, recorded in the autodiff graph with backward step `op`: with
/// the state `state` builds when a parent needs a gradient, untracked otherwise.
fn tracked<H: HostBackend, O: Backward<H, N>, const N: usize>(
    op: O,
    parents: [&FloatTensor<Autodiff<H>>; N],
    state: impl FnOnce() -> O::State,
    y: FloatTensor<H>,
) -> FloatTensor<Autodiff<H>> {
    let nodes = parents.map(|parent| parent.node.clone());
    match op
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// Pools `x`; returns the output and each window's winner.
fn pool_host<H: HostBackend>(x: &FloatTensor<H>) -> (FloatTensor<H>, Vec<u8>) {
    count();
    let [n, c, h, w] = H::dims(x);
    let xv = H::contiguous(x);
    let (y, arg) = in_pool(|| pool::forward(H::slice(&xv), n * c, h, w));
    (H::tensor(y, [n, c, h / 2, w / 2]), arg)
}

/// What the pool's backward step needs: the input's shape and each window's winner.
#[derive(Debug, Clone)]
struct PoolState {
    shape: [usize; 4],
    winners: Arc<Vec<u8>>,
}

#[derive(Debug)]
struct MaxPool2x2;

impl<H: HostBackend> Backward<H, 1> for MaxPool2x2 {
    type State = PoolState;

    fn backward(self, ops: Ops<PoolState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<H>(&ops.node);
        if let Some(node) = node_x {
            let [n, c, h, w] = ops.state.shape;
            let dy = H::contiguous(&dy);
            let winners = &ops.state.winners;
            let dx = in_pool(|| pool::backward(H::slice(&dy), winners, n * c, h, w));
            grads.register::<H>(node.id, H::tensor(dx, [n, c, h, w]));
        }
    }
}

fn pool_autodiff<H: HostBackend>(x: Tensor<Autodiff<H>, 4>) -> Tensor<Autodiff<H>, 4> {
    let x = x.into_primitive().tensor();
    let (y, winners) = pool_host::<H>(&x.primitive);
    let state = || PoolState {
        shape: H::dims(&x.primitive),
        winners: Arc::new(winners),
    };
    let out = tracked(MaxPool2x2, [&x], state, y);
    float(out)
}

/// What batch norm's backward step needs.
#[derive(Debug, Clone)]
struct NormState<H: HostBackend> {
    x: FloatTensor<H>,
    mean: Arc<Vec<f32>>,
    var: Arc<Vec<f32>>,
    gamma: Arc<Vec<f32>>,
    epsilon: f64,
}

#[derive(Debug)]
struct BatchNormTrain;

impl<H: HostBackend> Backward<H, 3> for BatchNormTrain {
    type State = NormState<H>;

    fn backward(self, ops: Ops<NormState<H>, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<H>(&ops.node);
        let st = ops.state;
        let [n, c, h, w] = H::dims(&st.x);
        let s = NormShape { n, c, hw: h * w };
        let (x, dy) = (H::contiguous(&st.x), H::contiguous(&dy));
        let (dx, dgamma, dbeta) = in_pool(|| {
            norm::backward(
                &s,
                H::slice(&x),
                H::slice(&dy),
                &st.mean,
                &st.var,
                &st.gamma,
                st.epsilon,
            )
        });
        let ids = [node_x, node_gamma, node_beta].map(|node| node.map(|node| node.id));
        let tensors = [
            H::tensor(dx, [n, c, h, w]),
            H::tensor(dgamma, [c]),
            H::tensor(dbeta, [c]),
        ];
        register_all::<H>(grads, ids.into_iter().zip(tensors.map(Some)));
    }
}

type Norm<B> = (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>);

/// Training-mode batch norm on a host backend: `(y, batch mean, batch variance)`, or the inputs
/// back.
pub(crate) fn batch_norm_train<B: Backend>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    epsilon: f64,
) -> Result<Norm<B>, Norm<B>> {
    if x.dtype() != DType::F32 || gamma.dtype() != DType::F32 || beta.dtype() != DType::F32 {
        return Err((x, gamma, beta));
    }
    on_host_backends!(batch_norm_train_on, (x, gamma, beta), epsilon)
}

fn batch_norm_train_on<B: Backend, H: HostBackend>(
    inputs: Norm<B>,
    epsilon: f64,
) -> Result<Norm<B>, Norm<B>> {
    let inputs = match cast::<Norm<B>, Norm<Autodiff<H>>>(inputs) {
        Ok((x, gamma, beta)) => {
            let (y, mean, var) = norm_autodiff(x, gamma, beta, epsilon);
            return Ok((back(y), back(mean), back(var)));
        }
        Err(inputs) => inputs,
    };
    match cast::<Norm<B>, Norm<H>>(inputs) {
        Ok((x, gamma, beta)) => {
            let (x, gamma, beta) = (prim(x), prim(gamma), prim(beta));
            let (mean, var) = norm_statistics::<H>(&x);
            let y = norm_apply::<H>(&x, &mean, &var, &gamma, &beta, epsilon);
            let c = mean.len();
            let stat = |v: Vec<f32>| back(float::<H, 1>(H::tensor(v, [c])));
            Ok((back(float::<H, 4>(y)), stat(mean), stat(var)))
        }
        Err(inputs) => Err(inputs),
    }
}

/// Normalises `x` (`[n, c, h, w]`) with `mean`, `var`, then applies `gamma`, `beta`.
fn norm_apply<H: HostBackend>(
    x: &FloatTensor<H>,
    mean: &[f32],
    var: &[f32],
    gamma: &FloatTensor<H>,
    beta: &FloatTensor<H>,
    epsilon: f64,
) -> FloatTensor<H> {
    count();
    let [n, c, h, w] = H::dims(x);
    let s = NormShape { n, c, hw: h * w };
    let (gamma, beta, x) = (H::contiguous(gamma), H::contiguous(beta), H::contiguous(x));
    let (scale, shift) = norm::scale_shift(mean, var, H::slice(&gamma), H::slice(&beta), epsilon);
    let y = in_pool(|| norm::affine(&s, H::slice(&x), &scale, &shift));
    H::tensor(y, [n, c, h, w])
}

/// Batch statistics of `x` (`[n, c, h, w]`).
fn norm_statistics<H: HostBackend>(x: &FloatTensor<H>) -> (Vec<f32>, Vec<f32>) {
    let [n, c, h, w] = H::dims(x);
    let xv = H::contiguous(x);
    in_pool(|| norm::statistics(&NormShape { n, c, hw: h * w }, H::slice(&xv)))
}

/// Training-mode batch norm's output and batch statistics, tracked by autodiff.
type TrackedNorm<H> = (
    Tensor<Autodiff<H>, 4>,
    Tensor<Autodiff<H>, 1>,
    Tensor<Autodiff<H>, 1>,
);

fn norm_autodiff<H: HostBackend>(
    x: Tensor<Autodiff<H>, 4>,
    gamma: Tensor<Autodiff<H>, 1>,
    beta: Tensor<Autodiff<H>, 1>,
    epsilon: f64,
) -> TrackedNorm<H> {
    let x = x.into_primitive().tensor();
    let gamma = gamma.into_primitive().tensor();
    let beta = beta.into_primitive().tensor();
    let (mean, var) = norm_statistics::<H>(&x.primitive);
    let y = norm_apply::<H>(
        &x.primitive,
        &mean,
        &var,
        &gamma.primitive,
        &beta.primitive,
        epsilon,
    );
    let c = mean.len();
    let stat = |v: &[f32]| Tensor::<Autodiff<H>, 1>::from_inner(float(H::tensor(v.to_vec(), [c])));
    let (mean_t, var_t) = (stat(&mean), stat(&var));
    let state = || {
        let g = H::contiguous(&gamma.primitive);
        NormState::<H> {
            x: x.primitive.clone(),
            mean: Arc::new(mean),
            var: Arc::new(var),
            gamma: Arc::new(H::slice(&g).to_vec()),
            epsilon,
        }
    };
    let out = tracked(BatchNormTrain, [&x, &gamma, &beta], state, y);
    (float(out), mean_t, var_t)
}

type NormEval<B> = (Tensor<B, 4>, [Tensor<B, 1>; 4]);

/// Inference-mode batch norm on a host backend with the given statistics, or the inputs back.
pub(crate) fn batch_norm_eval<B: Backend>(
    x: Tensor<B, 4>,
    params: [Tensor<B, 1>; 4],
    epsilon: f64,
) -> Result<Tensor<B, 4>, NormEval<B>> {
    if x.dtype() != DType::F32 || params.iter().any(|p| p.dtype() != DType::F32) {
        return Err((x, params));
    }
    on_host_backends!(batch_norm_eval_on, (x, params), epsilon)
}

fn batch_norm_eval_on<B: Backend, H: HostBackend>(
    inputs: NormEval<B>,
    epsilon: f64,
) -> Result<Tensor<B, 4>, NormEval<B>> {
    match cast::<NormEval<B>, NormEval<H>>(inputs) {
        Ok((x, [mean, var, gamma, beta])) => {
            let (mean, var) = (H::contiguous(&prim(mean)), H::contiguous(&prim(var)));
            let y = norm_apply::<H>(
                &prim(x),
                H::slice(&mean),
                H::slice(&var),
                &prim(gamma),
                &prim(beta),
                epsilon,
            );
            Ok(back(float::<H, 4>(y)))
        }
        Err(inputs) => Err(inputs),
    }
}

type Dense<B> = (Tensor<B, 2>, Tensor<B, 2>, Option<Tensor<B, 1>>);

/// The fully connected layer on a host backend, or the inputs back for Burn's own op.
pub(crate) fn linear<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Result<Tensor<B, 2>, Dense<B>> {
    let [_, i] = x.dims();
    let [wi, o] = weight.dims();
    let fits = i == wi && bias.as_ref().is_none_or(|b| b.dims() == [o]);
    let f32s = x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    if !fits || !f32s {
        return Err((x, weight, bias));
    }
    on_host_backends!(linear_on, (x, weight, bias))
}

fn linear_on<B: Backend, H: HostBackend>(inputs: Dense<B>) -> Result<Tensor<B, 2>, Dense<B>> {
    if inputs.0.dims()[0] < H::OWN_LINEAR_MIN_ROWS {
        return Err(inputs);
    }
    let inputs = match cast::<Dense<B>, Dense<Autodiff<H>>>(inputs) {
        Ok((x, w, b)) => return Ok(back(linear_autodiff(x, w, b))),
        Err(inputs) => inputs,
    };
    match cast::<Dense<B>, Dense<H>>(inputs) {
        Ok((x, w, b)) => {
            let y = linear_host::<H>(&prim(x), &prim(w), b.map(prim).as_ref());
            Ok(back(float::<H, 2>(y)))
        }
        Err(inputs) => Err(inputs),
    }
}

fn linear_shape<H: HostBackend>(x: &FloatTensor<H>, w: &FloatTensor<H>) -> LinearShape {
    let [n, i] = H::dims(x);
    let [_, o] = H::dims(w);
    LinearShape { n, i, o }
}

fn linear_host<H: HostBackend>(
    x: &FloatTensor<H>,
    w: &FloatTensor<H>,
    b: Option<&FloatTensor<H>>,
) -> FloatTensor<H> {
    count();
    let s = linear_shape::<H>(x, w);
    let (x, w) = (H::contiguous(x), H::contiguous(w));
    let b = b.map(H::contiguous);
    // Not moved onto the pool: a small product runs here, a large one splits onto the pool.
    let y = linear::forward(&s, H::slice(&x), H::slice(&w), b.as_ref().map(H::slice));
    H::tensor(y, [s.n, s.o])
}

/// What the fully connected layer's backward step needs: its input and weight.
#[derive(Debug, Clone)]
struct LinearState<H: HostBackend> {
    x: FloatTensor<H>,
    weight: FloatTensor<H>,
}

impl<H: HostBackend> LayerGrads<H> for LinearState<H> {
    fn grads(&self, dy: &FloatTensor<H>, need_x: bool) -> LayerGradients<H> {
        let s = linear_shape::<H>(&self.x, &self.weight);
        let (x, w, dy) = (
            H::contiguous(&self.x),
            H::contiguous(&self.weight),
            H::contiguous(dy),
        );
        let dx = need_x.then(|| linear::input_grad(&s, H::slice(&w), H::slice(&dy)));
        let (dw, db) = linear::param_grads(&s, H::slice(&x), H::slice(&dy));
        (
            dx.map(|dx| H::tensor(dx, [s.n, s.i])),
            H::tensor(dw, [s.i, s.o]),
            H::tensor(db, [s.o]),
        )
    }
}

/// Registers each gradient whose parent is tracked.
fn register_all<H: HostBackend>(
    grads: &mut Gradients,
    pairs: impl IntoIterator<Item = (Option<NodeId>, Option<FloatTensor<H>>)>,
) {
    for (node, grad) in pairs {
        if let (Some(node), Some(grad)) = (node, grad) {
            grads.register::<H>(node, grad);
        }
    }
}

fn linear_autodiff<H: HostBackend>(
    x: Tensor<Autodiff<H>, 2>,
    w: Tensor<Autodiff<H>, 2>,
    b: Option<Tensor<Autodiff<H>, 1>>,
) -> Tensor<Autodiff<H>, 2> {
    let x = x.into_primitive().tensor();
    let w = w.into_primitive().tensor();
    let b = b.map(|b| b.into_primitive().tensor());
    let y = linear_host::<H>(&x.primitive, &w.primitive, b.as_ref().map(|b| &b.primitive));
    let state = || LinearState::<H> {
        x: x.primitive.clone(),
        weight: w.primitive.clone(),
    };
    let out = tracked_layer([&x, &w], b.as_ref(), state, y);
    float(out)
}

/// A parameter, its gradient and its two moments (none before the first step).
type AdamInputs<B, const D: usize> = (Tensor<B, D>, Tensor<B, D>, Option<[Tensor<B, D>; 2]>);

/// Adam's update on a host backend, or the inputs back for Burn's ops (another backend or dtype).
pub(crate) fn adam_update<B: Backend, const D: usize>(
    step: &AdamStep,
    inputs: AdamInputs<B, D>,
) -> Result<[Tensor<B, D>; 3], AdamInputs<B, D>> {
    let (param, grad, moments) = &inputs;
    let f32s = [param, grad]
        .into_iter()
        .chain(moments.iter().flatten())
        .all(|t| t.dtype() == DType::F32);
    if !f32s {
        return Err(inputs);
    }
    #[cfg(feature = "flex")]
    let inputs = match adam_update_on::<B, burn_flex::Flex, D>(step, inputs) {
        Ok(out) => return Ok(out),
        Err(inputs) => inputs,
    };
    #[cfg(feature = "ndarray")]
    let inputs = match adam_update_on::<B, burn_ndarray::NdArray, D>(step, inputs) {
        Ok(out) => return Ok(out),
        Err(inputs) => inputs,
    };
    Err(inputs)
}

fn adam_update_on<B: Backend, H: HostBackend, const D: usize>(
    step: &AdamStep,
    inputs: AdamInputs<B, D>,
) -> Result<[Tensor<B, D>; 3], AdamInputs<B, D>> {
    let (param, grad, moments) = cast::<AdamInputs<B, D>, AdamInputs<H, D>>(inputs)?;
    let (shape, device) = (param.shape(), param.device());
    let grad = H::contiguous(&prim(grad));
    let mut param = H::owned(prim(param));
    let [mut m, mut v] = match moments {
        Some(moments) => moments.map(|t| H::owned(prim(t))),
        None => [(); 2].map(|_| H::owned(prim(Tensor::<H, D>::zeros(shape.clone(), &device)))),
    };
    let values = adam::AdamValues {
        param: H::owned_slice(&mut param),
        m: H::owned_slice(&mut m),
        v: H::owned_slice(&mut v),
    };
    adam::update(step, H::slice(&grad), values);
    Ok([param, m, v].map(|t| back(float::<H, D>(H::from_owned(t)))))
}
