//! Stride-1 2D convolution by im2col + GEMM, forward and backward, parallel over the batch.

use std::cell::RefCell;

use rayon::prelude::*;

use super::gemm::{View, sgemm};

/// Sizes of one convolution: input `[n, c, h, w]`, weight `[co, c, k, k]`, `pad` zeros per side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub co: usize,
    pub k: usize,
    pub pad: usize,
}

impl ConvShape {
    /// Output height.
    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.k
    }

    /// Output width.
    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.k
    }

    fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.co * self.ho() * self.wo()
    }

    /// Rows of the im2col matrix: `c * k * k`.
    fn patch_len(&self) -> usize {
        self.c * self.k * self.k
    }

    fn positions(&self) -> usize {
        self.ho() * self.wo()
    }

    /// Images per GEMM in a batch: their patch matrices side by side, about [`GROUP_COLUMNS`]
    /// columns in all, so that a layer with few output positions (7x7 = 49) still makes a wide
    /// GEMM and the weights are packed once per group rather than once per image. At most an
    /// eighth of the batch per group, so every thread still gets groups to work on.
    fn group(&self) -> usize {
        GROUP_COLUMNS
            .div_ceil(self.positions().max(1))
            .min(self.n.div_ceil(8))
            .max(1)
    }

    /// For kernel offset `kk` along an axis of `len` input and `out` output pixels: the output
    /// range whose input pixel `o + kk - pad` lies inside the image.
    fn valid(&self, kk: usize, len: usize, out: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(kk).min(out);
        let hi = (len + self.pad).saturating_sub(kk).clamp(lo, out);
        (lo, hi)
    }
}

/// Target width of a grouped GEMM (see [`ConvShape::group`]).
const GROUP_COLUMNS: usize = 400;

thread_local! {
    /// This thread's patch matrix and side-by-side output, kept from call to call. Every kernel
    /// writes each element of them it later reads, so they are zeroed only when they grow.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` on this thread's scratch: a patch matrix of `cols` and a side-by-side output of
/// `wide` elements, both of unspecified contents.
fn with_scratch<R>(cols: usize, wide: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let (a, b) = &mut *scratch;
            grow(a, cols);
            grow(b, wide);
            f(&mut a[..cols], &mut b[..wide])
        }
        // Only if `f` ever ran a kernel on this thread again before returning.
        Err(_) => f(&mut vec![0.0; cols], &mut vec![0.0; wide]),
    })
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// Fills columns `offset..offset + ho * wo` of `cols` (`[c * k * k, width]`) with the patches of
/// one image `x` (`[c, h, w]`).
fn im2col(s: &ConvShape, x: &[f32], cols: &mut [f32], width: usize, offset: usize) {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    for ci in 0..s.c {
        let plane = &x[ci * s.h * s.w..][..s.h * s.w];
        for ki in 0..k {
            let (oh_lo, oh_hi) = s.valid(ki, s.h, ho);
            for kj in 0..k {
                let (ow_lo, ow_hi) = s.valid(kj, s.w, wo);
                let row = &mut cols[((ci * k + ki) * k + kj) * width + offset..][..ho * wo];
                for oh in 0..ho {
                    let out = &mut row[oh * wo..][..wo];
                    if oh < oh_lo || oh >= oh_hi {
                        out.fill(0.0);
                        continue;
                    }
                    let ih = oh + ki - s.pad;
                    out[..ow_lo].fill(0.0);
                    out[ow_hi..].fill(0.0);
                    let iw = ow_lo + kj - s.pad;
                    out[ow_lo..ow_hi].copy_from_slice(&plane[ih * s.w + iw..][..ow_hi - ow_lo]);
                }
            }
        }
    }
}

/// Adds the patch gradients in columns `offset..offset + ho * wo` of `cols` (`[c * k * k, width]`)
/// back onto one image's gradient `dx`.
fn col2im_add(s: &ConvShape, cols: &[f32], width: usize, offset: usize, dx: &mut [f32]) {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    for ci in 0..s.c {
        let plane = &mut dx[ci * s.h * s.w..][..s.h * s.w];
        for ki in 0..k {
            let (oh_lo, oh_hi) = s.valid(ki, s.h, ho);
            for kj in 0..k {
                let (ow_lo, ow_hi) = s.valid(kj, s.w, wo);
                let row = &cols[((ci * k + ki) * k + kj) * width + offset..][..ho * wo];
                for oh in oh_lo..oh_hi {
                    let ih = oh + ki - s.pad;
                    let iw = ow_lo + kj - s.pad;
                    let dst = &mut plane[ih * s.w + iw..][..ow_hi - ow_lo];
                    for (d, g) in dst.iter_mut().zip(&row[oh * wo + ow_lo..oh * wo + ow_hi]) {
                        *d += g;
                    }
                }
            }
        }
    }
}

