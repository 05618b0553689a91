//! Direct convolution of one-channel images (a network's first layer): forward and weight
//! gradient, for 3x3 and 5x5 kernels, alone or fused with the 2x2 max-pool that follows.
//!
//! With one input channel, im2col + GEMM multiplies by a patch of only 9 or 25 values, far too
//! short a sum for a GEMM kernel to reach its speed, after copying every pixel 9 or 25 times.
//! Here the forward pass keeps 16 consecutive output positions of a row in a vector register
//! and adds each kernel tap's weight times the 16 input pixels under it; the weight gradient
//! keeps each tap's sums for 16 output channels in a register. No patch matrix, one
//! multiply-add per 16 products, on the vector unit (see [`super::simd`]).
//!
//! The first layer's output is the largest tensor of a CNN (16 or 32 channels at full
//! resolution). Fused with the max-pool, it is computed one image at a time in the cache and
//! only its pooled quarter is stored; its gradient is rebuilt per image from the pooled one.

use rayon::prelude::*;

use super::conv::{ConvShape, with_scratch};
use super::pool;
use super::simd::{self, Kernel, LANES, Lanes, Vector16};

/// Whether these kernels handle `s`: one input channel and a 3x3 or 5x5 kernel. The
/// convolution of such shapes can also be fused with the max-pool after it.
pub(crate) fn handles(s: &ConvShape) -> bool {
    s.c == 1 && matches!(s.k, 3 | 5)
}

/// The sizes that the loops use: the zero-padded image is `hp x wp`, wide enough for output
/// rows of `row` positions (`wo` rounded up to whole vectors); output channels come in `blocks`
/// of [`LANES`] where the lanes are channels.
#[derive(Clone, Copy)]
struct Geometry {
    hp: usize,
    wp: usize,
    ho: usize,
    wo: usize,
    row: usize,
    blocks: usize,
}

