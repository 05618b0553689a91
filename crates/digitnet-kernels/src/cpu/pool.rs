//! 2x2 max-pooling with stride 2 (no padding; an odd last row or column is dropped), forward
//! with the winning position of each window, and backward.

use rayon::prelude::*;

use super::simd::{self, Kernel, Vector16};

/// Pools `x` (`planes` planes of `h x w`); returns the `[planes, h / 2, w / 2]` maxima and, for
/// each, which of its window's four pixels won (0..4, row-major).
pub(crate) fn forward(x: &[f32], planes: usize, h: usize, w: usize) -> (Vec<f32>, Vec<u8>) {
    let (ho, wo) = (h / 2, w / 2);
    let mut y = vec![0.0f32; planes * ho * wo];
    let mut arg = vec![0u8; planes * ho * wo];
    if ho == 0 || wo == 0 {
        return (y, arg);
    }
    y.par_chunks_mut(ho * wo)
        .zip(arg.par_chunks_mut(ho * wo))
        .zip(x.par_chunks(h * w))
        .for_each(|((y, arg), x)| {
            pool_plane(x, w, w, y, arg);
        });
    (y, arg)
}

/// One plane's 2x2 maxima `y` (`h / 2 x w / 2`) and winners `arg`, from `x`: rows of `w` pixels,
/// `stride` apart.
pub(crate) fn pool_plane(x: &[f32], w: usize, stride: usize, y: &mut [f32], arg: &mut [u8]) {
    simd::dispatch(PoolPlane {
        x,
        w,
        stride,
        y,
        arg,
    });
}

/// [`pool_plane`]'s loops.
struct PoolPlane<'a> {
    x: &'a [f32],
    w: usize,
    stride: usize,
    y: &'a mut [f32],
    arg: &'a mut [u8],
}

impl Kernel for PoolPlane<'_> {
    type Output = ();

    /// Without branches, so that the compiler can vectorize it. The first of equal maxima (in
    /// row-major order) wins.
    #[inline(always)]
    fn run<S: Vector16>(self, _: S) {
        let wo = self.w / 2;
        // A last odd row makes a short chunk, left unpaired: `outputs` has run out by then.
        let rows = self.x.chunks(2 * self.stride);
        let outputs = self
            .y
            .chunks_exact_mut(wo)
            .zip(self.arg.chunks_exact_mut(wo));
        for (pair, (y, arg)) in rows.zip(outputs) {
            let (top, bottom) = pair.split_at(self.stride);
            let (top, bottom) = (&top[..2 * wo], &bottom[..2 * wo]);
            let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
            for ((y, arg), (t, b)) in y.iter_mut().zip(arg.iter_mut()).zip(windows) {
                let (upper, i_upper) = if t[1] > t[0] { (t[1], 1) } else { (t[0], 0) };
                let (lower, i_lower) = if b[1] > b[0] { (b[1], 3) } else { (b[0], 2) };
                (*y, *arg) = if lower > upper {
                    (lower, i_lower)
                } else {
                    (upper, i_upper)
                };
            }
        }
    }
}

/// The input gradient `[planes, h, w]`: each output gradient goes to its window's winner.
pub(crate) fn backward(dy: &[f32], arg: &[u8], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let (ho, wo) = (h / 2, w / 2);
    let mut dx = vec![0.0f32; planes * h * w];
    if ho == 0 || wo == 0 {
        return dx;
    }
    dx.par_chunks_mut(h * w)
        .zip(dy.par_chunks(ho * wo))
        .zip(arg.par_chunks(ho * wo))
        .for_each(|((dx, dy), arg)| {
            for oh in 0..ho {
                for ow in 0..wo {
                    let a = usize::from(arg[oh * wo + ow]);
                    dx[(2 * oh + a / 2) * w + 2 * ow + a % 2] = dy[oh * wo + ow];
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_odd_planes_and_routes_gradients_to_the_winners() {
        // One 3x5 plane: rows 0-1 form two windows; row 2 and column 4 are dropped.
        let x = [
            1.0, 5.0, 2.0, 0.0, 9.0, 3.0, 4.0, 7.0, 1.0, 9.0, 8.0, 8.0, 8.0, 8.0, 8.0,
        ];
        let (y, arg) = forward(&x, 1, 3, 5);
        assert_eq!(y, vec![5.0, 7.0]);
        assert_eq!(arg, vec![1, 2]);
        let dx = backward(&[10.0, 20.0], &arg, 1, 3, 5);
        let mut want = vec![0.0; 15];
        want[1] = 10.0;
        want[7] = 20.0;
        assert_eq!(dx, want);
    }

    #[test]
    fn the_first_of_equal_maxima_wins() {
        // Four 2x2 windows side by side in one 2x8 plane: all equal, a tie in the top row, a
        // tie across the rows, a tie in the bottom row.
        let x = [
            3.0, 3.0, 1.0, 2.0, 1.0, 2.0, 0.0, 1.0, //
            3.0, 3.0, 2.0, 1.0, 2.0, 1.0, 2.0, 2.0,
        ];
        let (y, arg) = forward(&x, 1, 2, 8);
        assert_eq!(y, vec![3.0, 2.0, 2.0, 2.0]);
        assert_eq!(arg, vec![0, 1, 1, 2]);
    }
}
