//! Adam's update of one parameter in a single pass over its values: the new parameter and both
//! moments from the old ones and the gradient, with Burn's `Adam` arithmetic, operation for
//! operation. Moments that fall below `f32::MIN_POSITIVE` are stored as zero (see
//! [`crate::adam_update`]).

use rayon::prelude::*;

use crate::AdamStep;

/// Values per task when a parameter is large enough to split across threads.
const CHUNK: usize = 1 << 14;

/// The per-value constants of one step.
struct Factors {
    beta_1: f32,
    beta_2: f32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    /// `sqrt(1 - beta_2^t) / (1 - beta_1^t)`, Burn's `combined_factor`.
    combined: f32,
    /// `epsilon * sqrt(1 - beta_2^t)`.
    epsilon: f32,
    lr: f32,
    weight_decay: Option<f32>,
}

impl Factors {
    fn new(step: &AdamStep) -> Self {
        let time = step.time as i32;
        let correction_2 = (1.0 - step.beta_2.powi(time)).sqrt();
        Self {
            beta_1: step.beta_1,
            beta_2: step.beta_2,
            one_minus_beta_1: 1.0 - step.beta_1,
            one_minus_beta_2: 1.0 - step.beta_2,
            combined: correction_2 / (1.0 - step.beta_1.powi(time)),
            epsilon: step.epsilon * correction_2,
            lr: step.lr as f32,
            weight_decay: step.weight_decay,
        }
    }
}

/// A parameter and its two moments, overwritten by one step (moments of zeros before the first:
/// `0 * beta + x` is `x`, so that step gives what Burn's first step does).
pub(crate) struct AdamValues<'a> {
    pub param: &'a mut [f32],
    pub m: &'a mut [f32],
    pub v: &'a mut [f32],
}

/// One Adam step of a parameter with gradient `grad`, in place; large parameters are split
/// across rayon's threads.
pub(crate) fn update(step: &AdamStep, grad: &[f32], values: AdamValues) {
    split_update(&Factors::new(step), grad, values);
}

/// [`update`] with its constants worked out.
fn split_update(f: &Factors, grad: &[f32], values: AdamValues) {
    let AdamValues { param, m, v } = values;
    if param.len() < 2 * CHUNK {
        update_range(f, grad, AdamValues { param, m, v });
        return;
    }
    param
        .par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(grad.par_chunks(CHUNK))
        .for_each(|(((param, m), v), grad)| update_range(f, grad, AdamValues { param, m, v }));
}

/// One step over a run of values.
fn update_range(f: &Factors, grad: &[f32], values: AdamValues) {
    let AdamValues { param, m, v } = values;
    let n = param.len().min(grad.len()).min(m.len()).min(v.len());
    let (param, m, v, grad) = (&mut param[..n], &mut m[..n], &mut v[..n], &grad[..n]);
    for i in 0..n {
        let g = decayed(f, grad[i], param[i]);
        m[i] = flushed(m[i] * f.beta_1 + g * f.one_minus_beta_1);
        v[i] = flushed(v[i] * f.beta_2 + g * g * f.one_minus_beta_2);
        param[i] = stepped(f, param[i], m[i], v[i]);
    }
}

/// The gradient with Burn's L2 penalty added (`param * penalty + grad`).
#[inline(always)]
fn decayed(f: &Factors, g: f32, x: f32) -> f32 {
    match f.weight_decay {
        Some(penalty) => x * penalty + g,
        None => g,
    }
}

/// `x - lr * (m * combined) / (sqrt(v) + epsilon)`, in Burn's order of operations.
#[inline(always)]
fn stepped(f: &Factors, x: f32, m: f32, v: f32) -> f32 {
    x - (m * f.combined) / (v.sqrt() + f.epsilon) * f.lr
}

/// `value`, or zero when it is subnormal.
#[inline(always)]
fn flushed(value: f32) -> f32 {
    if value.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(time: usize) -> AdamStep {
        AdamStep {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: None,
            lr: 1e-3,
            time,
        }
    }

    #[test]
    fn a_moment_that_decays_below_the_smallest_normal_float_becomes_zero() {
        // A parameter whose gradient stays zero: its first moment decays by beta_1 each step.
        let (mut param, grad) = ([0.5f32, 0.5], [0.0f32, 0.0]);
        let (mut m, mut v) = ([f32::MIN_POSITIVE, 1.0], [1e-6f32, 1e-6]);
        let values = AdamValues {
            param: &mut param,
            m: &mut m,
            v: &mut v,
        };
        update(&step(2), &grad, values);
        assert_eq!(m[0], 0.0, "0.9 * MIN_POSITIVE is subnormal");
        assert_eq!(m[1], 0.9);
        assert!(v.iter().all(|v| v.is_normal()));
    }

    #[test]
    fn a_split_parameter_gets_the_same_values_as_one_pass() {
        let len = 2 * CHUNK + 123;
        let param: Vec<f32> = (0..len).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect();
        let grad: Vec<f32> = (0..len).map(|i| (i % 13) as f32 * 0.01 - 0.06).collect();
        let m: Vec<f32> = grad.iter().map(|g| g * 0.5).collect();
        let v: Vec<f32> = grad.iter().map(|g| g * g + 1e-4).collect();
        // One set of constants for both: `powi` folded at compile time can round differently.
        let f = Factors::new(&step(3));
        let run = |split: bool| {
            let (mut param, mut m, mut v) = (param.clone(), m.clone(), v.clone());
            let values = AdamValues {
                param: &mut param,
                m: &mut m,
                v: &mut v,
            };
            match split {
                true => split_update(&f, &grad, values),
                false => update_range(&f, &grad, values),
            }
            (param, m, v)
        };
        assert_eq!(run(true), run(false));
    }
}
