//! digitnet's CPU kernels against Burn's own ops on the same backend, for each backend the
//! kernels serve (flex and ndarray): outputs and every gradient (input, weight, bias) agree to
//! float rounding, for odd sizes and paddings. Each check is a function generic over the
//! inference backend `I`; `against_each_backend!` makes it a test per backend.

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tolerance};

fn random<I: Backend, const D: usize>(shape: [usize; D]) -> Tensor<Autodiff<I>, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

fn assert_close<I: Backend, const D: usize>(what: &str, ours: Tensor<I, D>, burns: Tensor<I, D>) {
    let scale = burns
        .clone()
        .abs()
        .max()
        .into_scalar()
        .elem::<f32>()
        .max(1.0);
    let diff = (ours - burns).abs().max().into_scalar().elem::<f32>();
    assert!(
        diff <= 1e-4 * scale,
        "{what}: differs by {diff} (scale {scale})"
    );
}

/// A layer's input, weight and bias (all tracked).
struct Params<'a, I: Backend, const D: usize> {
    x: &'a Tensor<Autodiff<I>, D>,
    weight: &'a Tensor<Autodiff<I>, D>,
    bias: Option<&'a Tensor<Autodiff<I>, 1>>,
}

/// Our output and Burn's agree, and so do the gradients they send back from `upstream` to each
/// of `params`.
fn assert_same_outputs_and_grads<I: Backend, const D: usize>(
    case: &str,
    ours: Tensor<Autodiff<I>, D>,
    burns: Tensor<Autodiff<I>, D>,
    upstream: Tensor<Autodiff<I>, D>,
    params: Params<'_, I, D>,
) {
    let output = format!("{case}: output");
    assert_close(&output, ours.clone().inner(), burns.clone().inner());
    let g_ours = (ours * upstream.clone()).sum().backward();
    let g_burn = (burns * upstream).sum().backward();
    let grad = |t: &Tensor<Autodiff<I>, D>, g| t.grad(g).expect("gradient");
    let (x, weight) = (params.x, params.weight);
    assert_close(&format!("{case}: dx"), grad(x, &g_ours), grad(x, &g_burn));
    let dw = format!("{case}: dw");
    assert_close(&dw, grad(weight, &g_ours), grad(weight, &g_burn));
    if let Some(b) = params.bias {
        let (ours, burns) = (b.grad(&g_ours).unwrap(), b.grad(&g_burn).unwrap());
        assert_close(&format!("{case}: db"), ours, burns);
    }
}

fn the_kernels_are_in_use<I: Backend>() {
    assert!(crate::uses_own_kernels::<Autodiff<I>>());
    assert!(crate::uses_own_kernels::<I>());
}

fn conv2d_and_its_gradients_match_burn<I: Backend>() {
    // (batch, in channels, height, width, out channels, kernel, padding, bias)
    for (n, c, h, w, co, k, pad, bias) in [
        (4, 1, 28, 28, 8, 3, 1, true),
        (3, 5, 7, 9, 6, 3, 1, false),
        (2, 3, 6, 5, 4, 5, 2, true),
        (1, 2, 5, 5, 3, 3, 0, true),
        (2, 4, 3, 3, 2, 5, 2, false),
        // Batches the kernels cut into groups of images per GEMM (3 here), with a last group
        // of 1 (22 images) or 2 (20 images, 7x7 outputs).
        (22, 3, 5, 6, 4, 3, 1, true),
        (20, 6, 7, 7, 5, 3, 1, false),
        (64, 2, 14, 14, 3, 3, 1, true),
        // CNN A's second and third layers (direct kernels with AVX-512, every pass), with bias;
        // CNN B's second (its weight gradient direct).
        (4, 16, 14, 14, 32, 5, 2, true),
        (3, 32, 7, 7, 64, 5, 2, true),
        (3, 32, 14, 14, 64, 3, 1, true),
    ] {
        let case = format!("n{n} c{c} {h}x{w} co{co} k{k} pad{pad} bias {bias}");
        let x = random::<I, _>([n, c, h, w]).require_grad();
        let weight = random::<I, _>([co, c, k, k]).require_grad();
        let b = bias.then(|| random::<I, _>([co]).require_grad());
        let upstream = random::<I, _>([n, co, h + 2 * pad + 1 - k, w + 2 * pad + 1 - k]);

        let calls = crate::own_kernel_calls();
        let ours = crate::conv2d(x.clone(), weight.clone(), b.clone(), pad);
        assert!(crate::own_kernel_calls() > calls, "{case}: Burn's op ran");
        let options = ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
        let burns = module::conv2d(x.clone(), weight.clone(), b.clone(), options);
        let params = Params {
            x: &x,
            weight: &weight,
            bias: b.as_ref(),
        };
        assert_same_outputs_and_grads(&case, ours, burns, upstream, params);
    }
}

