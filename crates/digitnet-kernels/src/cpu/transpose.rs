//! Matrix transposes between the layouts the convolutions compute in (channels-last,
//! position-major) and Burn's `[n, c, h, w]`.
//!
//! A plain loop writes every value to a different cache line of the output, and ran at about one
//! value per nanosecond: 6% of CNN A's training step went there. With AVX2, squares of 8 x 8
//! values are transposed in registers instead (eight loads, 24 shuffles, eight stores).

/// Transposes each `[rows, cols]` block of `src` into the same block of `dst` (`[cols, rows]`).
pub(super) fn transpose_blocks(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    let len = rows * cols;
    if len == 0 {
        return;
    }
    for (src, dst) in src.chunks_exact(len).zip(dst.chunks_exact_mut(len)) {
        transpose(src, rows, cols, dst);
    }
}

/// Side of the squares transposed in registers.
const SQUARE: usize = 8;

/// `src` (`[rows, cols]`) transposed into `dst` (`[cols, rows]`).
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    let (whole_rows, whole_cols) = (rows - rows % SQUARE, cols - cols % SQUARE);
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        simd.vectorize(|| {
            for i in (0..whole_rows).step_by(SQUARE) {
                for j in (0..whole_cols).step_by(SQUARE) {
                    square(simd, src, rows, cols, dst, i, j);
                }
            }
        });
        edges(src, rows, cols, dst, whole_rows, whole_cols);
        return;
    }
    edges(src, rows, cols, dst, 0, 0);
}

/// The values outside the whole squares: rows from `whole_rows` on, and columns from
/// `whole_cols` on (every value when both are 0).
fn edges(
    src: &[f32],
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    whole_rows: usize,
    whole_cols: usize,
) {
    for (i, row) in src.chunks_exact(cols).enumerate() {
        let from = if i < whole_rows { whole_cols } else { 0 };
        for (j, &v) in row.iter().enumerate().skip(from) {
            dst[j * rows + i] = v;
        }
    }
}

/// The 8 x 8 square at row `i`, column `j` of `src`, transposed into `dst`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn square(
    simd: pulp::x86::V3,
    src: &[f32],
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    i: usize,
    j: usize,
) {
    use pulp::bytemuck::cast;
    use std::arch::x86_64::__m256;

    let avx = simd.avx;
    let r: [__m256; SQUARE] = std::array::from_fn(|r| {
        let lanes: [f32; SQUARE] = src[(i + r) * cols + j..][..SQUARE]
            .try_into()
            .expect("8 values");
        cast(lanes)
    });
    // t[2p] and t[2p + 1]: rows 2p and 2p + 1 interleaved, columns (0, 1, 4, 5) and (2, 3, 6, 7).
    let t: [__m256; SQUARE] = std::array::from_fn(|k| {
        let (a, b) = (r[k / 2 * 2], r[k / 2 * 2 + 1]);
        match k % 2 {
            0 => avx._mm256_unpacklo_ps(a, b),
            _ => avx._mm256_unpackhi_ps(a, b),
        }
    });
    // u[4h + c] holds column c (128-bit half 0) and column c + 4 (half 1) of rows 4h to 4h + 3:
    // t[4h + m] and t[4h + m + 2] hold columns 2m and 2m + 1 of those rows, and the shuffle
    // keeps the first (s = 0) or second (s = 1) of them.
    let u: [__m256; SQUARE] = std::array::from_fn(|k| {
        let (h, m, s) = (k / 4, k % 4 / 2, k % 2);
        let (a, b) = (t[4 * h + m], t[4 * h + m + 2]);
        match s {
            0 => avx._mm256_shuffle_ps::<0x44>(a, b),
            _ => avx._mm256_shuffle_ps::<0xEE>(a, b),
        }
    });
    for c in 0..SQUARE {
        // Column c: half c / 4 of u[c % 4] (rows 0-3) and of u[4 + c % 4] (rows 4-7).
        let (low, high) = (u[c % 4], u[4 + c % 4]);
        let column = match c / 4 {
            0 => avx._mm256_permute2f128_ps::<0x20>(low, high),
            _ => avx._mm256_permute2f128_ps::<0x31>(low, high),
        };
        let lanes: [f32; SQUARE] = cast(column);
        dst[(j + c) * rows + i..][..SQUARE].copy_from_slice(&lanes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape, whole squares and edges alike, against the definition.
    #[test]
    fn transposes_every_shape() {
        for (rows, cols, blocks) in [
            (1, 1, 1),
            (8, 8, 1),
            (16, 8, 2),
            (9, 17, 3),
            (196, 32, 2),
            (32, 196, 2),
            (49, 64, 1),
            (7, 3, 2),
            (3, 40, 1),
        ] {
            let src: Vec<f32> = (0..rows * cols * blocks).map(|v| v as f32).collect();
            let mut dst = vec![-1.0; src.len()];
            transpose_blocks(&src, rows, cols, &mut dst);
            for b in 0..blocks {
                for i in 0..rows {
                    for j in 0..cols {
                        let at = b * rows * cols;
                        assert_eq!(
                            dst[at + j * rows + i],
                            src[at + i * cols + j],
                            "{rows}x{cols} block {b} at ({i}, {j})"
                        );
                    }
                }
            }
        }
    }
}
