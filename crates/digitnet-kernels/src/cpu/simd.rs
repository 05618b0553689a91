//! Sixteen `f32` lanes at a time on the CPU's vector unit, picked at run time with `pulp`: one
//! AVX-512 register, two AVX2+FMA registers, or plain code on other CPUs. A kernel's loops are
//! written once, over [`Vector16`], and compiled once per instruction set; the compiler's own
//! vectorizer is not relied on (it left these loops scalar).

/// Lanes per vector.
pub(crate) const LANES: usize = 16;

/// Sixteen consecutive values in memory: one vector's worth.
pub(crate) type Lanes = [f32; LANES];

/// Multiply-adds on sixteen lanes held in registers.
pub(crate) trait Vector16: Copy {
    /// Sixteen lanes in registers: the same bytes as [`Lanes`].
    type V: pulp::bytemuck::Pod;

    /// The lanes of `x` into registers.
    #[inline(always)]
    fn load(self, x: &Lanes) -> Self::V {
        pulp::bytemuck::cast(*x)
    }

    /// Registers back into memory.
    #[inline(always)]
    fn store(self, v: Self::V, out: &mut Lanes) {
        *out = pulp::bytemuck::cast(v);
    }

    /// `acc + p * w`, each lane.
    fn mul_add(self, p: f32, w: Self::V, acc: Self::V) -> Self::V;
}

/// A kernel's loops, generic over the instruction set.
pub(crate) trait Kernel {
    /// What the kernel returns.
    type Output;

    /// Runs the loops with `simd`'s instructions.
    fn run<S: Vector16>(self, simd: S) -> Self::Output;
}

/// Runs `kernel` with the best instructions this CPU has.
pub(crate) fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return simd.vectorize(Run(kernel, simd));
        }
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(Run(kernel, simd));
        }
    }
    kernel.run(Plain)
}

/// Whether this CPU has 32 vector registers of 16 lanes (AVX-512), enough for kernels that keep
/// a tile of up to 28 vectors of sums in registers.
pub(crate) fn has_wide_registers() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        pulp::x86::V4::try_new().is_some()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A kernel and its instruction set, as `pulp` runs it: inlined into a function compiled with
/// that instruction set enabled.
struct Run<K, S>(K, S);

impl<K: Kernel, S: Vector16> pulp::NullaryFnOnce for Run<K, S> {
    type Output = K::Output;

    #[inline(always)]
    fn call(self) -> K::Output {
        self.0.run(self.1)
    }
}

/// Plain code, for CPUs without AVX2+FMA.
#[derive(Clone, Copy)]
struct Plain;

impl Vector16 for Plain {
    type V = Lanes;

    #[inline(always)]
    fn mul_add(self, p: f32, w: Lanes, mut acc: Lanes) -> Lanes {
        for (a, w) in acc.iter_mut().zip(w) {
            *a += p * w;
        }
        acc
    }
}

#[cfg(target_arch = "x86_64")]
impl Vector16 for pulp::x86::V4 {
    type V = pulp::f32x16;

    #[inline(always)]
    fn mul_add(self, p: f32, w: Self::V, acc: Self::V) -> Self::V {
        self.mul_add_f32x16(self.splat_f32x16(p), w, acc)
    }
}

#[cfg(target_arch = "x86_64")]
impl Vector16 for pulp::x86::V3 {
    type V = [pulp::f32x8; 2];

    #[inline(always)]
    fn mul_add(self, p: f32, w: Self::V, acc: Self::V) -> Self::V {
        let p = self.splat_f32x8(p);
        [
            self.mul_add_f32x8(p, w[0], acc[0]),
            self.mul_add_f32x8(p, w[1], acc[1]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `acc + p * w` for each lane, with the instructions [`dispatch`] picks.
    struct MulAdd(f32, Lanes, Lanes);

    impl Kernel for MulAdd {
        type Output = Lanes;

        fn run<S: Vector16>(self, simd: S) -> Lanes {
            let mut out = [0.0; LANES];
            let (p, w, acc) = (self.0, simd.load(&self.1), simd.load(&self.2));
            simd.store(simd.mul_add(p, w, acc), &mut out);
            out
        }
    }

    #[test]
    fn every_lane_gets_its_own_product() {
        let w: Lanes = std::array::from_fn(|i| i as f32);
        let acc: Lanes = std::array::from_fn(|i| 100.0 * i as f32);
        let want: Lanes = std::array::from_fn(|i| 100.0 * i as f32 + 0.5 * i as f32);
        assert_eq!(dispatch(MulAdd(0.5, w, acc)), want);
        assert_eq!(MulAdd(0.5, w, acc).run(Plain), want);
    }
}
