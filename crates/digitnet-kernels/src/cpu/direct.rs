//! Direct convolution between few channels, forward, input gradient and weight gradient, with no
//! patch matrix: CNN A's 16 -> 32 and 32 -> 64 layers.
//!
//! im2col + GEMM copies every input value `k * k` times into a patch matrix, which the GEMM then
//! packs once more; with 16 or 32 output channels the GEMM also has a short side. Here a tile of
//! output positions times one or two vectors of 16 output channels stays in AVX-512 registers
//! for the whole sum over kernel rows, kernel columns and input channels, reading the input in
//! place from a zero-padded channels-last copy of the image and the weights from a
//! `[k, k, c, co]` copy of them.
//!
//! For 5x5 kernels (up to 64 input channels, 16, 32 or 64 output channels, the last as two
//! halves) a tile is seven positions of one output row, and a kernel row's five taps of weights
//! stay in registers beside its 7 or 14 accumulators: each input value is broadcast once and
//! feeds up to five taps' FMAs. Other kernels (up to 32 input channels, 16 or 32 output
//! channels) take tiles of two rows of seven positions (up to 28 accumulators), one broadcast
//! per tap and position.
//!
//! The input gradient is the same kernel: the full convolution of the output gradient with the
//! weights flipped and their two channel axes swapped. The weight gradient holds, for one tap and
//! four or eight input channels, the sums for every output channel in registers over all
//! positions of an image; it also serves 64 output channels.
//!
//! With more channels (64 -> 128, and the 3x3 32 -> 64 layers' forward pass and input gradient)
//! im2col + GEMM is as fast or faster (`benches/RESULTS.md`), so those passes stay there.

use rayon::prelude::*;

use super::conv::{ConvShape, sum_in_order, with_scratch};
use super::simd::{self, Kernel, LANES, Lanes, Vector16};
use super::transpose::transpose_blocks;

/// Output positions per row of a tile.
const NARROW: usize = 7;

/// The kernel side whose tiles keep a kernel row's taps in registers ([`ImageConv::row_tile`]).
const ROW_KERNEL: usize = 5;

/// Whether [`forward`] handles `s`: 2 to 32 input channels and one or two whole vectors of
/// output channels (5x5 kernels: up to 64 input channels, and four vectors too), output rows of
/// at least [`NARROW`] positions, and a CPU with AVX-512 (with 16 vector registers, AVX2 cannot
/// hold the tiles; im2col + GEMM serves it).
pub(crate) fn handles(s: &ConvShape) -> bool {
    let by_rows = s.k == ROW_KERNEL;
    let most = if by_rows { 4 * LANES } else { 2 * LANES };
    (2..=most).contains(&s.c)
        && (s.co == LANES || s.co == 2 * LANES || (by_rows && s.co == 4 * LANES))
        && s.wo() >= NARROW
        && s.ho() > 0
        && simd::has_wide_registers()
}

/// The shape of the input gradient's convolution: the output gradient (`co` channels, `ho x wo`)
/// convolved into `c` channels of `h x w`, with `k - 1 - pad` zeros per side.
pub(crate) fn input_grad_shape(s: &ConvShape) -> Option<ConvShape> {
    let pad = (s.k - 1).checked_sub(s.pad)?;
    Some(ConvShape {
        n: s.n,
        c: s.co,
        h: s.ho(),
        w: s.wo(),
        co: s.c,
        k: s.k,
        pad,
    })
}

/// `y = conv(x, weight) + bias`: `x [n, c, h, w]`, `weight [co, c, k, k]`, into
/// `y [n, co, ho, wo]`. Parallel over the images. Only for shapes that [`handles`] accepts.
pub(crate) fn forward(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    convolve(s, x, &weights_by_tap(s, weight), bias, y);
}