/// Multiply-adds per image from which a batch smaller than the thread count splits each image's
/// GEMM across threads (by blocks of output channels) rather than giving one thread per image.
const SPLIT_MACS: usize = 1 << 20;

/// `y = conv(x, weight) + bias`: `x [n, c, h, w]`, `weight [co, c, k, k]`, `bias [co]`; returns
/// `[n, co, ho, wo]`.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (p, r) = (s.positions(), s.patch_len());
    let mut y = vec![0.0f32; s.n * s.out_len()];
    if s.out_len() == 0 {
        return y;
    }
    let threads = rayon::current_num_threads();
    if s.n < threads && s.co * r * p >= SPLIT_MACS {
        forward_split(s, x, weight, bias, &mut y, threads);
        return y;
    }
    let g = s.group();
    y.par_chunks_mut(g * s.out_len())
        .zip(x.par_chunks(g * s.image_len().max(1)))
        .for_each(|(y, x)| {
            with_scratch(r * g * p, s.co * g * p, |cols, wide| {
                let images = y.len() / s.out_len();
                if images == 1 {
                    im2col(s, x, cols, p, 0);
                    channels_forward(s, weight, bias, &cols[..r * p], 0, y);
                    return;
                }
                // The group's patches side by side: one GEMM `[co, r] x [r, images * p]`.
                let width = images * p;
                for (i, x) in x.chunks(s.image_len()).enumerate() {
                    im2col(s, x, cols, width, i * p);
                }
                let (cols, wide) = (&cols[..r * width], &mut wide[..s.co * width]);
                let beta = fill_bias(bias, wide, width);
                sgemm(
                    s.co,
                    r,
                    width,
                    View::rows(weight, r),
                    View::rows(cols, width),
                    beta,
                    wide,
                );
                // `[co, images * p]` to `[images, co, p]`.
                for (i, y) in y.chunks_mut(s.out_len()).enumerate() {
                    for (row, out) in wide.chunks(width).zip(y.chunks_mut(p)) {
                        out.copy_from_slice(&row[i * p..][..p]);
                    }
                }
            })
        });
    y
}

/// Fills every row of `c` (rows of `width`) with its channel's bias; the GEMM's `beta`: 1 when
/// there is a bias to add to, else 0.
fn fill_bias(bias: Option<&[f32]>, c: &mut [f32], width: usize) -> f32 {
    match bias {
        Some(bias) => {
            for (row, &b) in c.chunks_mut(width).zip(bias) {
                row.fill(b);
            }
            1.0
        }
        None => 0.0,
    }
}

/// The output gradients of a group of images (`[images, co, p]`) as one `[co, images * p]`
/// matrix: `dy` itself for a single image, else copied side by side into `wide`.
fn side_by_side<'a>(s: &ConvShape, dy: &'a [f32], wide: &'a mut [f32]) -> &'a [f32] {
    let p = s.positions();
    let width = dy.len() / s.co;
    if width == p {
        return dy;
    }
    let wide = &mut wide[..s.co * width];
    for (i, dy) in dy.chunks(s.out_len()).enumerate() {
        for (row, src) in wide.chunks_mut(width).zip(dy.chunks(p)) {
            row[i * p..][..p].copy_from_slice(src);
        }
    }
    wide
}

/// Output channels `co0..` of one image (as many as `y` holds rows of `ho * wo`) from its patches
/// `cols`: `y = weight[co0..] * cols + bias[co0..]`.
fn channels_forward(
    s: &ConvShape,
    weight: &[f32],
    bias: Option<&[f32]>,
    cols: &[f32],
    co0: usize,
    y: &mut [f32],
) {
    let (p, r) = (s.positions(), s.patch_len());
    let m = y.len() / p;
    let beta = fill_bias(bias.map(|b| &b[co0..]), y, p);
    sgemm(
        m,
        r,
        p,
        View::rows(&weight[co0 * r..], r),
        View::rows(cols, p),
        beta,
        y,
    );
}

