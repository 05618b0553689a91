//! CPU thread pools. digitnet's flex kernels and Burn's ndarray backend split work over the batch
//! with rayon and call `matrixmultiply`'s SGEMM inside each task. `burn-ndarray`'s multi-threading
//! also turns on `matrixmultiply`'s own thread pool, which then nests inside rayon's: on two
//! cores the pools spin against each other (measured with `cargo bench --bench throughput`, as
//! `MATMUL_NUM_THREADS=2` vs `=1`, before the benchmark called this function:
//! CNN B training on flex 3,844 -> 4,498 img/s, infer@1000 on CNN A 6,114 -> 9,580 img/s, ndarray
//! CNN B training 49 -> 71 img/s, when `matrixmultiply` keeps to one thread).

/// `matrixmultiply`'s variable for its thread count (read once, at its first multiplication).
pub const MATMUL_THREADS_ENV: &str = "MATMUL_NUM_THREADS";

/// Keeps `matrixmultiply` to the calling thread (rayon supplies the parallelism), unless the
/// user set [`MATMUL_THREADS_ENV`] already. The CLI, the examples and the benchmarks call it
/// first thing in `main`.
///
/// # Safety
///
/// It sets an environment variable, so no other thread may run yet (Rust 2024's rule for
/// `std::env::set_var`): call it at the start of `main`, before any backend is used.
pub unsafe fn single_threaded_gemm() {
    if std::env::var_os(MATMUL_THREADS_ENV).is_none() {
        // SAFETY: the caller guarantees that this process runs no other thread yet.
        unsafe { std::env::set_var(MATMUL_THREADS_ENV, "1") };
    }
}