/// The input gradient `[n, c, h, w]` for the output gradient `dy [n, co, ho, wo]` of the
/// convolution `s` with `weight [co, c, k, k]`. Only where [`input_grad_shape`] gives a shape
/// that [`handles`] accepts.
pub(crate) fn input_grad(s: &ConvShape, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let t = input_grad_shape(s).expect("checked by the caller");
    let mut dx = vec![0.0f32; s.n * s.c * s.h * s.w];
    convolve(&t, dy, &flipped_by_tap(s, weight), None, &mut dx);
    dx
}

/// The convolution `s` of `x` with weights already in `[k, k, c, co]` order, into `y`.
fn convolve(s: &ConvShape, x: &[f32], taps: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let g = Geometry::of(s);
    let (image_len, positions) = (s.c * s.h * s.w, g.ho * g.wo);
    y.par_chunks_mut(s.co * positions)
        .zip(x.par_chunks(image_len))
        .for_each(|(y, x)| {
            with_scratch(0, positions * s.co, g.hp * g.wp * s.c, |_, out, padded| {
                pad_channels_last(s, &g, x, padded);
                simd::dispatch(ImageConv {
                    g: &g,
                    x: padded,
                    taps,
                    bias,
                    out,
                });
                // `[positions, co]` to `[co, positions]`.
                transpose_blocks(out, positions, s.co, y);
            })
        });
}

/// The sizes the loops use: the zero-padded channels-last image is `hp x wp x c`.
struct Geometry {
    c: usize,
    k: usize,
    co: usize,
    ho: usize,
    wo: usize,
    hp: usize,
    wp: usize,
}

impl Geometry {
    fn of(s: &ConvShape) -> Self {
        Self {
            c: s.c,
            k: s.k,
            co: s.co,
            ho: s.ho(),
            wo: s.wo(),
            hp: s.h + 2 * s.pad,
            wp: s.w + 2 * s.pad,
        }
    }

    /// Positions per tile, and where the tiles of a row start: the last tile of a row that is
    /// not a whole number of tiles overlaps the one before it (its overlap is computed twice and
    /// stored twice, the same values).
    fn tiles(&self, width: usize) -> impl Iterator<Item = usize> + use<> {
        let wo = self.wo;
        (0..wo.div_ceil(width)).map(move |t| (t * width).min(wo - width))
    }
}

/// One image `x` (`[c, h, w]`) channels-last in the middle of `padded` (`[hp, wp, c]`), zeros
/// around it.
fn pad_channels_last(s: &ConvShape, g: &Geometry, x: &[f32], padded: &mut [f32]) {
    padded.fill(0.0);
    for (ci, plane) in x.chunks(s.h * s.w).enumerate() {
        for (ih, row) in plane.chunks(s.w).enumerate() {
            let start = ((ih + s.pad) * g.wp + s.pad) * s.c + ci;
            for (iw, &v) in row.iter().enumerate() {
                padded[start + iw * s.c] = v;
            }
        }
    }
}

/// `[co, c, k, k]` weights as `[k, k, c, co]`: for each tap and input channel, the output
/// channels side by side.
fn weights_by_tap(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let (c, k, co) = (s.c, s.k, s.co);
    let mut out = vec![0.0f32; w.len()];
    for (o, filter) in w.chunks(c * k * k).enumerate() {
        for (ci, kernel) in filter.chunks(k * k).enumerate() {
            for (t, &v) in kernel.iter().enumerate() {
                out[(t * c + ci) * co + o] = v;
            }
        }
    }
    out
}

/// The weights of the input gradient's convolution, `[k, k, co, c]`: the forward weights
/// `[co, c, k, k]` flipped in both spatial axes, output channels now the input side.
fn flipped_by_tap(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let (c, k, co) = (s.c, s.k, s.co);
    let taps = k * k;
    let mut out = vec![0.0f32; w.len()];
    for (o, filter) in w.chunks(c * taps).enumerate() {
        for (ci, kernel) in filter.chunks(taps).enumerate() {
            for (t, &v) in kernel.iter().enumerate() {
                out[((taps - 1 - t) * co + o) * c + ci] = v;
            }
        }
    }
    out
}

