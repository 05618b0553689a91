//! 2x2 max-pooling with stride 2 (no padding; an odd last row or column is dropped), forward
//! with the winning position of each window, and backward.

use rayon::prelude::*;

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
            for oh in 0..ho {
                let top = &x[2 * oh * w..][..w];
                let bottom = &x[(2 * oh + 1) * w..][..w];
                for ow in 0..wo {
                    let window = [
                        top[2 * ow],
                        top[2 * ow + 1],
                        bottom[2 * ow],
                        bottom[2 * ow + 1],
                    ];
                    let mut best = 0;
                    for i in 1..4 {
                        if window[i] > window[best] {
                            best = i;
                        }
                    }
                    y[oh * wo + ow] = window[best];
                    arg[oh * wo + ow] = best as u8;
                }
            }
        });
    (y, arg)
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
}