fn conv2d_max_pool2x2_and_its_gradients_match_burns_two_ops<I: Backend>() {
    // (batch, in channels, height, width, out channels, kernel, padding, bias): one channel
    // (fused: 16 channels, 20 = 16 + 4, rows of 33 = three vectors, an odd last row and column
    // dropped by the pool), three channels (the two ops, unfused) and CNN A's second layer.
    for (n, c, h, w, co, k, pad, bias) in [
        (3, 1, 28, 28, 16, 5, 2, true),
        (2, 1, 9, 7, 20, 3, 1, false),
        (2, 1, 10, 33, 33, 3, 1, true),
        (2, 3, 8, 8, 4, 3, 1, true),
        (2, 16, 14, 14, 32, 5, 2, true),
    ] {
        let case = format!("n{n} c{c} {h}x{w} co{co} k{k} pad{pad} bias {bias}");
        let x = random::<I, _>([n, c, h, w]).require_grad();
        let weight = random::<I, _>([co, c, k, k]).require_grad();
        let b = bias.then(|| random::<I, _>([co]).require_grad());
        let (ho, wo) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
        let upstream = random::<I, _>([n, co, ho / 2, wo / 2]);

        let calls = crate::own_kernel_calls();
        let ours = crate::conv2d_max_pool2x2(x.clone(), weight.clone(), b.clone(), pad);
        assert!(crate::own_kernel_calls() > calls, "{case}: Burn's ops ran");
        let options = ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
        let conv = module::conv2d(x.clone(), weight.clone(), b.clone(), options);
        let burns = module::max_pool2d(conv, [2, 2], [2, 2], [0, 0], [1, 1], false);
        assert_eq!(ours.dims(), burns.dims(), "{case}");
        let params = Params {
            x: &x,
            weight: &weight,
            bias: b.as_ref(),
        };
        assert_same_outputs_and_grads(&case, ours, burns, upstream, params);
    }
}

fn conv2d_without_gradients_on_the_input_gives_the_weight_gradient<I: Backend>() {
    let x = random::<I, _>([3, 1, 8, 8]);
    let weight = random::<I, _>([4, 1, 3, 3]).require_grad();
    let ours = crate::conv2d(x.clone(), weight.clone(), None, 1)
        .sum()
        .backward();
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let burns = module::conv2d(x, weight.clone(), None, options)
        .sum()
        .backward();
    assert_close(
        "dw",
        weight.grad(&ours).unwrap(),
        weight.grad(&burns).unwrap(),
    );
}

fn linear_and_its_gradients_match_burn<I: Backend>() {
    // (rows, inputs, outputs, bias): one image, a training batch, a batch split across tasks, and
    // CNN A's head (few outputs: the weight gradient's own kernel).
    for (n, i, o, bias) in [
        (1, 784, 128, true),
        (64, 784, 128, true),
        (1000, 64, 10, false),
        (64, 3136, 10, true),
    ] {
        let case = format!("{n}x{i}x{o} bias {bias}");
        let x = random::<I, 2>([n, i]).require_grad();
        let weight = random::<I, 2>([i, o]).require_grad();
        let b = bias.then(|| random::<I, 1>([o]).require_grad());
        let upstream = random::<I, 2>([n, o]);
        let ours = crate::linear(x.clone(), weight.clone(), b.clone());
        let burns = module::linear(x.clone(), weight.clone(), b.clone());
        let params = Params {
            x: &x,
            weight: &weight,
            bias: b.as_ref(),
        };
        assert_same_outputs_and_grads(&case, ours, burns, upstream, params);
    }
    // Inference backend, and a weight seen through a transposed view.
    let x = random::<I, 2>([3, 5]).inner();
    let weight = random::<I, 2>([4, 5]).inner().transpose();
    let burns = module::linear(x.clone(), weight.clone(), None);
    assert_close("inference", crate::linear(x, weight, None), burns);
}

fn strided_views_are_read_in_their_logical_order<I: Backend>() {
    // NHWC storage seen as NCHW: a view whose buffer is not row-major in its own shape.
    let x = random::<I, 4>([2, 6, 5, 3]).inner().permute([0, 3, 1, 2]);
    let weight = random::<I, 4>([3, 3, 4, 4]).inner().swap_dims(0, 1);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let burns = module::conv2d(x.clone(), weight.clone(), None, options);
    assert_close("conv", crate::conv2d(x.clone(), weight, None, 1), burns);
    let burns = module::max_pool2d(x.clone(), [2, 2], [2, 2], [0, 0], [1, 1], false);
    assert_close("pool", crate::max_pool2x2(x), burns);
}