/// One image's convolution: every tile of every output row, position-major into `out`
/// (`[ho * wo, co]`).
struct ImageConv<'a> {
    g: &'a Geometry,
    x: &'a [f32],
    taps: &'a [f32],
    bias: Option<&'a [f32]>,
    out: &'a mut [f32],
}

impl Kernel for ImageConv<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Vector16>(mut self, simd: S) {
        // A kernel row's taps in registers: 7 or 14 accumulators and 5 or 10 weight vectors.
        // (A tile of 14 positions by one vector spills: the compiler stops unrolling.)
        match (self.g.co / LANES, self.g.k) {
            (1, ROW_KERNEL) => return self.row_tiles::<S, NARROW, ROW_KERNEL, 1>(simd),
            (_, ROW_KERNEL) => return self.row_tiles::<S, NARROW, ROW_KERNEL, 2>(simd),
            _ => {}
        }
        // 14 or 28 accumulators, and the weights beside them, in 32 registers.
        match (self.g.co / LANES, self.g.ho >= 2) {
            (2, true) => self.tiles::<S, 2, 2>(simd),
            (2, false) => self.tiles::<S, 1, 2>(simd),
            (_, true) => self.tiles::<S, 2, 1>(simd),
            (_, false) => self.tiles::<S, 1, 1>(simd),
        }
    }
}

/// Where a tile lies: first output row `oh`, first position `ow`, first output channel `o`.
#[derive(Clone, Copy)]
struct Tile {
    oh: usize,
    ow: usize,
    o: usize,
}

