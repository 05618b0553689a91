//! Direct convolution of one-channel images (a network's first layer): forward and weight
//! gradient, for 3x3 and 5x5 kernels.
//!
//! With one input channel, im2col + GEMM multiplies by a patch of only 9 or 25 values, far too
//! short a sum for a GEMM kernel to reach its speed, after copying every pixel 9 or 25 times.
//! Here each output position keeps its output channels in registers, 16 at a time, and adds
//! each kernel tap's 16 weights times the one input pixel under it: no patch matrix, one
//! multiply-add per 16 products, on the vector unit (see [`super::simd`]).

use rayon::prelude::*;

use super::conv::{ConvShape, with_scratch};
use super::simd::{self, Kernel, LANES, Lanes, Vector16};

/// Whether these kernels handle `s`: one input channel and a 3x3 or 5x5 kernel.
pub(crate) fn handles(s: &ConvShape) -> bool {
    s.c == 1 && matches!(s.k, 3 | 5)
}

/// The sizes that the loops use: the zero-padded image is `hp x wp`, output channels come in
/// `blocks` of [`LANES`].
#[derive(Clone, Copy)]
struct Geometry {
    hp: usize,
    wp: usize,
    ho: usize,
    wo: usize,
    blocks: usize,
}

impl Geometry {
    fn of(s: &ConvShape) -> Self {
        Self {
            hp: s.h + 2 * s.pad,
            wp: s.w + 2 * s.pad,
            ho: s.ho(),
            wo: s.wo(),
            blocks: s.co.div_ceil(LANES),
        }
    }

    /// Where the taps of a kernel of `T` taps lie in the padded image, from its top left.
    fn offsets<const T: usize>(&self, k: usize) -> [usize; T] {
        std::array::from_fn(|t| (t / k) * self.wp + t % k)
    }
}

/// Copies the `h x w` image `x` into the middle of `padded` (`hp x wp`), zeros around it.
fn pad_image(s: &ConvShape, g: &Geometry, x: &[f32], padded: &mut [f32]) {
    padded.fill(0.0);
    for (row, src) in padded.chunks_mut(g.wp).skip(s.pad).zip(x.chunks(s.w)) {
        row[s.pad..][..s.w].copy_from_slice(src);
    }
}

/// `[co, 1, k, k]` weights (or a bias, with `taps = 1`) as `[blocks, taps]` lanes, zeros past
/// the last output channel.
fn to_lanes(values: &[f32], co: usize, taps: usize, blocks: usize) -> Vec<Lanes> {
    let mut lanes = vec![[0.0; LANES]; taps * blocks];
    for (channel, row) in values.chunks(taps).enumerate().take(co) {
        for (tap, &v) in row.iter().enumerate() {
            lanes[channel / LANES * taps + tap][channel % LANES] = v;
        }
    }
    lanes
}

/// `y = conv(x, weight) + bias` for one-channel `x [n, 1, h, w]` and `weight [co, 1, k, k]`;
/// returns `[n, co, ho, wo]`. Parallel over the images.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let g = Geometry::of(s);
    let taps = s.k * s.k;
    let weights = to_lanes(weight, s.co, taps, g.blocks);
    let zeros = vec![0.0; s.co];
    let bias = to_lanes(bias.unwrap_or(&zeros), s.co, 1, g.blocks);
    let out_len = s.co * g.ho * g.wo;
    let mut y = vec![0.0f32; s.n * out_len];
    if out_len == 0 {
        return y;
    }
    let wide = g.ho * g.wo * g.blocks * LANES;
    y.par_chunks_mut(out_len)
        .zip(x.par_chunks(s.h * s.w))
        .for_each(|(y, x)| {
            with_scratch(0, wide, g.hp * g.wp, |_, out, padded| {
                pad_image(s, &g, x, padded);
                let out = &mut out[..wide];
                match s.k {
                    3 => image_forward::<3, 9>(&g, padded, &weights, &bias, out),
                    _ => image_forward::<5, 25>(&g, padded, &weights, &bias, out),
                }
                // `[positions, blocks * LANES]` to `[co, positions]`.
                let positions = g.ho * g.wo;
                for (i, row) in out.chunks(g.blocks * LANES).enumerate() {
                    for (channel, &v) in row[..s.co].iter().enumerate() {
                        y[channel * positions + i] = v;
                    }
                }
            })
        });
    y
}

/// One padded image's outputs, position-major (`out` is `[ho * wo, blocks * LANES]`), for a
/// `K x K` kernel of `T = K * K` taps.
fn image_forward<const K: usize, const T: usize>(
    g: &Geometry,
    padded: &[f32],
    weights: &[Lanes],
    bias: &[Lanes],
    out: &mut [f32],
) {
    simd::dispatch(ImageForward::<T> {
        g,
        offsets: g.offsets::<T>(K),
        padded,
        weights,
        bias,
        out: pulp::as_arrays_mut::<LANES, f32>(out).0,
    });
}

/// [`image_forward`]'s loops.
struct ImageForward<'a, const T: usize> {
    g: &'a Geometry,
    offsets: [usize; T],
    padded: &'a [f32],
    weights: &'a [Lanes],
    bias: &'a [Lanes],
    out: &'a mut [Lanes],
}

impl<const T: usize> Kernel for ImageForward<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run<S: Vector16>(mut self, simd: S) {
        let g = self.g;
        for oh in 0..g.ho {
            let mut ow = 0;
            while ow < g.wo {
                let at = oh * g.wp + ow;
                let first = oh * g.wo + ow;
                ow += match g.wo - ow {
                    8.. => self.positions::<S, 8>(simd, at, first),
                    4.. => self.positions::<S, 4>(simd, at, first),
                    _ => self.positions::<S, 1>(simd, at, first),
                };
            }
        }
    }
}

