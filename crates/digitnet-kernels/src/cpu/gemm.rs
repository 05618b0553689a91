//! A bounds-checked SGEMM on the `gemm` crate (runtime-detected AVX2/FMA/AVX-512 kernels; burn-flex
//! uses it too) that always runs on the calling thread. The kernels call it inside their own rayon
//! tasks, one matrix product per task, so rayon supplies the parallelism and the GEMM is told, per
//! call, to use none of its own (`Parallelism::None`): no second thread pool competes with
//! rayon's, and no process-wide setting is involved.

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

/// `c = a * b + beta * c` where `a` is `m x k`, `b` is `k x n` and `c` is row-major `m x n`,
/// on the calling thread.
pub(crate) fn sgemm(m: usize, k: usize, n: usize, a: View, b: View, beta: f32, c: &mut [f32]) {
    a.check(m, k);
    b.check(k, n);
    assert!(c.len() >= m * n, "gemm output too small for {m}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the three checks above keep every element gemm reads or writes inside the slices;
    // `c` is borrowed mutably, so it cannot alias `a` or `b`. gemm computes
    // `dst = alpha * dst + beta * lhs * rhs`, reading `dst` only when asked to.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            beta != 0.0,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            beta,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `c = a * b^T + 0.5 * c` against a plain sum.
    fn check_product(m: usize, k: usize, n: usize) {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
        let mut c = vec![1.0f32; m * n];
        sgemm(
            m,
            k,
            n,
            View::rows(&a, k),
            View::transposed(&b, k),
            0.5,
            &mut c,
        );
        for (i, j) in [(0, 0), (m - 1, n - 1), (m / 2, n / 3)] {
            let exact: f32 = (0..k).map(|l| a[i * k + l] * b[j * k + l]).sum::<f32>() + 0.5;
            assert_eq!(c[i * n + j], exact, "{m}x{k}x{n}: c[{i}][{j}]");
        }
    }

    #[test]
    fn small_and_large_products_are_exact() {
        check_product(7, 5, 3);
        check_product(70, 600, 130);
    }
}
