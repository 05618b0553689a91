//! A fully connected layer, `y = x * w + b` with `x [n, i]`, `w [i, o]` (Burn's `Linear` layout)
//! and `b [o]`, and its gradients. A large product is cut into row blocks, one GEMM per rayon
//! task; a small one (a batch of 64 through an MLP's first layer is 6.4 M multiply-adds) runs
//! whole on the calling thread, where handing it to the pool would cost more than it saves.

use rayon::prelude::*;

use super::gemm::{View, sgemm};
use super::simd::{self, Kernel, LANES, Vector16};

/// The layer's sizes: `n` rows (images) of `i` inputs to `o` outputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinearShape {
    pub n: usize,
    pub i: usize,
    pub o: usize,
}

/// Multiply-adds below which a product runs on the calling thread (burn-flex's own matmul
/// draws the line at 192^3).
const PARALLEL_WORK: usize = 1 << 23;

/// Rows per task for a product with `rows` rows of `work` multiply-adds each: all of them when
/// the product is small, else one block per thread.
fn rows_per_task(rows: usize, work: usize) -> usize {
    if rows.saturating_mul(work) < PARALLEL_WORK {
        return rows.max(1);
    }
    rows.div_ceil(rayon::current_num_threads().max(1)).max(1)
}

/// Runs `task(out_block, in_block, first_row)` over matching blocks of `rows` rows of `out`
/// (`out_cols` wide) and `input` (`in_cols` wide): inline for one block, on rayon's pool for
/// several.
fn for_row_blocks(
    out: &mut [f32],
    out_cols: usize,
    input: &[f32],
    in_cols: usize,
    rows: usize,
    task: impl Fn(&mut [f32], &[f32], usize) + Sync,
) {
    let (out_block, in_block) = (rows * out_cols.max(1), rows * in_cols);
    if out.len() <= out_block {
        return task(out, input, 0);
    }
    out.par_chunks_mut(out_block)
        .enumerate()
        .for_each(|(b, out)| {
            let first = b * rows;
            let input = match in_cols {
                0 => input,
                _ => &input[(first * in_cols).min(input.len())..],
            };
            task(out, &input[..in_block.min(input.len())], first)
        });
}

/// `y = x * w + b`.
pub(crate) fn forward(s: &LinearShape, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
    let mut y = vec![0.0f32; s.n * s.o];
    let rows = rows_per_task(s.n, s.i * s.o);
    for_row_blocks(&mut y, s.o, x, s.i, rows, |y, x, _| {
        let r = y.len() / s.o.max(1);
        let beta = match b {
            Some(b) => {
                y.chunks_mut(s.o).for_each(|row| row.copy_from_slice(b));
                1.0
            }
            None => 0.0,
        };
        sgemm(r, s.i, s.o, View::rows(x, s.i), View::rows(w, s.o), beta, y);
    });
    y
}

/// The input's gradient, `dx = dy * w^T`.
pub(crate) fn input_grad(s: &LinearShape, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut dx = vec![0.0f32; s.n * s.i];
    let rows = rows_per_task(s.n, s.i * s.o);
    for_row_blocks(&mut dx, s.i, dy, s.o, rows, |dx, dy, _| {
        let r = dx.len() / s.i.max(1);
        let wt = View::transposed(w, s.o);
        sgemm(r, s.o, s.i, View::rows(dy, s.o), wt, 0.0, dx);
    });
    dx
}

/// The weight's and bias's gradients, `dw = x^T * dy` and `db` = the column sums of `dy`.
pub(crate) fn param_grads(s: &LinearShape, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let dw = match s.o <= LANES {
        true => simd::dispatch(FewOutputsWeightGrad { s, x, dy }),
        false => gemm_weight_grad(s, x, dy),
    };
    let mut db = vec![0.0f32; s.o];
    for row in dy.chunks(s.o.max(1)) {
        db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
    }
    (dw, db)
}

/// `dw = x^T * dy` by GEMM, in row blocks of `dw` when it is large.
fn gemm_weight_grad(s: &LinearShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut dw = vec![0.0f32; s.i * s.o];
    let rows = rows_per_task(s.i, s.n * s.o);
    for_row_blocks(&mut dw, s.o, &[], 0, rows, |dw, _, first| {
        let r = dw.len() / s.o.max(1);
        // Rows `first..first + r` of x^T: columns of x, read in place.
        let xt = View::transposed(&x[first..], s.i);
        sgemm(r, s.n, s.o, xt, View::rows(dy, s.o), 0.0, dw);
    });
    dw
}