impl ImageConv<'_> {
    /// Every tile of `R` rows of [`NARROW`] positions by all `V` vectors of output channels.
    /// Like the last tile of a row, the last rows overlap the ones before them when `ho` is not
    /// a multiple of `R`.
    #[inline(always)]
    fn tiles<S: Vector16, const R: usize, const V: usize>(&mut self, simd: S) {
        let g = self.g;
        for oh in (0..g.ho.div_ceil(R)).map(|t| (t * R).min(g.ho - R)) {
            for ow in g.tiles(NARROW) {
                let sums = self.tile::<S, R, NARROW, V>(simd, Tile { oh, ow, o: 0 });
                for (r, sums) in sums.iter().enumerate() {
                    self.store(
                        simd,
                        Tile {
                            oh: oh + r,
                            ow,
                            o: 0,
                        },
                        &sums[..],
                    );
                }
            }
        }
    }

    /// One row of a tile's sums (`[positions][vectors]`) into `out`, from position `at.ow` of
    /// row `at.oh` and output channel `at.o` on.
    #[inline(always)]
    fn store<S: Vector16, const V: usize>(&mut self, simd: S, at: Tile, sums: &[[S::V; V]]) {
        let g = self.g;
        for (m, sums) in sums.iter().enumerate() {
            let start = (at.oh * g.wo + at.ow + m) * g.co + at.o;
            for (v, &sum) in sums.iter().enumerate() {
                let lanes: &mut Lanes = (&mut self.out[start + v * LANES..][..LANES])
                    .try_into()
                    .expect("16 lanes");
                simd.store(sum, lanes);
            }
        }
    }

    /// Every tile of one row of `M` positions by `V` vectors of output channels, for a `K x K`
    /// kernel: all output channels, `V` vectors at a time.
    #[inline(always)]
    fn row_tiles<S: Vector16, const M: usize, const K: usize, const V: usize>(&mut self, simd: S) {
        let g = self.g;
        for o in (0..g.co).step_by(V * LANES) {
            for oh in 0..g.ho {
                for ow in g.tiles(M) {
                    let at = Tile { oh, ow, o };
                    let sums = self.row_tile::<S, M, K, V>(simd, at);
                    self.store(simd, at, &sums[..]);
                }
            }
        }
    }

    /// The sums of one tile of `M` positions of one output row by `V` vectors of output
    /// channels, with a kernel row's `K` taps of weights held in registers: each input value is
    /// broadcast once per kernel row and input channel and multiplied by every tap that reaches
    /// a position of the tile (up to `K`), so a broadcast feeds up to `K * V` FMAs.
    #[inline(always)]
    fn row_tile<S: Vector16, const M: usize, const K: usize, const V: usize>(
        &self,
        simd: S,
        at: Tile,
    ) -> [[S::V; V]; M] {
        let g = self.g;
        let (c, co) = (g.c, g.co);
        let row = g.wp * c;
        let x0 = (at.oh * g.wp + at.ow) * c;
        // Every read below: input values up to `x0 + (K - 1) * row + (M + K - 2) * c + c - 1`,
        // weights up to `(K * K - 1) * c * co + (c - 1) * co + at.o + V * LANES - 1`, below
        // `K * K * c * co` since `at.o + V * LANES <= co`.
        assert!(g.k == K && at.ow + M <= g.wo && at.oh < g.ho && at.o + V * LANES <= co);
        assert!(x0 + (K - 1) * row + (M + K - 1) * c <= self.x.len());
        assert!(K * K * c * co <= self.taps.len());
        let init: [S::V; V] = std::array::from_fn(|v| match self.bias {
            Some(b) => simd.load(b[at.o + v * LANES..][..LANES].try_into().expect("16")),
            None => simd.load(&[0.0; LANES]),
        });
        let mut acc = [init; M];
        let (xp, wp) = (self.x.as_ptr(), self.taps.as_ptr());
        for ki in 0..K {
            let (xs, ws) = (x0 + ki * row, ki * K * c * co + at.o);
            for ci in 0..c {
                // SAFETY: within the bounds asserted above (`kj < K`, `ci < c`, `v < V`).
                let w: [[S::V; V]; K] = std::array::from_fn(|kj| {
                    std::array::from_fn(|v| {
                        let at = ws + (kj * c + ci) * co + v * LANES;
                        simd.load(unsafe { &*wp.add(at).cast::<Lanes>() })
                    })
                });
                for q in 0..M + K - 1 {
                    // SAFETY: as above (`q < M + K - 1`).
                    let p = unsafe { *xp.add(xs + q * c + ci) };
                    for (kj, w) in w.iter().enumerate() {
                        if q >= kj && q - kj < M {
                            for (acc, &w) in acc[q - kj].iter_mut().zip(w) {
                                *acc = simd.mul_add(p, w, *acc);
                            }
                        }
                    }
                }
            }
        }
        acc
    }

    /// The sums of one tile: `R` rows of `M` positions by `V` vectors of output channels.
    #[inline(always)]
    fn tile<S: Vector16, const R: usize, const M: usize, const V: usize>(
        &self,
        simd: S,
        at: Tile,
    ) -> [[[S::V; V]; M]; R] {
        let g = self.g;
        let (c, k, co) = (g.c, g.k, g.co);
        let row = g.wp * c;
        let x0 = (at.oh * g.wp + at.ow) * c;
        // Every read below: input values up to
        // `x0 + (k - 2 + R) * row + (k - 2 + M) * c + c - 1`, weights up to
        // `(k * k - 1) * c * co + (c - 1) * co + V * LANES - 1`.
        assert!(at.ow + M <= g.wo && at.oh + R <= g.ho && at.o == 0 && V * LANES == co);
        assert!(x0 + (k - 2 + R) * row + (k - 1 + M) * c <= self.x.len());
        assert!(k * k * c * co <= self.taps.len());
        let init: [S::V; V] = std::array::from_fn(|v| match self.bias {
            Some(b) => simd.load(b[v * LANES..][..LANES].try_into().expect("16")),
            None => simd.load(&[0.0; LANES]),
        });
        let mut acc = [[init; M]; R];
        let (xp, wp) = (self.x.as_ptr(), self.taps.as_ptr());
        for ki in 0..k {
            for kj in 0..k {
                let xs = x0 + ki * row + kj * c;
                let ws = (ki * k + kj) * c * co;
                for ci in 0..c {
                    // SAFETY: within the bounds asserted above (`ci < c`, `r < R`, `m < M`,
                    // `v < V`).
                    let w: [S::V; V] = std::array::from_fn(|v| {
                        simd.load(unsafe { &*wp.add(ws + ci * co + v * LANES).cast::<Lanes>() })
                    });
                    for (r, acc) in acc.iter_mut().enumerate() {
                        for (m, acc) in acc.iter_mut().enumerate() {
                            // SAFETY: as above.
                            let p = unsafe { *xp.add(xs + r * row + m * c + ci) };
                            for (acc, &w) in acc.iter_mut().zip(&w) {
                                *acc = simd.mul_add(p, w, *acc);
                            }
                        }
                    }
                }
            }
        }
        acc
    }
}

