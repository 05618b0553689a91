//! Routes [`crate::conv2d`] and [`crate::max_pool2x2`] to the CPU kernels when the backend is
//! Burn's flex (`Flex` for inference, `Autodiff<Flex>` for training, with our own backward
//! steps registered in Burn's autodiff graph).

use std::any::TypeId;
use std::sync::Arc;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::{DType, TensorPrimitive};
use burn_flex::{Flex, FlexTensor};

use crate::cast::cast;
use crate::cpu::conv::{self, ConvShape};
use crate::cpu::norm::{self, NormShape};
use crate::cpu::pool;

type Ad = Autodiff<Flex>;

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
type Conv<B> = (Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>);

/// Whether `B` is flex or autodiff over flex.
pub(crate) fn is_flex<B: Backend>() -> bool {
    let b = TypeId::of::<B>();
    b == TypeId::of::<Flex>() || b == TypeId::of::<Ad>()
}

/// The convolution on flex, or the inputs back for Burn's own op (another backend or dtype).
pub(crate) fn conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    padding: usize,
) -> Result<Tensor<B, 4>, Conv<B>> {
    let [_, c, h, w] = x.dims();
    let [_, wc, k, k2] = weight.dims();
    let fits = c == wc && k == k2 && k <= h + 2 * padding && k <= w + 2 * padding;
    let f32s = x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    if !fits || !f32s {
        return Err((x, weight, bias));
    }
    let inputs = match cast::<Conv<B>, Conv<Ad>>((x, weight, bias)) {
        Ok((x, w, b)) => return Ok(back(conv_autodiff(x, w, b, padding))),
        Err(inputs) => inputs,
    };
    match cast::<Conv<B>, Conv<Flex>>(inputs) {
        Ok((x, w, b)) => {
            let y = conv_flex(&prim(x), &prim(w), b.map(prim).as_ref(), padding);
            Ok(back(Tensor::<Flex, 4>::from_primitive(
                TensorPrimitive::Float(y),
            )))
        }
        Err(inputs) => Err(inputs),
    }
}

/// The 2x2 max-pool on flex, or `x` back for Burn's own op.
pub(crate) fn max_pool2x2<B: Backend>(x: Tensor<B, 4>) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    if x.dtype() != DType::F32 {
        return Err(x);
    }
    let x = match cast::<Tensor<B, 4>, Tensor<Ad, 4>>(x) {
        Ok(x) => return Ok(back(pool_autodiff(x))),
        Err(x) => x,
    };
    match cast::<Tensor<B, 4>, Tensor<Flex, 4>>(x) {
        Ok(x) => {
            let (y, _) = pool_flex(&prim(x));
            Ok(back(Tensor::<Flex, 4>::from_primitive(
                TensorPrimitive::Float(y),
            )))
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

fn prim<const D: usize>(t: Tensor<Flex, D>) -> FlexTensor {
    t.into_primitive().tensor()
}

/// The contiguous `f32` values of `t` (copied only when `t` is a strided view).
fn values(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("an f32 tensor made contiguous has an f32 slice")
}

fn dims<const D: usize>(t: &FlexTensor) -> [usize; D] {
    use burn::tensor::TensorMetadata;
    t.shape().dims()
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn conv_shape(x: &FlexTensor, w: &FlexTensor, pad: usize) -> ConvShape {
    let [n, c, h, wd] = dims(x);
    let [co, _, k, _] = dims(w);
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

fn conv_flex(x: &FlexTensor, w: &FlexTensor, b: Option<&FlexTensor>, pad: usize) -> FlexTensor {
    count();
    let s = conv_shape(x, w, pad);
    let (x, w) = (values(x), values(w));
    let b = b.map(values);
    let y = in_pool(|| conv::forward(&s, slice(&x), slice(&w), b.as_ref().map(slice)));
    tensor(y, [s.n, s.co, s.ho(), s.wo()])
}

/// What the convolution's backward step needs: its input, weight and padding.
#[derive(Debug, Clone)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    pad: usize,
}

impl ConvState {
    /// Input, weight and bias gradients (the input's only when `need_x`).
    fn grads(&self, dy: &FlexTensor, need_x: bool) -> (Option<FlexTensor>, FlexTensor, FlexTensor) {
        in_pool(|| self.grads_here(dy, need_x))
    }

    fn grads_here(
        &self,
        dy: &FlexTensor,
        need_x: bool,
    ) -> (Option<FlexTensor>, FlexTensor, FlexTensor) {
        let s = conv_shape(&self.x, &self.weight, self.pad);
        let (x, w, dy) = (values(&self.x), values(&self.weight), values(dy));
        let dx = need_x.then(|| {
            tensor(
                conv::input_grad(&s, slice(&w), slice(&dy)),
                [s.n, s.c, s.h, s.w],
            )
        });
        let (dw, db) = conv::param_grads(&s, slice(&x), slice(&dy));
        (dx, tensor(dw, [s.co, s.c, s.k, s.k]), tensor(db, [s.co]))
    }
}

#[derive(Debug)]
struct ConvWithBias;

impl Backward<Flex, 3> for ConvWithBias {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (dx, dw, db) = ops.state.grads(&dy, node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, dw);
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, db);
        }
    }
}