impl<const T: usize> ImageForward<'_, T> {
    /// `N` consecutive output positions of one row, whose top-left input pixel is
    /// `padded[at]`, into rows `first..first + N` of the output; returns `N`.
    #[inline(always)]
    fn positions<S: Vector16, const N: usize>(
        &mut self,
        simd: S,
        at: usize,
        first: usize,
    ) -> usize {
        let blocks = self.g.blocks;
        for (block, weights) in self.weights.chunks_exact(T).enumerate() {
            let mut acc = [simd.load(&self.bias[block]); N];
            for (w, &offset) in weights.iter().zip(&self.offsets) {
                let w = simd.load(w);
                let pixels: &[f32; N] = self.padded[at + offset..][..N]
                    .try_into()
                    .unwrap_or(&[0.0; N]);
                for (acc, &p) in acc.iter_mut().zip(pixels) {
                    *acc = simd.mul_add(p, w, *acc);
                }
            }
            for (j, acc) in acc.into_iter().enumerate() {
                simd.store(acc, &mut self.out[(first + j) * blocks + block]);
            }
        }
        N
    }
}

/// The weight gradient `[co, 1, k, k]` and bias gradient `[co]` for one-channel input `x` and
/// output gradient `dy`: one partial sum per thread over its share of the batch, added at the
/// end in order, so that the same batch always sums in the same order.
pub(crate) fn param_grads(s: &ConvShape, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let g = Geometry::of(s);
    let taps = s.k * s.k;
    let (image_len, out_len) = (s.h * s.w, s.co * g.ho * g.wo);
    let zeros = || vec![[0.0f32; LANES]; (taps + 1) * g.blocks];
    if image_len == 0 || out_len == 0 {
        return (vec![0.0; s.co * taps], vec![0.0; s.co]);
    }
    let per_share = s.n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let wide = g.ho * g.wo * g.blocks * LANES;
    let partials: Vec<Vec<Lanes>> = x
        .par_chunks(per_share * image_len)
        .zip(dy.par_chunks(per_share * out_len))
        .map(|(x, dy)| {
            let mut sums = zeros();
            with_scratch(0, wide, g.hp * g.wp, |_, dy_lanes, padded| {
                let dy_lanes = &mut dy_lanes[..wide];
                for (x, dy) in x.chunks(image_len).zip(dy.chunks(out_len)) {
                    pad_image(s, &g, x, padded);
                    channels_last(s, &g, dy, dy_lanes);
                    match s.k {
                        3 => image_param_grads::<9>(s, &g, padded, dy_lanes, &mut sums),
                        _ => image_param_grads::<25>(s, &g, padded, dy_lanes, &mut sums),
                    }
                }
            });
            sums
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut sums = partials.next().unwrap_or_else(zeros);
    for more in partials {
        for (a, b) in sums.iter_mut().zip(&more) {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        }
    }
    let lane = |i: usize, channel: usize| sums[channel / LANES * (taps + 1) + i][channel % LANES];
    let dw = (0..s.co)
        .flat_map(|channel| (0..taps).map(move |tap| (tap, channel)))
        .map(|(tap, channel)| lane(tap, channel))
        .collect();
    let db = (0..s.co).map(|channel| lane(taps, channel)).collect();
    (dw, db)
}

/// One image's output gradient `dy` (`[co, positions]`) as `[positions, blocks * LANES]`,
/// zeros past the last channel.
fn channels_last(s: &ConvShape, g: &Geometry, dy: &[f32], dy_lanes: &mut [f32]) {
    let positions = g.ho * g.wo;
    for (i, row) in dy_lanes.chunks_mut(g.blocks * LANES).enumerate() {
        for (channel, v) in row.iter_mut().enumerate() {
            *v = if channel < s.co {
                dy[channel * positions + i]
            } else {
                0.0
            };
        }
    }
}

/// Adds one image's weight gradient (taps `0..T`) and bias gradient (entry `T`) onto `sums`
/// (`[blocks, T + 1]` lanes), from its padded pixels and position-major output gradient.
fn image_param_grads<const T: usize>(
    s: &ConvShape,
    g: &Geometry,
    padded: &[f32],
    dy_lanes: &[f32],
    sums: &mut [Lanes],
) {
    simd::dispatch(ImageParamGrads::<T> {
        g,
        offsets: g.offsets::<T>(s.k),
        padded,
        dy: pulp::as_arrays::<LANES, f32>(dy_lanes).0,
        sums,
    });
}

/// [`image_param_grads`]'s loops.
struct ImageParamGrads<'a, const T: usize> {
    g: &'a Geometry,
    offsets: [usize; T],
    padded: &'a [f32],
    dy: &'a [Lanes],
    sums: &'a mut [Lanes],
}

impl<const T: usize> Kernel for ImageParamGrads<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run<S: Vector16>(self, simd: S) {
        let g = self.g;
        for (block, sums) in self.sums.chunks_exact_mut(T + 1).enumerate() {
            let mut acc: [S::V; T] = std::array::from_fn(|tap| simd.load(&sums[tap]));
            let mut bias = simd.load(&sums[T]);
            for oh in 0..g.ho {
                for ow in 0..g.wo {
                    let at = oh * g.wp + ow;
                    let d = simd.load(&self.dy[(oh * g.wo + ow) * g.blocks + block]);
                    for (acc, &offset) in acc.iter_mut().zip(&self.offsets) {
                        *acc = simd.mul_add(self.padded[at + offset], d, *acc);
                    }
                    bias = simd.mul_add(1.0, d, bias);
                }
            }
            for (sum, acc) in sums.iter_mut().zip(acc.into_iter().chain([bias])) {
                simd.store(acc, sum);
            }
        }
    }
}