/// Input channels of the weight gradient's tiles come in runs of this many (a tile takes 8 of
/// them by one or two vectors of output channels, or 4 by four vectors: 8 or 16 accumulators).
const CHANNELS_PER_TILE: usize = 8;

/// Whether [`param_grads`] handles `s`: input channels in whole runs of [`CHANNELS_PER_TILE`], at
/// most 64 of them; one, two or four vectors of output channels; a CPU with AVX-512. Unlike the
/// forward pass, 64 output channels gain here too (CNN A's third layer, the second layer of CNN
/// B and the default CNN): the sum over positions reads one broadcast per 4 FMAs.
pub(crate) fn handles_param_grads(s: &ConvShape) -> bool {
    (s.co == LANES || s.co == 2 * LANES || s.co == 4 * LANES)
        && s.c.is_multiple_of(CHANNELS_PER_TILE)
        && s.c <= 64
        && s.ho() > 0
        && s.wo() > 0
        && simd::has_wide_registers()
}

/// The weight gradient `[co, c, k, k]` and bias gradient `[co]` for input `x [n, c, h, w]` and
/// output gradient `dy [n, co, ho, wo]`, with no patch matrix: each tile's sums over every
/// position of an image stay in registers. One partial sum per thread over a share of the batch
/// fixed by the thread count, added in order, so a batch always sums in the same order. Only
/// where [`handles_param_grads`] accepts `s`.
pub(crate) fn param_grads(s: &ConvShape, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let g = Geometry::of(s);
    let positions = g.ho * g.wo;
    let (image_len, out_len) = (s.c * s.h * s.w, s.co * positions);
    let zeros = || (vec![0.0f32; s.k * s.k * s.c * s.co], vec![0.0f32; s.co]);
    let per_share = s.n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = x
        .par_chunks(per_share * image_len)
        .zip(dy.par_chunks(per_share * out_len))
        .map(|(x, dy)| {
            with_scratch(0, out_len, g.hp * g.wp * s.c, |_, dy_t, padded| {
                let (mut dw, mut db) = zeros();
                for (x, dy) in x.chunks(image_len).zip(dy.chunks(out_len)) {
                    pad_channels_last(s, &g, x, padded);
                    // `[co, positions]` to `[positions, co]`.
                    transpose_blocks(dy, s.co, positions, dy_t);
                    for (b, row) in db.iter_mut().zip(dy.chunks(positions)) {
                        *b += row.iter().sum::<f32>();
                    }
                    simd::dispatch(ImageWeightGrad {
                        g: &g,
                        x: padded,
                        dy: dy_t,
                        dw: &mut dw,
                    });
                }
                (dw, db)
            })
        })
        .collect();
    let (dw, db) = sum_in_order(partials, zeros);
    (weights_from_taps(s, &dw), db)
}

/// `[k, k, c, co]` weights (as [`weights_by_tap`] makes them) back to `[co, c, k, k]`.
fn weights_from_taps(s: &ConvShape, taps: &[f32]) -> Vec<f32> {
    let (c, k, co) = (s.c, s.k, s.co);
    let mut out = vec![0.0f32; taps.len()];
    for (o, filter) in out.chunks_mut(c * k * k).enumerate() {
        for (ci, kernel) in filter.chunks_mut(k * k).enumerate() {
            for (t, v) in kernel.iter_mut().enumerate() {
                *v = taps[(t * c + ci) * co + o];
            }
        }
    }
    out
}