#[derive(Debug)]
struct ConvNoBias;

impl Backward<Flex, 2> for ConvNoBias {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (dx, dw, _) = ops.state.grads(&dy, node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, dw);
        }
    }
}

fn conv_autodiff(
    x: Tensor<Ad, 4>,
    w: Tensor<Ad, 4>,
    b: Option<Tensor<Ad, 1>>,
    pad: usize,
) -> Tensor<Ad, 4> {
    let x = x.into_primitive().tensor();
    let w = w.into_primitive().tensor();
    let b = b.map(|b| b.into_primitive().tensor());
    let y = conv_flex(
        &x.primitive,
        &w.primitive,
        b.as_ref().map(|b| &b.primitive),
        pad,
    );
    let state = || ConvState {
        x: x.primitive.clone(),
        weight: w.primitive.clone(),
        pad,
    };
    let out = match &b {
        Some(b) => match ConvWithBias
            .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state(), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
        None => match ConvNoBias
            .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state(), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// Pools `x`; returns the output and each window's winner.
fn pool_flex(x: &FlexTensor) -> (FlexTensor, Vec<u8>) {
    count();
    let [n, c, h, w] = dims(x);
    let xv = values(x);
    let (y, arg) = in_pool(|| pool::forward(slice(&xv), n * c, h, w));
    (tensor(y, [n, c, h / 2, w / 2]), arg)
}

/// What the pool's backward step needs: the input's shape and each window's winner.
#[derive(Debug, Clone)]
struct PoolState {
    shape: [usize; 4],
    winners: Arc<Vec<u8>>,
}

#[derive(Debug)]
struct MaxPool2x2;

impl Backward<Flex, 1> for MaxPool2x2 {
    type State = PoolState;

    fn backward(self, ops: Ops<PoolState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node_x {
            let [n, c, h, w] = ops.state.shape;
            let dy = values(&dy);
            let winners = &ops.state.winners;
            let dx = in_pool(|| pool::backward(slice(&dy), winners, n * c, h, w));
            grads.register::<Flex>(node.id, tensor(dx, [n, c, h, w]));
        }
    }
}

fn pool_autodiff(x: Tensor<Ad, 4>) -> Tensor<Ad, 4> {
    let x = x.into_primitive().tensor();
    let (y, winners) = pool_flex(&x.primitive);
    let out = match MaxPool2x2
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            PoolState {
                shape: dims(&x.primitive),
                winners: Arc::new(winners),
            },
            y,
        ),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// What batch norm's backward step needs.
#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    mean: Arc<Vec<f32>>,
    var: Arc<Vec<f32>>,
    gamma: Arc<Vec<f32>>,
    epsilon: f64,
}

#[derive(Debug)]
struct BatchNormTrain;

impl Backward<Flex, 3> for BatchNormTrain {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let st = ops.state;
        let [n, c, h, w] = dims(&st.x);
        let s = NormShape { n, c, hw: h * w };
        let (x, dy) = (values(&st.x), values(&dy));
        let (dx, dgamma, dbeta) = in_pool(|| {
            norm::backward(
                &s,
                slice(&x),
                slice(&dy),
                &st.mean,
                &st.var,
                &st.gamma,
                st.epsilon,
            )
        });
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(dx, [n, c, h, w]));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor(dgamma, [c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor(dbeta, [c]));
        }
    }
}

type Norm<B> = (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>);