impl Geometry {
    fn of(s: &ConvShape) -> Self {
        let row = s.wo().next_multiple_of(LANES);
        Self {
            hp: s.h + 2 * s.pad,
            wp: row + s.k - 1,
            ho: s.ho(),
            wo: s.wo(),
            row,
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

/// `y = conv(x, weight) + bias` for one-channel `x [n, 1, h, w]` and `weight [co, 1, k, k]`;
/// returns `[n, co, ho, wo]`. Parallel over the images.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let g = Geometry::of(s);
    let out_len = s.co * g.ho * g.wo;
    let mut y = vec![0.0f32; s.n * out_len];
    if out_len == 0 {
        return y;
    }
    y.par_chunks_mut(out_len)
        .zip(x.par_chunks(s.h * s.w))
        .for_each(|(y, x)| {
            image_outputs(s, &g, x, weight, bias, |out| {
                for (y, out) in y.chunks_mut(g.wo).zip(out.chunks(g.row)) {
                    y.copy_from_slice(&out[..g.wo]);
                }
            })
        });
    y
}

/// [`forward`] followed by 2x2 max-pooling with stride 2 (see [`super::pool`]), without storing
/// the full-size output: returns the pooled `[n, co, ho / 2, wo / 2]` and each window's winner.
pub(crate) fn forward_pooled(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> (Vec<f32>, Vec<u8>) {
    let g = Geometry::of(s);
    let pooled = s.co * (g.ho / 2) * (g.wo / 2);
    let mut y = vec![0.0f32; s.n * pooled];
    let mut arg = vec![0u8; s.n * pooled];
    if pooled == 0 {
        return (y, arg);
    }
    y.par_chunks_mut(pooled)
        .zip(arg.par_chunks_mut(pooled))
        .zip(x.par_chunks(s.h * s.w))
        .for_each(|((y, arg), x)| {
            image_outputs(s, &g, x, weight, bias, |out| {
                let plane = g.ho * g.row;
                let planes = y
                    .chunks_mut(pooled / s.co)
                    .zip(arg.chunks_mut(pooled / s.co));
                for (out, (y, arg)) in out.chunks(plane).zip(planes) {
                    pool::pool_plane(out, g.wo, g.row, y, arg);
                }
            })
        });
    (y, arg)
}

/// Computes one image's outputs (`[co, ho, row]`, each row's first `wo` values valid) on this
/// thread's scratch and hands them to `take`.
fn image_outputs(
    s: &ConvShape,
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    take: impl FnOnce(&[f32]),
) {
    let zeros;
    let bias = match bias {
        Some(bias) => bias,
        None => {
            zeros = vec![0.0; s.co];
            &zeros
        }
    };
    let wide = s.co * g.ho * g.row;
    with_scratch(0, wide, g.hp * g.wp, |_, out, padded| {
        pad_image(s, g, x, padded);
        let out = &mut out[..wide];
        simd::dispatch(ImageForward {
            g,
            k: s.k,
            padded,
            weight,
            bias,
            out: pulp::as_arrays_mut::<LANES, f32>(out).0,
        });
        take(out);
    })
}

/// One padded image's outputs `out` (`[co, ho, row]`, lanes = output positions) from its
/// `weight` (`[co, k * k]`) and `bias` (`[co]`).
struct ImageForward<'a> {
    g: &'a Geometry,
    k: usize,
    padded: &'a [f32],
    weight: &'a [f32],
    bias: &'a [f32],
    out: &'a mut [Lanes],
}

impl Kernel for ImageForward<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Vector16>(mut self, simd: S) {
        let vectors = self.g.row / LANES;
        for oh in 0..self.g.ho {
            let mut v = 0;
            while v < vectors {
                v += match vectors - v {
                    2.. => self.span::<S, 2>(simd, oh, v),
                    _ => self.span::<S, 1>(simd, oh, v),
                };
            }
        }
    }
}

impl ImageForward<'_> {
    /// Vectors `v0..v0 + V` of output row `oh`, every output channel; returns `V`.
    #[inline(always)]
    fn span<S: Vector16, const V: usize>(&mut self, simd: S, oh: usize, v0: usize) -> usize {
        let co = self.bias.len();
        let mut channel = 0;
        while channel < co {
            channel += match co - channel {
                8.. => self.channels::<S, V, 8>(simd, oh, v0, channel),
                4.. => self.channels::<S, V, 4>(simd, oh, v0, channel),
                _ => self.channels::<S, V, 1>(simd, oh, v0, channel),
            };
        }
        V
    }

    /// [`Self::span`] for output channels `c0..c0 + C`; returns `C`.
    #[inline(always)]
    fn channels<S: Vector16, const V: usize, const C: usize>(
        &mut self,
        simd: S,
        oh: usize,
        v0: usize,
        c0: usize,
    ) -> usize {
        let (k, g) = (self.k, self.g);
        let taps = k * k;
        let weights: [&[f32]; C] = std::array::from_fn(|c| &self.weight[(c0 + c) * taps..][..taps]);
        let mut acc: [[S::V; V]; C] =
            std::array::from_fn(|c| [simd.load(&[self.bias[c0 + c]; LANES]); V]);
        for ki in 0..k {
            let row = &self.padded[(oh + ki) * g.wp + v0 * LANES..][..V * LANES + k - 1];
            for kj in 0..k {
                let pixels: [S::V; V] = std::array::from_fn(|v| {
                    simd.load(
                        row[kj + v * LANES..][..LANES]
                            .try_into()
                            .unwrap_or(&[0.0; LANES]),
                    )
                });
                for (acc, weights) in acc.iter_mut().zip(&weights) {
                    let w = weights[ki * k + kj];
                    for (acc, &p) in acc.iter_mut().zip(&pixels) {
                        *acc = simd.mul_add(w, p, *acc);
                    }
                }
            }
        }
        let vectors = g.row / LANES;
        for (c, acc) in acc.into_iter().enumerate() {
            let at = ((c0 + c) * g.ho + oh) * vectors + v0;
            for (out, acc) in self.out[at..][..V].iter_mut().zip(acc) {
                simd.store(acc, out);
            }
        }
        C
    }
}

