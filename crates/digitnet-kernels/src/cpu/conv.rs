//! Stride-1 2D convolution by im2col + GEMM, forward and backward, parallel over the batch
//! (one-channel images go to the direct kernels of [`super::one_channel`] instead).
//!
//! The patch matrix is position-major: one row per output position, holding that position's
//! `k * k * c` input values in (kernel row, kernel column, channel) order, with the weights
//! reordered to match. Read from a channels-last copy of the image, each kernel row of a patch is
//! then one run of `k * c` consecutive values, so a patch matrix takes `ho * wo * k` copies. The
//! channel-major layout (one matrix row per channel and kernel offset) takes `c * k * k * ho`
//! copies of `wo` values, each with its zero fills: for 5x5 kernels over 32 channels of a 7x7
//! image, 5,600 copies of 7 values instead of 245 of 160.

use std::cell::RefCell;

use rayon::prelude::*;

use super::direct;
use super::gemm::{View, sgemm};
use super::one_channel;
use super::transpose::transpose_blocks;

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

    /// Length of one patch (a row of the patch matrix): `c * k * k`.
    fn patch_len(&self) -> usize {
        self.c * self.k * self.k
    }

    fn positions(&self) -> usize {
        self.ho() * self.wo()
    }

    /// Images per GEMM in a batch: their patch matrices stacked, about [`GROUP_COLUMNS`]
    /// positions in all, so that a layer with few output positions (7x7 = 49) still makes a
    /// large GEMM and the weights are packed once per group rather than once per image. At most
    /// an eighth of the batch per group, so every thread still gets groups to work on.
    fn group(&self) -> usize {
        GROUP_COLUMNS
            .div_ceil(self.positions().max(1))
            .min(self.n.div_ceil(8))
            .max(1)
    }

    /// For output pixel `o` along an axis of `len` input pixels: the kernel offsets `lo..hi`
    /// whose input pixel `o + offset - pad` lies inside the image.
    fn taps(&self, o: usize, len: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(o).min(self.k);
        let hi = (len + self.pad).saturating_sub(o).clamp(lo, self.k);
        (lo, hi)
    }
}

/// Target number of output positions of a grouped GEMM (see [`ConvShape::group`]).
const GROUP_COLUMNS: usize = 400;

/// One thread's buffers: a patch matrix, a group's outputs side by side, a channels-last image.
type Scratch = (Vec<f32>, Vec<f32>, Vec<f32>);

thread_local! {
    /// This thread's buffers, kept from call to call. Every kernel writes each element of them
    /// it later reads, so they are zeroed only when they grow.
    static SCRATCH: RefCell<Scratch> = const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// Runs `f` on this thread's scratch: a patch matrix of `cols`, a side-by-side output of `wide`
/// and an image of `image` elements, all of unspecified contents.
pub(super) fn with_scratch<R>(
    cols: usize,
    wide: usize,
    image: usize,
    f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R,
) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let (a, b, c) = &mut *scratch;
            grow(a, cols);
            grow(b, wide);
            grow(c, image);
            f(&mut a[..cols], &mut b[..wide], &mut c[..image])
        }
        // Only if `f` ever ran a kernel on this thread again before returning.
        Err(_) => f(
            &mut vec![0.0; cols],
            &mut vec![0.0; wide],
            &mut vec![0.0; image],
        ),
    })
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// `[co, c, k, k]` weights in the patch order, `[co, k, k, c]`.
fn to_patch_order(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; s.co * s.patch_len()];
    transpose_blocks(w, s.c, s.k * s.k, &mut out);
    out
}

/// The inverse of [`to_patch_order`], for the weight gradient: `[co, k, k, c]` to `[co, c, k, k]`.
fn from_patch_order(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; s.co * s.patch_len()];
    transpose_blocks(w, s.k * s.k, s.c, &mut out);
    out
}

/// One image `x` (`[c, h, w]`) channels-last (`[h, w, c]`): written into `image`, or `x` itself
/// when it has a single channel.
fn channels_last<'a>(s: &ConvShape, x: &'a [f32], image: &'a mut [f32]) -> &'a [f32] {
    if s.c == 1 {
        return x;
    }
    transpose_blocks(x, s.c, s.h * s.w, image);
    image
}