/// `dw = x^T * dy` for a layer with at most [`LANES`] outputs (a classifier's last layer, such
/// as 3136 -> 10): sixteen inputs at a time, each output's sums in its own register, so `x` is
/// read once and `dw` written once. A GEMM of that shape has one short side and runs slowly.
struct FewOutputsWeightGrad<'a> {
    s: &'a LinearShape,
    x: &'a [f32],
    dy: &'a [f32],
}

impl Kernel for FewOutputsWeightGrad<'_> {
    type Output = Vec<f32>;

    #[inline(always)]
    fn run<S: Vector16>(self, simd: S) -> Vec<f32> {
        let LinearShape { n, i, o } = *self.s;
        let mut dw = vec![0.0f32; i * o];
        let mut sums = [[0.0f32; LANES]; LANES];
        for first in (0..i).step_by(LANES) {
            let width = LANES.min(i - first);
            let mut acc = [simd.load(&[0.0; LANES]); LANES];
            for r in 0..n {
                let mut lanes = [0.0f32; LANES];
                lanes[..width].copy_from_slice(&self.x[r * i + first..][..width]);
                let xv = simd.load(&lanes);
                for (a, &g) in acc[..o].iter_mut().zip(&self.dy[r * o..][..o]) {
                    *a = simd.mul_add(g, xv, *a);
                }
            }
            for (sum, &a) in sums[..o].iter_mut().zip(&acc[..o]) {
                simd.store(a, sum);
            }
            for (l, row) in dw[first * o..][..width * o].chunks_mut(o).enumerate() {
                row.iter_mut()
                    .zip(&sums[..o])
                    .for_each(|(d, sum)| *d = sum[l]);
            }
        }
        dw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 + seed * 3) % 17) as f32 / 8.0 - 1.0)
            .collect()
    }

    fn at(m: &[f32], cols: usize, r: usize, c: usize) -> f32 {
        m[r * cols + c]
    }

    #[test]
    fn forward_and_gradients_match_the_definitions() {
        // One row; small products (one task); large ones split into blocks, with a short last
        // block (1000 rows) and a long, thin one (the weight gradient's 784 rows).
        for (n, i, o) in [
            (1, 5, 3),
            (3, 784, 128),
            (1000, 784, 128),
            (4099, 64, 33),
            (64, 1, 1),
            (64, 3136, 10),
            (5, 37, 16),
        ] {
            let s = LinearShape { n, i, o };
            let (x, w, b, dy) = (
                values(n * i, 1),
                values(i * o, 2),
                values(o, 3),
                values(n * o, 4),
            );
            let y = forward(&s, &x, &w, Some(&b));
            let dx = input_grad(&s, &w, &dy);
            let (dw, db) = param_grads(&s, &x, &dy);
            let close = |a: f32, e: f32, what: &str| {
                assert!(
                    (a - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{n}x{i}x{o} {what}: {a} vs {e}"
                );
            };
            for (r, c) in [(0, 0), (n - 1, o - 1), (n / 2, o / 2)] {
                let e = (0..i)
                    .map(|k| at(&x, i, r, k) * at(&w, o, k, c))
                    .sum::<f32>()
                    + b[c];
                close(at(&y, o, r, c), e, "y");
            }
            for (r, c) in [(0, 0), (n - 1, i - 1), (n / 2, i / 2)] {
                let e = (0..o)
                    .map(|k| at(&dy, o, r, k) * at(&w, o, c, k))
                    .sum::<f32>();
                close(at(&dx, i, r, c), e, "dx");
            }
            for (r, c) in [(0, 0), (i - 1, o - 1), (i / 2, o / 2)] {
                let e = (0..n)
                    .map(|k| at(&x, i, k, r) * at(&dy, o, k, c))
                    .sum::<f32>();
                close(at(&dw, o, r, c), e, "dw");
            }
            let e = (0..n).map(|k| at(&dy, o, k, o - 1)).sum::<f32>();
            close(db[o - 1], e, "db");
            assert_eq!(forward(&s, &x, &w, None).len(), n * o);
        }
    }
}