/// The weight gradient `[co, 1, k, k]` and bias gradient `[co]` for one-channel input `x` and
/// output gradient `dy`.
pub(crate) fn param_grads(s: &ConvShape, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let g = Geometry::of(s);
    grads_from(s, x, dy, s.co * g.ho * g.wo, |_, dy, lanes| {
        channels_last(s, &g, dy, lanes)
    })
}

/// [`param_grads`] for [`forward_pooled`]: from the pooled output's gradient `dy` and the
/// windows' `winners`, without building the full-size gradient.
pub(crate) fn pooled_param_grads(
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    winners: &[u8],
) -> (Vec<f32>, Vec<f32>) {
    let g = Geometry::of(s);
    let pooled = s.co * (g.ho / 2) * (g.wo / 2);
    grads_from(s, x, dy, pooled, |image, dy, lanes| {
        unpool_channels_last(s, &g, dy, &winners[image * pooled..][..pooled], lanes)
    })
}

/// The weight and bias gradients from each image's output gradient (`dy_len` values of `dy`),
/// which `fill(image, dy, lanes)` writes position-major into `lanes`: one partial sum per thread
/// over its share of the batch, added at the end in order, so that the same batch always sums
/// in the same order.
fn grads_from(
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    dy_len: usize,
    fill: impl Fn(usize, &[f32], &mut [f32]) + Sync,
) -> (Vec<f32>, Vec<f32>) {
    let g = Geometry::of(s);
    let taps = s.k * s.k;
    let image_len = s.h * s.w;
    let zeros = || vec![[0.0f32; LANES]; (taps + 1) * g.blocks];
    if image_len == 0 || dy_len == 0 {
        return (vec![0.0; s.co * taps], vec![0.0; s.co]);
    }
    let per_share = s.n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let wide = g.ho * g.wo * g.blocks * LANES;
    let partials: Vec<Vec<Lanes>> = x
        .par_chunks(per_share * image_len)
        .zip(dy.par_chunks(per_share * dy_len))
        .enumerate()
        .map(|(share, (x, dy))| {
            let mut sums = zeros();
            with_scratch(0, wide, g.hp * g.wp, |_, dy_lanes, padded| {
                let dy_lanes = &mut dy_lanes[..wide];
                let images = x.chunks(image_len).zip(dy.chunks(dy_len));
                for (i, (x, dy)) in images.enumerate() {
                    pad_image(s, &g, x, padded);
                    fill(share * per_share + i, dy, dy_lanes);
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

/// One image's pooled output gradient `dy` (`[co, ho / 2, wo / 2]`) sent back through the
/// max-pool (each value to its window's winner, zeros elsewhere), as [`channels_last`] writes
/// a full-size one.
fn unpool_channels_last(
    s: &ConvShape,
    g: &Geometry,
    dy: &[f32],
    winners: &[u8],
    dy_lanes: &mut [f32],
) {
    dy_lanes.fill(0.0);
    let (pw, stride) = (g.wo / 2, g.blocks * LANES);
    let planes = dy
        .chunks(dy.len() / s.co)
        .zip(winners.chunks(dy.len() / s.co));
    for (channel, (dy, winners)) in planes.enumerate() {
        for (q, (&d, &a)) in dy.iter().zip(winners).enumerate() {
            let a = usize::from(a);
            let position = (q / pw * 2 + a / 2) * g.wo + q % pw * 2 + a % 2;
            dy_lanes[position * stride + channel] = d;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_channel_3x3_and_5x5_convolutions_come_here() {
        let shape = |c, k| ConvShape {
            n: 2,
            c,
            h: 28,
            w: 28,
            co: 16,
            k,
            pad: 1,
        };
        assert!(handles(&shape(1, 3)) && handles(&shape(1, 5)));
        assert!(!handles(&shape(2, 3)) && !handles(&shape(1, 7)));
    }
}