/// Where one kernel row of a patch (a run of `k * c` values) lies inside the image: values
/// `lo..hi` of the run come from the channels-last image at `start`; the rest are zeros.
struct Run {
    lo: usize,
    hi: usize,
    start: usize,
}

/// Calls `f(at, run)` for every kernel row of every patch of a `[ho * wo, c * k * k]` patch
/// matrix: `at` is where it begins in the matrix, `run` where it lies in the image (`None`:
/// wholly in the padding).
fn for_each_run(s: &ConvShape, mut f: impl FnMut(usize, Option<Run>)) {
    let run = s.k * s.c;
    let mut at = 0;
    for oh in 0..s.ho() {
        let (ki_lo, ki_hi) = s.taps(oh, s.h);
        for ow in 0..s.wo() {
            let (kj_lo, kj_hi) = s.taps(ow, s.w);
            for ki in 0..s.k {
                let inside = (ki_lo..ki_hi).contains(&ki).then(|| Run {
                    lo: kj_lo * s.c,
                    hi: kj_hi * s.c,
                    start: ((oh + ki - s.pad) * s.w + ow + kj_lo - s.pad) * s.c,
                });
                f(at, inside);
                at += run;
            }
        }
    }
}

/// Fills `cols` (`[ho * wo, c * k * k]`) with the patches of one channels-last image.
fn im2col(s: &ConvShape, image: &[f32], cols: &mut [f32]) {
    let len = s.k * s.c;
    for_each_run(s, |at, inside| {
        let row = &mut cols[at..][..len];
        let Some(Run { lo, hi, start }) = inside else {
            row.fill(0.0);
            return;
        };
        if lo > 0 {
            row[..lo].fill(0.0);
        }
        if hi < len {
            row[hi..].fill(0.0);
        }
        copy_run(&mut row[lo..hi], &image[start..][..hi - lo]);
    });
}

/// `dst.copy_from_slice(src)`. The runs of a one-channel image's 3x3 and 5x5 kernels are 3 and
/// 5 values; copied with a length known at compile time, they are a few moves rather than a
/// `memcpy` call each.
fn copy_run(dst: &mut [f32], src: &[f32]) {
    match dst.len() {
        3 => dst[..3].copy_from_slice(&src[..3]),
        5 => dst[..5].copy_from_slice(&src[..5]),
        _ => dst.copy_from_slice(src),
    }
}

/// Adds the patch gradients `cols` (`[ho * wo, c * k * k]`) onto a channels-last image gradient.
fn col2im_add(s: &ConvShape, cols: &[f32], image: &mut [f32]) {
    for_each_run(s, |at, inside| {
        if let Some(Run { lo, hi, start }) = inside {
            let dst = &mut image[start..][..hi - lo];
            for (d, g) in dst.iter_mut().zip(&cols[at + lo..at + hi]) {
                *d += g;
            }
        }
    });
}

/// One image's gradient `dx` (`[c, h, w]`, zeros on entry) from its patch gradients `cols`,
/// summed in the channels-last `image` scratch when it has several channels.
fn image_grad(s: &ConvShape, cols: &[f32], image: &mut [f32], dx: &mut [f32]) {
    if s.c == 1 {
        col2im_add(s, cols, dx);
        return;
    }
    image.fill(0.0);
    col2im_add(s, cols, image);
    transpose_blocks(image, s.h * s.w, s.c, dx);
}

/// The patch matrix of each image of a group `x` (`[images, c, h, w]`), stacked in `cols`.
fn group_patches(s: &ConvShape, x: &[f32], image: &mut [f32], cols: &mut [f32]) {
    let block = s.positions() * s.patch_len();
    for (x, cols) in x.chunks(s.image_len()).zip(cols.chunks_mut(block)) {
        im2col(s, channels_last(s, x, image), cols);
    }
}

/// Multiply-adds per image from which a batch smaller than the thread count splits each image's
/// GEMM across threads (by blocks of output channels) rather than giving one thread per image.
const SPLIT_MACS: usize = 1 << 20;