fn max_pool2x2_and_its_gradient_match_burn<I: Backend>() {
    for shape in [[2, 3, 28, 28], [1, 2, 7, 7], [2, 1, 6, 9]] {
        let x = random::<I, _>(shape).require_grad();
        let calls = crate::own_kernel_calls();
        let ours = crate::max_pool2x2(x.clone());
        assert!(
            crate::own_kernel_calls() > calls,
            "{shape:?}: Burn's op ran"
        );
        let burns = module::max_pool2d(x.clone(), [2, 2], [2, 2], [0, 0], [1, 1], false);
        assert_eq!(ours.dims(), burns.dims(), "{shape:?}");
        assert_close(
            &format!("{shape:?}: output"),
            ours.clone().inner(),
            burns.clone().inner(),
        );
        let upstream = random::<I, _>(ours.dims());
        let g_ours = (ours * upstream.clone()).sum().backward();
        let g_burn = (burns * upstream).sum().backward();
        let (a, b) = (x.grad(&g_ours).unwrap(), x.grad(&g_burn).unwrap());
        assert_close(&format!("{shape:?}: dx"), a, b);
    }
}

fn inference_backend_gives_the_same_as_autodiff<I: Backend>() {
    let x = random::<I, _>([2, 3, 10, 10]);
    let weight = random::<I, _>([5, 3, 3, 3]);
    let inner = crate::conv2d(x.clone().inner(), weight.clone().inner(), None, 1);
    let tracked = crate::conv2d(x, weight, None, 1).inner();
    inner
        .into_data()
        .assert_approx_eq::<f32>(&tracked.into_data(), Tolerance::default());
}

fn batch_norm_matches_burns_module_in_training_and_inference<I: Backend>() {
    use burn::module::AutodiffModule;
    use burn::nn::BatchNormConfig;
    let device = Default::default();
    // Planes shorter and longer than the kernels' 16 summing lanes, with a ragged tail.
    for shape in [[4, 3, 6, 6], [1, 2, 3, 5], [3, 4, 7, 9], [64, 2, 14, 14]] {
        let c = shape[1];
        let norm = BatchNormConfig::new(c).init::<Autodiff<I>>(&device);
        let gamma = random::<I, _>([c]).require_grad();
        let beta = random::<I, _>([c]).require_grad();
        let norm = burn::nn::BatchNorm {
            gamma: burn::module::Param::from_tensor(gamma.clone()),
            beta: burn::module::Param::from_tensor(beta.clone()),
            ..norm
        };
        let x = (random::<I, _>(shape) * 3.0 + 1.0).require_grad();
        let upstream = random::<I, _>(shape);

        let calls = crate::own_kernel_calls();
        let (ours, mean, var) =
            crate::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        assert!(
            crate::own_kernel_calls() > calls,
            "{shape:?}: Burn's ops ran"
        );
        let burns = norm.forward(x.clone());
        assert_close(
            &format!("{shape:?}: output"),
            ours.clone().inner(),
            burns.clone().inner(),
        );
        // Burn's running statistics after one step from (0, 1) with momentum 0.1.
        let running_mean = norm.running_mean.value_sync().inner();
        assert_close("mean", mean.inner() * 0.1, running_mean);
        let running_var = norm.running_var.value_sync().inner();
        assert_close("var", var.inner() * 0.1 + 0.9, running_var);

        let g_ours = (ours * upstream.clone()).sum().backward();
        let g_burn = (burns * upstream).sum().backward();
        assert_close("dx", x.grad(&g_ours).unwrap(), x.grad(&g_burn).unwrap());
        let dgamma = (
            gamma.grad(&g_ours).unwrap(),
            norm.gamma.val().grad(&g_burn).unwrap(),
        );
        assert_close("dgamma", dgamma.0, dgamma.1);
        let dbeta = (
            beta.grad(&g_ours).unwrap(),
            norm.beta.val().grad(&g_burn).unwrap(),
        );
        assert_close("dbeta", dbeta.0, dbeta.1);

        let inference = norm.valid();
        let x = x.inner();
        let burns = inference.forward(x.clone());
        let ours = crate::batch_norm_eval(
            x,
            inference.running_mean.value(),
            inference.running_var.value(),
            inference.gamma.val(),
            inference.beta.val(),
            1e-5,
        );
        assert_close("inference", ours, burns);
    }
}

fn a_single_image_split_across_threads_matches_burn_inside_and_outside_the_pool<I: Backend>() {
    // One image, 64 channels of 288-long patches: the forward splits its GEMM by channels.
    let x = Tensor::<I, 4>::random(
        [1, 32, 14, 14],
        Distribution::Normal(0.0, 1.0),
        &Default::default(),
    );
    let weight = Tensor::<I, 4>::random(
        [64, 32, 3, 3],
        Distribution::Normal(0.0, 1.0),
        &Default::default(),
    );
    let bias = Tensor::<I, 1>::random([64], Distribution::Normal(0.0, 1.0), &Default::default());
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let burns = module::conv2d(x.clone(), weight.clone(), Some(bias.clone()), options);
    let outside = crate::conv2d(x.clone(), weight.clone(), Some(bias.clone()), 1);
    let inside = crate::on_kernel_threads::<I, _>(|| crate::conv2d(x, weight, Some(bias), 1));
    assert_close("outside the pool", outside, burns.clone());
    assert_close("inside the pool", inside, burns);
}