/// Training-mode batch norm on flex: `(y, batch mean, batch variance)`, or the inputs back.
pub(crate) fn batch_norm_train<B: Backend>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    epsilon: f64,
) -> Result<Norm<B>, Norm<B>> {
    if x.dtype() != DType::F32 || gamma.dtype() != DType::F32 || beta.dtype() != DType::F32 {
        return Err((x, gamma, beta));
    }
    let inputs = match cast::<Norm<B>, Norm<Ad>>((x, gamma, beta)) {
        Ok((x, gamma, beta)) => {
            let (y, mean, var) = norm_autodiff(x, gamma, beta, epsilon);
            return Ok((back(y), back(mean), back(var)));
        }
        Err(inputs) => inputs,
    };
    match cast::<Norm<B>, Norm<Flex>>(inputs) {
        Ok((x, gamma, beta)) => {
            let (x, gamma, beta) = (prim(x), prim(gamma), prim(beta));
            let (mean, var) = norm_statistics(&x);
            let y = norm_apply(&x, &mean, &var, &gamma, &beta, epsilon);
            let c = mean.len();
            let stat = |v: Vec<f32>| back(flex_tensor::<1>(tensor(v, [c])));
            Ok((back(flex_tensor::<4>(y)), stat(mean), stat(var)))
        }
        Err(inputs) => Err(inputs),
    }
}

/// Normalises `x` (`[n, c, h, w]`) with `mean`, `var`, then applies `gamma`, `beta`.
fn norm_apply(
    x: &FlexTensor,
    mean: &[f32],
    var: &[f32],
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    count();
    let [n, c, h, w] = dims(x);
    let s = NormShape { n, c, hw: h * w };
    let (gamma, beta, x) = (values(gamma), values(beta), values(x));
    let (scale, shift) = norm::scale_shift(mean, var, slice(&gamma), slice(&beta), epsilon);
    let y = in_pool(|| norm::affine(&s, slice(&x), &scale, &shift));
    tensor(y, [n, c, h, w])
}

/// Batch statistics of `x` (`[n, c, h, w]`).
fn norm_statistics(x: &FlexTensor) -> (Vec<f32>, Vec<f32>) {
    let [n, c, h, w] = dims(x);
    let xv = values(x);
    in_pool(|| norm::statistics(&NormShape { n, c, hw: h * w }, slice(&xv)))
}

fn norm_autodiff(
    x: Tensor<Ad, 4>,
    gamma: Tensor<Ad, 1>,
    beta: Tensor<Ad, 1>,
    epsilon: f64,
) -> (Tensor<Ad, 4>, Tensor<Ad, 1>, Tensor<Ad, 1>) {
    let x = x.into_primitive().tensor();
    let gamma = gamma.into_primitive().tensor();
    let beta = beta.into_primitive().tensor();
    let (mean, var) = norm_statistics(&x.primitive);
    let y = norm_apply(
        &x.primitive,
        &mean,
        &var,
        &gamma.primitive,
        &beta.primitive,
        epsilon,
    );
    let c = mean.len();
    let stat = |v: &[f32]| Tensor::<Ad, 1>::from_inner(flex_tensor(tensor(v.to_vec(), [c])));
    let (mean_t, var_t) = (stat(&mean), stat(&var));
    let out = match BatchNormTrain
        .prepare::<NoCheckpointing>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let g = values(&gamma.primitive);
            let state = NormState {
                x: x.primitive.clone(),
                mean: Arc::new(mean),
                var: Arc::new(var),
                gamma: Arc::new(slice(&g).to_vec()),
                epsilon,
            };
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    (
        Tensor::from_primitive(TensorPrimitive::Float(out)),
        mean_t,
        var_t,
    )
}

fn flex_tensor<const D: usize>(t: FlexTensor) -> Tensor<Flex, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

type NormEval<B> = (Tensor<B, 4>, [Tensor<B, 1>; 4]);

/// Inference-mode batch norm on flex with the given statistics, or the inputs back.
pub(crate) fn batch_norm_eval<B: Backend>(
    x: Tensor<B, 4>,
    params: [Tensor<B, 1>; 4],
    epsilon: f64,
) -> Result<Tensor<B, 4>, NormEval<B>> {
    if x.dtype() != DType::F32 || params.iter().any(|p| p.dtype() != DType::F32) {
        return Err((x, params));
    }
    match cast::<NormEval<B>, NormEval<Flex>>((x, params)) {
        Ok((x, [mean, var, gamma, beta])) => {
            let (mean, var) = (values(&prim(mean)), values(&prim(var)));
            let y = norm_apply(
                &prim(x),
                slice(&mean),
                slice(&var),
                &prim(gamma),
                &prim(beta),
                epsilon,
            );
            Ok(back(flex_tensor::<4>(y)))
        }
        Err(inputs) => Err(inputs),
    }
}