/// `y = conv(x, weight) + bias`: `x [n, c, h, w]`, `weight [co, c, k, k]`, `bias [co]`; returns
/// `[n, co, ho, wo]`.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (p, r) = (s.positions(), s.patch_len());
    if one_channel::handles(s) {
        return one_channel::forward(s, x, weight, bias);
    }
    let mut y = vec![0.0f32; s.n * s.out_len()];
    if s.out_len() == 0 {
        return y;
    }
    let threads = rayon::current_num_threads();
    if s.n < threads && s.co * r * p >= SPLIT_MACS {
        forward_split(s, x, &to_patch_order(s, weight), bias, &mut y, threads);
        return y;
    }
    if direct::handles(s) {
        direct::forward(s, x, weight, bias, &mut y);
        return y;
    }
    forward_by_patches(s, x, weight, bias, y)
}

/// [`forward`] by im2col + GEMM, parallel over groups of images, into `y` (zeros).
fn forward_by_patches(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    mut y: Vec<f32>,
) -> Vec<f32> {
    let (p, r) = (s.positions(), s.patch_len());
    let weight = to_patch_order(s, weight);
    let g = s.group();
    y.par_chunks_mut(g * s.out_len())
        .zip(x.par_chunks(g * s.image_len().max(1)))
        .for_each(|(y, x)| {
            with_scratch(
                g * p * r,
                s.co * g * p,
                s.image_len(),
                |cols, wide, image| forward_group(s, x, &weight, bias, (cols, wide, image), y),
            )
        });
    y
}

/// [`forward`] for one group of images `x`, into `y`, on a thread's scratch.
fn forward_group(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    (cols, wide, image): (&mut [f32], &mut [f32], &mut [f32]),
    y: &mut [f32],
) {
    let (p, r) = (s.positions(), s.patch_len());
    let width = y.len() / s.out_len() * p;
    let cols = &mut cols[..width * r];
    group_patches(s, x, image, cols);
    let out = &mut wide[..width * s.co];
    patches_times_weights(cols, weight, bias, r, out);
    // `[images * p, co]` to `[images, co, p]`.
    transpose_blocks(out, p, s.co, y);
}

