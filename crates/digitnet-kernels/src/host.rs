//! The CPU backends whose tensors live in host memory as plain `f32` buffers, so that the
//! kernels in [`crate::cpu`] can read them in place: Burn's flex and ndarray backends.

use burn::prelude::*;
use burn::tensor::TensorMetadata;
use burn::tensor::ops::FloatTensor;

/// A Burn backend whose float tensors the CPU kernels can read as row-major `f32` slices and
/// build from `Vec<f32>`s, without copying when the tensor is already contiguous.
pub(crate) trait HostBackend: Backend {
    /// The fewest rows (images) for which [`crate::linear`] runs the kernels' own layer here;
    /// fewer go to Burn's matmul.
    const OWN_LINEAR_MIN_ROWS: usize;

    /// `t` with a contiguous row-major buffer: `t` itself (a cheap clone) when it has one, a
    /// copy otherwise. Its [`HostBackend::slice`] is then available.
    fn contiguous(t: &FloatTensor<Self>) -> FloatTensor<Self>;

    /// The `f32` values of a tensor returned by [`HostBackend::contiguous`].
    fn slice(t: &FloatTensor<Self>) -> &[f32];

    /// A float tensor of `shape` that takes ownership of `values` (row-major).
    fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FloatTensor<Self> {
        Self::float_from_data(TensorData::new(values, shape), &Default::default())
    }

    /// A buffer holding the values of a tensor, to overwrite in place.
    type Owned: Send;

    /// `t`'s values as a buffer this code alone holds: `t`'s own when it is contiguous and not
    /// shared, a copy otherwise.
    fn owned(t: FloatTensor<Self>) -> Self::Owned;

    /// The values of an [`HostBackend::Owned`] buffer, row-major.
    fn owned_slice(values: &mut Self::Owned) -> &mut [f32];

    /// The tensor that holds `values`, with the shape it had.
    fn from_owned(values: Self::Owned) -> FloatTensor<Self>;

    /// The dimensions of `t`.
    fn dims<const D: usize>(t: &FloatTensor<Self>) -> [usize; D] {
        t.shape().dims()
    }
}

#[cfg(feature = "flex")]
impl HostBackend for burn_flex::Flex {
    /// flex's matmul is the `gemm` crate's too, but it adds the bias in a second pass and runs a
    /// weight gradient with few outputs (3136 -> 10) as a slow GEMM; the kernels' layer trains
    /// CNN A 1.04x and infers MLP A 1.17x faster. A single row is a matrix-vector product, which
    /// flex's matmul runs faster (`benches/RESULTS.md`).
    const OWN_LINEAR_MIN_ROWS: usize = 2;

    fn contiguous(t: &burn_flex::FlexTensor) -> burn_flex::FlexTensor {
        t.to_contiguous()
    }

    fn slice(t: &burn_flex::FlexTensor) -> &[f32] {
        t.as_slice::<f32>()
            .expect("an f32 tensor made contiguous has an f32 slice")
    }

    fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> burn_flex::FlexTensor {
        burn_flex::FlexTensor::from_data(TensorData::new(values, shape))
    }

    /// The tensor itself, so a step that owns it writes into its buffer.
    type Owned = burn_flex::FlexTensor;

    fn owned(t: burn_flex::FlexTensor) -> burn_flex::FlexTensor {
        // `t` itself is let go first, so that a contiguous tensor's buffer is held once.
        let mut t = {
            let contiguous = Self::contiguous(&t);
            drop(t);
            contiguous
        };
        let len = t.shape().num_elements();
        match t.try_storage_mut::<f32>() {
            Some(values) if values.len() == len => t,
            _ => burn_flex::FlexTensor::from_data(TensorData::new(
                Self::slice(&t).to_vec(),
                t.shape(),
            )),
        }
    }

    fn owned_slice(values: &mut burn_flex::FlexTensor) -> &mut [f32] {
        values.storage_mut::<f32>()
    }

    fn from_owned(values: burn_flex::FlexTensor) -> burn_flex::FlexTensor {
        values
    }
}

#[cfg(feature = "ndarray")]
impl HostBackend for burn_ndarray::NdArray {
    /// ndarray's matmul goes through its generic array code; the kernels' layer trains MLP A
    /// 1.8x faster (`benches/RESULTS.md`).
    const OWN_LINEAR_MIN_ROWS: usize = 1;

    fn contiguous(t: &burn_ndarray::NdArrayTensor) -> burn_ndarray::NdArrayTensor {
        match t {
            burn_ndarray::NdArrayTensor::F32(storage) if storage.view().is_standard_layout() => {
                t.clone()
            }
            burn_ndarray::NdArrayTensor::F32(storage) => {
                let values: Vec<f32> = storage.view().iter().copied().collect();
                let shape = burn::tensor::Shape::from(storage.shape().to_vec());
                burn_ndarray::NdArrayTensor::from_data(TensorData::new(values, shape))
            }
            _ => unreachable!("the kernels are only called on f32 tensors"),
        }
    }

    fn slice(t: &burn_ndarray::NdArrayTensor) -> &[f32] {
        match t {
            burn_ndarray::NdArrayTensor::F32(storage) => storage
                .view()
                .to_slice()
                .expect("a tensor made contiguous has a row-major slice"),
            _ => unreachable!("tensors made contiguous are f32"),
        }
    }

    fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> burn_ndarray::NdArrayTensor {
        burn_ndarray::NdArrayTensor::from_data(TensorData::new(values, shape))
    }

    /// The tensor's array, in standard layout (copy-on-write: copied first when shared).
    type Owned = ndarray::ArcArray<f32, ndarray::IxDyn>;

    fn owned(t: burn_ndarray::NdArrayTensor) -> Self::Owned {
        match Self::contiguous(&t) {
            burn_ndarray::NdArrayTensor::F32(storage) => {
                drop(t);
                storage.into_owned()
            }
            _ => unreachable!("the kernels are only called on f32 tensors"),
        }
    }

    fn owned_slice(values: &mut Self::Owned) -> &mut [f32] {
        values
            .as_slice_mut()
            .expect("a tensor made contiguous has a row-major slice")
    }

    fn from_owned(values: Self::Owned) -> burn_ndarray::NdArrayTensor {
        burn_ndarray::NdArrayTensor::F32(values.into())
    }
}