/// [`forward`] for a batch smaller than the thread count (a single image, in inference): every
/// image's patches first, then each image's output channels in blocks, one task per block.
fn forward_split(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    threads: usize,
) {
    let (p, r) = (s.positions(), s.patch_len());
    let mut cols = vec![0.0f32; s.n * r * p];
    cols.par_chunks_mut(r * p)
        .zip(x.par_chunks(s.image_len().max(1)))
        .for_each(|(cols, x)| im2col(s, x, cols, p, 0));
    let blocks = threads.div_ceil(s.n);
    // Blocks of whole 8-row panels (the AVX2 GEMM kernel's height; half the AVX-512 one's).
    let rows = s.co.div_ceil(blocks).next_multiple_of(8).min(s.co);
    y.par_chunks_mut(s.out_len())
        .zip(cols.par_chunks(r * p))
        .for_each(|(y, cols)| {
            y.par_chunks_mut(rows * p)
                .enumerate()
                .for_each(|(i, y)| channels_forward(s, weight, bias, cols, i * rows, y));
        });
}

/// The transpose of a row-major `rows x cols` matrix.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; rows * cols];
    for (i, row) in m.chunks(cols).take(rows).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            t[j * rows + i] = v;
        }
    }
    t
}

/// The input gradient `[n, c, h, w]` for output gradient `dy [n, co, ho, wo]`.
pub(crate) fn input_grad(s: &ConvShape, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let (p, r) = (s.positions(), s.patch_len());
    let mut dx = vec![0.0f32; s.n * s.image_len()];
    if s.image_len() == 0 || s.out_len() == 0 {
        return dx;
    }
    let g = s.group();
    // weight^T `[r, co]`, laid out once: the GEMM packs a row-major operand faster than a
    // transposed view of one.
    let weight_t = transpose(weight, s.co, r);
    dx.par_chunks_mut(g * s.image_len())
        .zip(dy.par_chunks(g * s.out_len()))
        .for_each(|(dx, dy)| {
            with_scratch(r * g * p, s.co * g * p, |cols, wide| {
                let width = dy.len() / s.co;
                let dy = side_by_side(s, dy, wide);
                sgemm(
                    r,
                    s.co,
                    width,
                    View::rows(&weight_t, s.co),
                    View::rows(dy, width),
                    0.0,
                    &mut cols[..r * width],
                );
                for (i, dx) in dx.chunks_mut(s.image_len()).enumerate() {
                    col2im_add(s, cols, width, i * p, dx);
                }
            })
        });
    dx
}