/// `out = patches [width, r] x weight^T [r, m] + bias`, position-major (`out` is `[width, m]`,
/// `weight` is `m` rows of `r` in patch order, `bias` has `m` values). The patches are the GEMM's
/// streamed operand, read in place; only the small weight matrix is packed.
fn patches_times_weights(
    patches: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    r: usize,
    out: &mut [f32],
) {
    let m = weight.len() / r;
    let width = out.len() / m;
    let beta = match bias {
        Some(bias) => {
            out.chunks_mut(m).for_each(|row| row.copy_from_slice(bias));
            1.0
        }
        None => 0.0,
    };
    sgemm(
        width,
        r,
        m,
        View::rows(patches, r),
        View::transposed(weight, r),
        beta,
        out,
    );
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
/// `cols`, computed position-major on this thread's scratch and transposed into `y`.
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
    with_scratch(0, p * m, 0, |_, out, _| {
        let weight = &weight[co0 * r..][..m * r];
        patches_times_weights(cols, weight, bias.map(|b| &b[co0..][..m]), r, out);
        transpose_blocks(out, p, m, y);
    });
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
        .for_each(|(cols, x)| {
            with_scratch(0, 0, s.image_len(), |_, _, image| {
                im2col(s, channels_last(s, x, image), cols)
            })
        });
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

/// The input gradient `[n, c, h, w]` for output gradient `dy [n, co, ho, wo]`.
pub(crate) fn input_grad(s: &ConvShape, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    if s.image_len() == 0 || s.out_len() == 0 {
        return vec![0.0f32; s.n * s.image_len()];
    }
    if direct::input_grad_shape(s).is_some_and(|t| direct::handles(&t)) {
        return direct::input_grad(s, weight, dy);
    }
    input_grad_by_patches(s, weight, dy)
}

/// [`input_grad`] by GEMM (patch gradients) and col2im, parallel over groups of images.
fn input_grad_by_patches(s: &ConvShape, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let (p, r) = (s.positions(), s.patch_len());
    let mut dx = vec![0.0f32; s.n * s.image_len()];
    let g = s.group();
    let weight = to_patch_order(s, weight);
    dx.par_chunks_mut(g * s.image_len())
        .zip(dy.par_chunks(g * s.out_len()))
        .for_each(|(dx, dy)| {
            with_scratch(
                r * g * p,
                s.co * g * p,
                s.image_len(),
                |cols, wide, image| {
                    let width = dy.len() / s.co;
                    let cols = &mut cols[..width * r];
                    // The patch gradients: dy^T [width, co] x weight [co, r].
                    sgemm(
                        width,
                        s.co,
                        r,
                        View::transposed(side_by_side(s, dy, wide), width),
                        View::rows(&weight, r),
                        0.0,
                        cols,
                    );
                    for (dx, cols) in dx.chunks_mut(s.image_len()).zip(cols.chunks(p * r)) {
                        image_grad(s, cols, image, dx);
                    }
                },
            )
        });
    dx
}

/// The weight gradient `[co, c, k, k]` and bias gradient `[co]` for input `x` and output
/// gradient `dy`: one partial sum per thread over its share of the batch, added at the end in
/// order. The shares are fixed by the thread count, not by rayon's work stealing, so the same
/// batch always sums in the same order and training is reproducible.
pub(crate) fn param_grads(s: &ConvShape, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    if s.image_len() == 0 || s.out_len() == 0 {
        return (vec![0.0f32; s.co * s.patch_len()], vec![0.0f32; s.co]);
    }
    if one_channel::handles(s) {
        return one_channel::param_grads(s, x, dy);
    }
    if direct::handles_param_grads(s) {
        return direct::param_grads(s, x, dy);
    }
    param_grads_by_patches(s, x, dy)
}

/// The sum of per-thread partial `(weight, bias)` gradients, added in the order given (`zeros`
/// when there are none), so that the result does not depend on which thread finished first.
pub(super) fn sum_in_order(
    partials: Vec<(Vec<f32>, Vec<f32>)>,
    zeros: impl FnOnce() -> (Vec<f32>, Vec<f32>),
) -> (Vec<f32>, Vec<f32>) {
    let mut partials = partials.into_iter();
    let (mut dw, mut db) = partials.next().unwrap_or_else(zeros);
    for (dw2, db2) in partials {
        dw.iter_mut().zip(&dw2).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(&db2).for_each(|(a, b)| *a += b);
    }
    (dw, db)
}

/// [`param_grads`] by im2col + GEMM, one partial sum per thread over its share of the batch.
fn param_grads_by_patches(s: &ConvShape, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (p, r) = (s.positions(), s.patch_len());
    let g = s.group();
    let zeros = || (vec![0.0f32; s.co * r], vec![0.0f32; s.co]);
    let groups = (x.len() / s.image_len()).div_ceil(g);
    let per_share = groups.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = x
        .par_chunks(per_share * g * s.image_len())
        .zip(dy.par_chunks(per_share * g * s.out_len()))
        .map(|(x, dy)| {
            with_scratch(
                r * g * p,
                s.co * g * p,
                s.image_len(),
                |cols, wide, image| {
                    let (mut dw, mut db) = zeros();
                    let groups = x.chunks(g * s.image_len()).zip(dy.chunks(g * s.out_len()));
                    for (x, dy) in groups {
                        let width = dy.len() / s.co;
                        let cols = &mut cols[..width * r];
                        group_patches(s, x, image, cols);
                        let dy = side_by_side(s, dy, wide);
                        // dw += dy [co, width] x cols [width, r]: the GEMM sums the group's images.
                        sgemm(
                            s.co,
                            width,
                            r,
                            View::rows(dy, width),
                            View::rows(cols, r),
                            1.0,
                            &mut dw,
                        );
                        for (b, row) in db.iter_mut().zip(dy.chunks(width)) {
                            *b += row.iter().sum::<f32>();
                        }
                    }
                    (dw, db)
                },
            )
        })
        .collect();
    let (dw, db) = sum_in_order(partials, zeros);
    (from_patch_order(s, &dw), db)
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

    /// The gradients of `sum(dy * conv(x, w))` by the definition, summed in f64:
    /// `(dx, dw, db)`.
    fn naive_grads(s: &ConvShape, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f64>; 3] {
        let (ho, wo) = (s.ho(), s.wo());
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        let mut db = vec![0.0; s.co];
        for n in 0..s.n {
            for co in 0..s.co {
                for oh in 0..ho {
                    for ow in 0..wo {
                        let g = f64::from(dy[((n * s.co + co) * ho + oh) * wo + ow]);
                        db[co] += g;
                        for ci in 0..s.c {
                            for ki in 0..s.k {
                                for kj in 0..s.k {
                                    let (Some(ih), Some(iw)) = (
                                        (oh + ki).checked_sub(s.pad),
                                        (ow + kj).checked_sub(s.pad),
                                    ) else {
                                        continue;
                                    };
                                    if ih >= s.h || iw >= s.w {
                                        continue;
                                    }
                                    let xi = ((n * s.c + ci) * s.h + ih) * s.w + iw;
                                    let wi = ((co * s.c + ci) * s.k + ki) * s.k + kj;
                                    dx[xi] += g * f64::from(w[wi]);
                                    dw[wi] += g * f64::from(x[xi]);
                                }
                            }
                        }
                    }
                }
            }
        }
        [dx, dw, db]
    }

    #[test]
    fn forward_and_gradients_match_the_definition_for_odd_shapes_paddings_and_groups() {
        // (n, c, h, w, co, k, pad): one or several channels, borders wider than the image,
        // and batches cut into groups of images per GEMM (3 per group for 20 images of 7x7).
        for (n, c, h, w, co, k, pad) in [
            (2, 3, 5, 7, 4, 3, 1),
            (1, 1, 4, 4, 2, 3, 0),
            (3, 1, 4, 4, 2, 3, 0),
            (3, 2, 6, 5, 3, 5, 2),
            (1, 2, 3, 3, 1, 5, 2),
            (20, 6, 7, 7, 5, 3, 1),
            (17, 1, 9, 8, 3, 5, 2),
            // One channel: direct kernels, 16 output channels at a time (37 = 16 + 16 + 5),
            // rows of 13 = 8 + 4 + 1 positions.
            (2, 1, 11, 13, 37, 5, 2),
            (3, 1, 6, 9, 20, 3, 1),
            // Direct kernels (with AVX-512): CNN A's second layer (two vectors of output
            // channels; one in its input gradient); a single output row; 9 rows (the last two
            // overlap) of 13 (two overlapping tiles of 7), all three passes; 20 input channels,
            // so the input gradient and the weight gradient take im2col.
            (3, 16, 14, 14, 32, 5, 2),
            (2, 24, 3, 9, 32, 3, 0),
            (2, 16, 9, 13, 16, 3, 1),
            (2, 20, 8, 7, 16, 5, 2),
            // The direct weight gradient over four vectors (the other passes take im2col).
            (3, 8, 5, 6, 64, 3, 1),
            // 5x5 kernels, one output row at a time: CNN A's third layer (two halves of 64
            // output channels; 64 input channels in its input gradient), every pass direct; 40
            // input channels, rows of 9 (two overlapping tiles), the other passes im2col.
            (3, 32, 7, 7, 64, 5, 2),
            (2, 40, 5, 9, 64, 5, 2),
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
            let x = values(n * s.image_len(), 9);
            let wt = values(co * s.patch_len(), 10);
            let dy = values(n * s.out_len(), 11);
            for (g, e) in forward(&s, &x, &wt, None).iter().zip(&naive(&s, &x, &wt)) {
                assert!((g - e).abs() < 1e-4, "{s:?} y: {g} vs {e}");
            }
            let [dx, dw, db] = naive_grads(&s, &x, &wt, &dy);
            let (got_dw, got_db) = param_grads(&s, &x, &dy);
            let got = [input_grad(&s, &wt, &dy), got_dw, got_db];
            for (name, got, want) in [
                ("dx", &got[0], &dx),
                ("dw", &got[1], &dw),
                ("db", &got[2], &db),
            ] {
                assert_eq!(got.len(), want.len(), "{s:?} {name}");
                let mut worst = 0.0f64;
                for (&g, &e) in got.iter().zip(want.iter()) {
                    let err = (f64::from(g) - e).abs() / (1.0 + e.abs());
                    // Sums of up to about 1,200 products that cancel (the 17-image weight
                    // gradient), in an order that depends on the thread count.
                    assert!(err <= 5e-5, "{s:?} {name}: {g} vs {e}");
                    worst = worst.max(err);
                }
                eprintln!("{s:?} {name}: worst relative error {worst:.1e}");
            }
        }
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
            forward_split(&s, &x, &to_patch_order(&s, &wt), Some(&bias), &mut got, 4);
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
                with_scratch(1 << 16, 1 << 16, 1 << 16, |a, b, c| {
                    a.fill(f32::NAN);
                    b.fill(f32::NAN);
                    c.fill(f32::NAN);
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
}