fn on_kernel_threads_runs_on_a_pool_thread_once<I: Backend>() {
    // A test thread is not one of rayon's.
    assert_eq!(rayon::current_thread_index(), None);
    let outer = crate::on_kernel_threads::<Autodiff<I>, _>(|| {
        let here = rayon::current_thread_index();
        // Nested: runs in place, on the same pool thread.
        let nested = crate::on_kernel_threads::<I, _>(rayon::current_thread_index);
        (here, nested)
    });
    assert!(outer.0.is_some(), "not moved to a pool thread");
    assert_eq!(outer.0, outer.1);
}

/// Three Adam steps of `adam_update` (the kernel on this backend, and Burn's tensor operations)
/// against Burn's own `Adam` with the same settings, with and without weight decay: the same
/// parameters and moments, value for value.
fn adam_update_matches_burns_adam<I: Backend>() {
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::{AdamConfig, AdamState, SimpleOptimizer};

    let device = Default::default();
    for weight_decay in [None, Some(0.01f32)] {
        let burns_adam = AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(weight_decay.map(WeightDecayConfig::new))
            .build();
        let mut param = Tensor::<I, 2>::random([37, 530], Distribution::Normal(0.0, 1.0), &device);
        let mut state: Option<AdamState<I, 2>> = None;
        for time in 1..=3 {
            let grad = Tensor::<I, 2>::random([37, 530], Distribution::Normal(0.0, 0.1), &device);
            let step = crate::AdamStep {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8,
                weight_decay,
                lr: 1e-3 * time as f64,
                time,
            };
            let moments = state
                .clone()
                .map(|s| [s.momentum.moment_1, s.momentum.moment_2]);
            let ours = crate::adam_update(&step, param.clone(), grad.clone(), moments.clone());
            let ops = crate::adam::adam_update_ops(&step, param.clone(), grad.clone(), moments);
            let (burns, next) = burns_adam.step(step.lr, param, grad, state);
            let next = next.expect("Adam keeps a state");
            assert_eq!(next.momentum.time, time);
            let expected = [&burns, &next.momentum.moment_1, &next.momentum.moment_2];
            for (what, [ours, ops, burns]) in ["param", "moment 1", "moment 2"]
                .into_iter()
                .zip((0..3).map(|i| [&ours[i], &ops[i], expected[i]]))
            {
                let case = format!("step {time}, weight decay {weight_decay:?}: {what}");
                assert_eq!(ours.to_data(), burns.to_data(), "{case}, kernel");
                assert_eq!(ops.to_data(), burns.to_data(), "{case}, tensor operations");
            }
            (param, state) = (burns, Some(next));
        }
    }
}

/// A module `$name` with each `$check` above as a `#[test]` on backend `$inner`.
macro_rules! checks_on {
    ($name:ident, $inner:ty; $($check:ident),* $(,)?) => {
        mod $name {
            $(
                #[test]
                fn $check() {
                    super::$check::<$inner>();
                }
            )*
        }
    };
}

/// Every check above, as tests on backend `$inner` in module `$name`.
macro_rules! against_burn_on {
    ($name:ident, $inner:ty) => {
        checks_on!(
            $name,
            $inner;
            the_kernels_are_in_use,
            conv2d_and_its_gradients_match_burn,
            conv2d_max_pool2x2_and_its_gradients_match_burns_two_ops,
            conv2d_without_gradients_on_the_input_gives_the_weight_gradient,
            linear_and_its_gradients_match_burn,
            strided_views_are_read_in_their_logical_order,
            max_pool2x2_and_its_gradient_match_burn,
            inference_backend_gives_the_same_as_autodiff,
            batch_norm_matches_burns_module_in_training_and_inference,
            a_single_image_split_across_threads_matches_burn_inside_and_outside_the_pool,
            on_kernel_threads_runs_on_a_pool_thread_once,
            adam_update_matches_burns_adam,
        );
    };
}

#[cfg(feature = "flex")]
against_burn_on!(flex, burn::backend::Flex);
#[cfg(feature = "ndarray")]
against_burn_on!(ndarray, burn::backend::NdArray);

#[test]
fn other_backends_use_burns_ops() {
    use burn::backend::NdArray;
    // ndarray with f64 elements is not one of the backends the kernels serve.
    assert!(!crate::uses_own_kernels::<NdArray<f64>>());
    assert!(!crate::uses_own_kernels::<Autodiff<NdArray<f64>>>());
}