/// The weight gradient `[co, c, k, k]` and bias gradient `[co]` for input `x` and output
/// gradient `dy`: one partial sum per thread over its share of the batch, added at the end in
/// order. The shares are fixed by the thread count, not by rayon's work stealing, so the same
/// batch always sums in the same order and training is reproducible.
pub(crate) fn param_grads(s: &ConvShape, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (p, r) = (s.positions(), s.patch_len());
    let g = s.group();
    let zeros = || (vec![0.0f32; s.co * r], vec![0.0f32; s.co]);
    if s.image_len() == 0 || s.out_len() == 0 {
        return zeros();
    }
    let groups = (x.len() / s.image_len()).div_ceil(g);
    let per_share = groups.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = x
        .par_chunks(per_share * g * s.image_len())
        .zip(dy.par_chunks(per_share * g * s.out_len()))
        .map(|(x, dy)| {
            with_scratch(r * g * p, s.co * g * p, |cols, wide| {
                let (mut dw, mut db) = zeros();
                let groups = x.chunks(g * s.image_len()).zip(dy.chunks(g * s.out_len()));
                for (x, dy) in groups {
                    let width = dy.len() / s.co;
                    for (i, x) in x.chunks(s.image_len()).enumerate() {
                        im2col(s, x, cols, width, i * p);
                    }
                    let dy = side_by_side(s, dy, wide);
                    // dw += dy [co, width] x cols^T [width, r]: the GEMM sums the group's images.
                    sgemm(
                        s.co,
                        width,
                        r,
                        View::rows(dy, width),
                        View::transposed(&cols[..r * width], width),
                        1.0,
                        &mut dw,
                    );
                    for (b, row) in db.iter_mut().zip(dy.chunks(width)) {
                        *b += row.iter().sum::<f32>();
                    }
                }
                (dw, db)
            })
        })
        .collect();
    let mut partials = partials.into_iter();
    let (mut dw, mut db) = partials.next().unwrap_or_else(zeros);
    for (dw2, db2) in partials {
        dw.iter_mut().zip(&dw2).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(&db2).for_each(|(a, b)| *a += b);
    }
    (dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct convolution, the definition.
    fn naive(s: &ConvShape, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (ho, wo) = (s.ho(), s.wo());
        let mut y = vec![0.0; s.n * s.co * ho * wo];
        for n in 0..s.n {
            for co in 0..s.co {
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut acc = 0.0;
                        for ci in 0..s.c {
                            for ki in 0..s.k {
                                for kj in 0..s.k {
                                    let ih = (oh + ki) as isize - s.pad as isize;
                                    let iw = (ow + kj) as isize - s.pad as isize;
                                    if ih < 0 || iw < 0 || ih >= s.h as isize || iw >= s.w as isize
                                    {
                                        continue;
                                    }
                                    acc += x
                                        [((n * s.c + ci) * s.h + ih as usize) * s.w + iw as usize]
                                        * w[((co * s.c + ci) * s.k + ki) * s.k + kj];
                                }
                            }
                        }
                        y[((n * s.co + co) * ho + oh) * wo + ow] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn a_small_batch_split_across_threads_matches_the_definition() {
        // Big enough per image to take the split path; 13 channels leave a ragged last block.
        for (n, co) in [(1, 64), (1, 13), (2, 40)] {
            let s = ConvShape {
                n,
                c: 32,
                h: 14,
                w: 14,
                co,
                k: 3,
                pad: 1,
            };
            let x = values(n * s.image_len(), 3);
            let wt = values(co * s.patch_len(), 4);
            let bias = values(co, 5);
            let mut got = vec![0.0; n * s.out_len()];
            forward_split(&s, &x, &wt, Some(&bias), &mut got, 4);
            let mut want = naive(&s, &x, &wt);
            for (i, v) in want.iter_mut().enumerate() {
                *v += bias[(i / s.positions()) % co];
            }
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-3, "{s:?}: {g} vs {e}");
            }
        }
    }

    /// Runs `f` on a fresh one-thread pool, whose scratch first holds NaNs when `poisoned`.
    fn on_one_thread<R: Send>(poisoned: bool, f: impl FnOnce() -> R + Send) -> R {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            if poisoned {
                with_scratch(1 << 16, 1 << 16, |a, b| {
                    a.fill(f32::NAN);
                    b.fill(f32::NAN);
                });
            }
            f()
        })
    }

    #[test]
    fn what_an_earlier_call_left_in_the_scratch_never_reaches_a_result() {
        let s = ConvShape {
            n: 5,
            c: 3,
            h: 9,
            w: 7,
            co: 4,
            k: 5,
            pad: 2,
        };
        let x = values(s.n * s.image_len(), 6);
        let wt = values(s.co * s.patch_len(), 7);
        let dy = values(s.n * s.out_len(), 8);
        let all = || {
            (
                forward(&s, &x, &wt, None),
                input_grad(&s, &wt, &dy),
                param_grads(&s, &x, &dy),
            )
        };
        let clean = on_one_thread(false, all);
        assert_eq!(on_one_thread(true, all), clean);
        for (g, e) in clean.0.iter().zip(&naive(&s, &x, &wt)) {
            assert!((g - e).abs() < 1e-4, "{g} vs {e}");
        }
    }

    #[test]
    fn forward_matches_the_definition_for_odd_shapes_and_paddings() {
        for (n, c, h, w, co, k, pad) in [
            (2, 3, 5, 7, 4, 3, 1),
            (1, 1, 4, 4, 2, 3, 0),
            (3, 2, 6, 5, 3, 5, 2),
            (1, 2, 3, 3, 1, 5, 2),
        ] {
            let s = ConvShape {
                n,
                c,
                h,
                w,
                co,
                k,
                pad,
            };
            let x = values(n * c * h * w, 1);
            let wt = values(co * c * k * k, 2);
            let got = forward(&s, &x, &wt, None);
            let want = naive(&s, &x, &wt);
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-4, "{s:?}: {g} vs {e}");
            }
        }
    }
}