/// One image's weight gradient, added to `dw` (`[k, k, c, co]`): `x` is the zero-padded
/// channels-last image (`[hp, wp, c]`), `dy` its output gradient position-major
/// (`[ho * wo, co]`).
struct ImageWeightGrad<'a> {
    g: &'a Geometry,
    x: &'a [f32],
    dy: &'a [f32],
    dw: &'a mut [f32],
}

impl Kernel for ImageWeightGrad<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Vector16>(self, simd: S) {
        match self.g.co / LANES {
            4 => self.tiles::<S, 4, 4>(simd),
            2 => self.tiles::<S, 2, 8>(simd),
            _ => self.tiles::<S, 1, 8>(simd),
        }
    }
}

impl ImageWeightGrad<'_> {
    /// Every tile: each tap, by each run of `J` input channels, by all `V` vectors of output
    /// channels.
    #[inline(always)]
    fn tiles<S: Vector16, const V: usize, const J: usize>(self, simd: S) {
        let g = self.g;
        for tap in 0..g.k * g.k {
            for ci in (0..g.c).step_by(J) {
                let sums = self.tile::<S, V, J>(simd, tap, ci);
                let start = (tap * g.c + ci) * g.co;
                let rows = self.dw[start..][..J * g.co].chunks_mut(g.co);
                for (row, sums) in rows.zip(&sums) {
                    for (lanes, &sum) in row.chunks_mut(LANES).zip(sums) {
                        let lanes: &mut Lanes = lanes.try_into().expect("16 lanes");
                        // `1 * sum + dw`, rounded once: the same as adding.
                        let total = simd.mul_add(1.0, sum, simd.load(lanes));
                        simd.store(total, lanes);
                    }
                }
            }
        }
    }

    /// The sums over every output position of `x[position + tap, ci + j] * dy[position, o]`
    /// for the `J` channels `j` from `ci` and the `V` vectors of `o`.
    #[inline(always)]
    fn tile<S: Vector16, const V: usize, const J: usize>(
        &self,
        simd: S,
        tap: usize,
        ci: usize,
    ) -> [[S::V; V]; J] {
        let g = self.g;
        let (c, co) = (g.c, g.co);
        let (ki, kj) = (tap / g.k, tap % g.k);
        let x0 = (ki * g.wp + kj) * c + ci;
        // Every read below: input values up to
        // `x0 + ((ho - 1) * wp + wo - 1) * c + J - 1`, output gradients up to
        // `(ho * wo - 1) * co + V * LANES - 1`.
        assert!(V * LANES == co && ci + J <= c && tap < g.k * g.k);
        assert!(x0 + ((g.ho - 1) * g.wp + g.wo - 1) * c + J <= self.x.len());
        assert!(g.ho * g.wo * co <= self.dy.len());
        let mut acc = [[simd.load(&[0.0; LANES]); V]; J];
        let (xp, dp) = (self.x.as_ptr(), self.dy.as_ptr());
        for oh in 0..g.ho {
            for ow in 0..g.wo {
                let xs = x0 + (oh * g.wp + ow) * c;
                let ds = (oh * g.wo + ow) * co;
                // SAFETY: within the bounds asserted above (`oh < ho`, `ow < wo`, `v < V`,
                // `j < J`).
                let d: [S::V; V] = std::array::from_fn(|v| {
                    simd.load(unsafe { &*dp.add(ds + v * LANES).cast::<Lanes>() })
                });
                for (j, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: as above.
                    let p = unsafe { *xp.add(xs + j) };
                    for (acc, &d) in acc.iter_mut().zip(&d) {
                        *acc = simd.mul_add(p, d, *acc);
                    }
                }
            }
        }
        acc
    }
}
