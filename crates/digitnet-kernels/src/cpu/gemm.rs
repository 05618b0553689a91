//! A bounds-checked wrapper around `matrixmultiply`'s SGEMM (runtime-detected AVX2/FMA kernels).

/// A matrix view: a slice with row and column strides (in elements).
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
            assert!(
                last < self.data.len(),
                "gemm operand too small for {rows}x{cols}"
            );
        }
    }
}

/// `c = a * b + beta * c` where `a` is `m x k`, `b` is `k x n` and `c` is row-major `m x n`.
pub(crate) fn sgemm(m: usize, k: usize, n: usize, a: View, b: View, beta: f32, c: &mut [f32]) {
    a.check(m, k);
    b.check(k, n);
    assert!(c.len() >= m * n, "gemm output too small for {m}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the three checks above keep every element sgemm reads or writes inside the slices;
    // `c` is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
