//! Batch normalisation over `[n, c, hw]` (statistics per channel over the batch and the
//! positions): the training forward pass, its backward pass, and the inference pass.

use rayon::prelude::*;

/// Sizes: `n` images, `c` channels, `hw` positions per channel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NormShape {
    pub n: usize,
    pub c: usize,
    pub hw: usize,
}

impl NormShape {
    /// Channel `ch`'s planes of `x`, one per image.
    fn planes<'a>(&self, x: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> {
        (0..self.n).map(move |i| &x[(i * self.c + ch) * self.hw..][..self.hw])
    }

    fn count(&self) -> f64 {
        (self.n * self.hw) as f64
    }
}

/// Independent partial sums per plane: a single running sum is one long chain of dependent
/// additions (about 4 cycles each), which made the statistics and the backward pass's sums the
/// slowest part of a batch-norm layer. Each plane is summed in this many `f32` lanes, which the
/// compiler keeps in vector registers, and the planes' totals are added in `f64`.
const LANES: usize = 16;

/// The sum of `f(v)` over `values`, in [`LANES`] partial sums.
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    let tail: f64 = rest.iter().map(|&v| f64::from(f(v))).sum();
    acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail
}

/// The sum of `f(a, b)` over pairs of `a` and `b`, in [`LANES`] partial sums.
fn lane_dot(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f64::from(f(x, y)))
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *acc += f(x, y);
        }
    }
    acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail
}

/// Per-channel mean and (biased) variance of `x`, as Burn's `BatchNorm` computes them.
pub(crate) fn statistics(s: &NormShape, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    (0..s.c)
        .into_par_iter()
        .map(|ch| {
            let sum: f64 = s.planes(x, ch).map(|p| lane_sum(p, |v| v)).sum();
            let mean = sum / s.count();
            let m = mean as f32;
            let sq: f64 = s
                .planes(x, ch)
                .map(|p| lane_sum(p, |v| (v - m) * (v - m)))
                .sum();
            (m, (sq / s.count()) as f32)
        })
        .unzip()
}

/// `y = x * scale[ch] + shift[ch]`, plane by plane.
pub(crate) fn affine(s: &NormShape, x: &[f32], scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    if s.hw == 0 {
        return y;
    }
    y.par_chunks_mut(s.hw)
        .zip(x.par_chunks(s.hw))
        .enumerate()
        .for_each(|(plane, (y, x))| {
            let (a, b) = (scale[plane % s.c], shift[plane % s.c]);
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x * a + b;
            }
        });
    y
}

/// The scale and shift that normalise with `mean`, `var`, then apply `gamma`, `beta`.
pub(crate) fn scale_shift(
    mean: &[f32],
    var: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>) {
    mean.iter()
        .zip(var)
        .zip(gamma.iter().zip(beta))
        .map(|((&m, &v), (&g, &b))| {
            let inv_std = (1.0 / (f64::from(v) + epsilon).sqrt()) as f32;
            (g * inv_std, b - m * g * inv_std)
        })
        .unzip()
}

/// Gradients of the training pass: `(dx, dgamma, dbeta)` for output gradient `dy`, given the
/// input `x`, its batch `mean` and `var`, and `gamma`.
pub(crate) fn backward(
    s: &NormShape,
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    var: &[f32],
    gamma: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let inv_std: Vec<f64> = var
        .iter()
        .map(|&v| 1.0 / (f64::from(v) + epsilon).sqrt())
        .collect();
    // Per channel: dbeta = sum(dy), dgamma = sum(dy * xhat).
    let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = (0..s.c)
        .into_par_iter()
        .map(|ch| {
            let m = mean[ch];
            let (mut g, mut b) = (0.0f64, 0.0f64);
            for (x, dy) in s.planes(x, ch).zip(s.planes(dy, ch)) {
                b += lane_sum(dy, |dy| dy);
                g += lane_dot(x, dy, |x, dy| dy * (x - m));
            }
            ((g * inv_std[ch]) as f32, b as f32)
        })
        .unzip();
    // dx = gamma * inv_std * (dy - dbeta / M - xhat * dgamma / M).
    let mut dx = vec![0.0f32; x.len()];
    if s.hw > 0 {
        let count = s.count();
        dx.par_chunks_mut(s.hw)
            .zip(x.par_chunks(s.hw).zip(dy.par_chunks(s.hw)))
            .enumerate()
            .for_each(|(plane, (dx, (x, dy)))| {
                let ch = plane % s.c;
                let is = inv_std[ch];
                let k = (f64::from(gamma[ch]) * is) as f32;
                let mean_b = (f64::from(dbeta[ch]) / count) as f32;
                let mean_g = (f64::from(dgamma[ch]) / count * is) as f32;
                let m = mean[ch];
                for (dx, (&x, &dy)) in dx.iter_mut().zip(x.iter().zip(dy)) {
                    *dx = k * (dy - mean_b - (x - m) * mean_g);
                }
            });
    }
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_match_a_plain_sum_for_every_length() {
        for len in [0, 1, 15, 16, 17, 49, 196, 785] {
            let a: Vec<f32> = (0..len).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
            let b: Vec<f32> = (0..len).map(|i| ((i * 13) % 7) as f32 * 0.5).collect();
            let plain: f64 = a.iter().map(|&v| f64::from(v * v)).sum();
            assert_eq!(lane_sum(&a, |v| v * v), plain, "len {len}");
            let plain: f64 = a.iter().zip(&b).map(|(&x, &y)| f64::from(x * y)).sum();
            assert_eq!(lane_dot(&a, &b, |x, y| x * y), plain, "len {len}");
        }
    }
}
