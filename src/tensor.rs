//! Typed host tensors: what [`crate::Session`] takes and returns, and the files they live in
//! (`.npy`, `.npz`, ONNX `TensorProto` `.pb`).

#![deny(missing_docs)]

use crate::error::Error;
use half::{bf16, f16};
use smelt_compiler::literal::Literal;
use smelt_compiler::ElementType;
use std::path::Path;

/// A tensor's elements, one vector per element type the API exchanges.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// f16 (IEEE half) elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
    /// i64 elements.
    I64(Vec<i64>),
    /// i32 elements.
    I32(Vec<i32>),
    /// i16 elements.
    I16(Vec<i16>),
    /// i8 elements.
    I8(Vec<i8>),
    /// u64 elements.
    U64(Vec<u64>),
    /// u32 elements.
    U32(Vec<u32>),
    /// u16 elements.
    U16(Vec<u16>),
    /// u8 elements.
    U8(Vec<u8>),
    /// booleans (ONNX `bool`, the IR's `i1`) elements.
    Bool(Vec<bool>),
}

/// A dense, row-major tensor held in its own element type (no conversion through f64).
///
/// ```
/// use smelt::Tensor;
/// let t = Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0])?;
/// assert_eq!(t.shape(), &[2, 2]);
/// assert_eq!(t.as_slice::<f32>(), Some(&[1.0f32, 2.0, 3.0, 4.0][..]));
/// assert_eq!(t.as_slice::<i64>(), None);
/// assert!(Tensor::from_vec(vec![3], vec![1i64, 2]).is_err());
/// # Ok::<(), smelt::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<u64>,
    data: TensorData,
}

/// An element type a [`Tensor`] can hold.
pub trait Element: Copy + private::Sealed {
    /// The IR's element type.
    const TYPE: ElementType;
    #[doc(hidden)]
    fn wrap(values: Vec<Self>) -> TensorData;
    #[doc(hidden)]
    fn view(data: &TensorData) -> Option<&[Self]>;
}

mod private {
    pub trait Sealed {}
}

macro_rules! elements {
    ($($t:ty => $variant:ident, $element:ident;)*) => {
        $(
            impl private::Sealed for $t {}
            impl Element for $t {
                const TYPE: ElementType = ElementType::$element;
                fn wrap(values: Vec<Self>) -> TensorData {
                    TensorData::$variant(values)
                }
                fn view(data: &TensorData) -> Option<&[Self]> {
                    match data {
                        TensorData::$variant(v) => Some(v),
                        _ => None,
                    }
                }
            }
        )*

        impl TensorData {
            /// The element type of the data.
            pub fn element(&self) -> ElementType {
                match self {
                    $(TensorData::$variant(_) => ElementType::$element,)*
                }
            }

            /// The number of elements.
            pub fn len(&self) -> usize {
                match self {
                    $(TensorData::$variant(v) => v.len(),)*
                }
            }

            /// Whether there are no elements.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }
    };
}

elements! {
    f32 => F32, F32;
    f64 => F64, F64;
    f16 => F16, F16;
    bf16 => BF16, BF16;
    i64 => I64, I64;
    i32 => I32, I32;
    i16 => I16, I16;
    i8 => I8, I8;
    u64 => U64, U64;
    u32 => U32, U32;
    u16 => U16, U16;
    u8 => U8, U8;
    bool => Bool, I1;
}

/// Little-endian bytes of every element, `$width` bytes each.
macro_rules! encode_le {
    ($v:expr, $out:expr) => {
        $v.iter().for_each(|x| $out.extend_from_slice(&x.to_le_bytes()))
    };
}

/// Decodes `$bytes` as little-endian `$t`s.
macro_rules! decode_le {
    ($t:ty, $bytes:expr) => {
        $bytes
            .chunks_exact(std::mem::size_of::<$t>())
            .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunks of the element size")))
            .collect()
    };
}

impl Tensor {
    /// A tensor of `shape` holding `values` (row-major); the element count must match.
    pub fn from_vec<T: Element>(shape: Vec<u64>, values: Vec<T>) -> Result<Tensor, Error> {
        Tensor::new(shape, T::wrap(values))
    }

    /// A tensor of `shape` holding `data`; the element count must match.
    pub fn new(shape: Vec<u64>, data: TensorData) -> Result<Tensor, Error> {
        let count = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        if count != Some(data.len() as u64) {
            return Err(Error::Tensor(format!(
                "shape {} holds {} elements, {} given",
                join(&shape),
                count.map_or("too many".to_string(), |n| n.to_string()),
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// The extents, outermost first.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The element type.
    pub fn element(&self) -> ElementType {
        self.data.element()
    }

    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The elements when they are `T`s.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::view(&self.data)
    }

    /// The elements, consumed.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// The elements as little-endian bytes of the element type's width (booleans one byte
    /// each): what the executor holds and what numpy's `tobytes()` gives on x86.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() * self.element().byte_size());
        match &self.data {
            TensorData::F32(v) => encode_le!(v, out),
            TensorData::F64(v) => encode_le!(v, out),
            TensorData::F16(v) => encode_le!(v, out),
            TensorData::BF16(v) => encode_le!(v, out),
            TensorData::I64(v) => encode_le!(v, out),
            TensorData::I32(v) => encode_le!(v, out),
            TensorData::I16(v) => encode_le!(v, out),
            TensorData::I8(v) => encode_le!(v, out),
            TensorData::U64(v) => encode_le!(v, out),
            TensorData::U32(v) => encode_le!(v, out),
            TensorData::U16(v) => encode_le!(v, out),
            TensorData::U8(v) => out.extend_from_slice(v),
            TensorData::Bool(v) => out.extend(v.iter().map(|&b| b as u8)),
        }
        out
    }

    /// Decodes little-endian bytes of `element` ([`Tensor::to_le_bytes`]'s encoding).
    ///
    /// ```
    /// use smelt::{ElementType, Tensor};
    /// let t = Tensor::from_vec(vec![2], vec![1.5f32, -2.0])?;
    /// assert_eq!(Tensor::from_le_bytes(ElementType::F32, vec![2], &t.to_le_bytes())?, t);
    /// assert!(Tensor::from_le_bytes(ElementType::F32, vec![3], &t.to_le_bytes()).is_err());
    /// # Ok::<(), smelt::Error>(())
    /// ```
    pub fn from_le_bytes(element: ElementType, shape: Vec<u64>, bytes: &[u8]) -> Result<Tensor, Error> {
        if !bytes.len().is_multiple_of(element.byte_size()) {
            return Err(Error::Tensor(format!(
                "{} bytes are not a whole number of {} elements",
                bytes.len(),
                element.name()
            )));
        }
        let data = match element {
            ElementType::F32 => TensorData::F32(decode_le!(f32, bytes)),
            ElementType::F64 => TensorData::F64(decode_le!(f64, bytes)),
            ElementType::F16 => TensorData::F16(decode_le!(f16, bytes)),
            ElementType::BF16 => TensorData::BF16(decode_le!(bf16, bytes)),
            ElementType::I64 => TensorData::I64(decode_le!(i64, bytes)),
            ElementType::I32 => TensorData::I32(decode_le!(i32, bytes)),
            ElementType::I16 => TensorData::I16(decode_le!(i16, bytes)),
            ElementType::I8 => TensorData::I8(decode_le!(i8, bytes)),
            ElementType::U64 => TensorData::U64(decode_le!(u64, bytes)),
            ElementType::U32 => TensorData::U32(decode_le!(u32, bytes)),
            ElementType::U16 => TensorData::U16(decode_le!(u16, bytes)),
            ElementType::U8 => TensorData::U8(bytes.to_vec()),
            ElementType::I1 => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
            other => {
                return Err(Error::Tensor(format!(
                    "{} tensors are not exchanged through the API (cast to a wider type in the model)",
                    other.name()
                )))
            }
        };
        Tensor::new(shape, data)
    }

    /// The tensor as the reference semantics hold it.
    pub(crate) fn to_literal(&self) -> Literal {
        let ty = smelt_compiler::TensorType::of(&self.shape, self.element());
        let dense = smelt_compiler::attributes::DenseElements {
            ty,
            storage: smelt_compiler::attributes::DenseStorage::Inline(self.to_le_bytes().into()),
        };
        Literal::from_dense_unbounded(&dense).expect("a tensor's own bytes decode")
    }

    pub(crate) fn from_literal(l: &Literal) -> Result<Tensor, Error> {
        Tensor::from_le_bytes(l.element, l.shape.clone(), &l.to_bytes())
    }

    /// Reads a tensor file: `.npy`, or an ONNX `TensorProto` (`.pb`, any other name).
    pub fn read(path: impl AsRef<Path>) -> Result<Tensor, Error> {
        let path = path.as_ref();
        if path.extension().is_some_and(|e| e == "npy") {
            let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
            return npy::read(&mut npy::NpyBytes(&bytes)).map_err(|reason| Error::file(path, reason));
        }
        let l = smelt_runtime::tensor_io::read_tensor(path).map_err(Error::Tensor)?;
        Tensor::from_literal(&l).map_err(|e| Error::file(path, e.to_string()))
    }

    /// Reads every array of an `.npz` archive, by name.
    pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>, Error> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        let mut archive = ndarray_npy::NpzReader::new(file).map_err(|e| Error::file(path, e.to_string()))?;
        let names = archive.names().map_err(|e| Error::file(path, e.to_string()))?;
        names
            .into_iter()
            .map(|name| {
                let tensor = npy::read(&mut npy::NpzEntry { archive: &mut archive, name: &name })
                    .map_err(|reason| Error::file(path, format!("array '{name}': {reason}")))?;
                Ok((name.trim_end_matches(".npy").to_string(), tensor))
            })
            .collect()
    }

    /// Writes the tensor as `.npy` (by extension) or as an ONNX `TensorProto` named `name`.
    pub fn write(&self, path: impl AsRef<Path>, name: &str) -> Result<(), Error> {
        let path = path.as_ref();
        if path.extension().is_some_and(|e| e == "npy") {
            let file = std::fs::File::create(path).map_err(|e| Error::file(path, format!("cannot write: {e}")))?;
            return npy::write(self, std::io::BufWriter::new(file)).map_err(|reason| Error::file(path, reason));
        }
        smelt_runtime::tensor_io::write_tensor(path, name, &self.to_literal()).map_err(Error::Tensor)
    }
}

/// `.npy` through `ndarray-npy`: the element type is the first whose descriptor the file
/// matches.
mod npy {
    use super::{Tensor, TensorData};
    use ndarray::ArrayD;
    use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement, WriteNpyExt};

    fn array_to_tensor<T: super::Element>(a: ArrayD<T>) -> Result<Tensor, String> {
        let shape = a.shape().iter().map(|&d| d as u64).collect();
        let values = if a.is_standard_layout() { a.into_raw_vec_and_offset().0 } else { a.iter().copied().collect() };
        Tensor::from_vec(shape, values).map_err(|e| e.to_string())
    }

    /// Why one element type did not read.
    pub enum Miss {
        /// The descriptor names another type: try the next.
        WrongType,
        Fail(String),
    }

    /// Where arrays are read from, one element type at a time.
    pub trait Source {
        fn read<T: ReadableElement>(&mut self) -> Result<ArrayD<T>, Miss>;
    }

    fn from_npy(e: ReadNpyError) -> Miss {
        match e {
            ReadNpyError::WrongDescriptor(_) => Miss::WrongType,
            other => Miss::Fail(other.to_string()),
        }
    }

    /// An `.npy` file's bytes.
    pub struct NpyBytes<'a>(pub &'a [u8]);

    impl Source for NpyBytes<'_> {
        fn read<T: ReadableElement>(&mut self) -> Result<ArrayD<T>, Miss> {
            ArrayD::<T>::read_npy(std::io::Cursor::new(self.0)).map_err(from_npy)
        }
    }

    /// One array of an `.npz` archive.
    pub struct NpzEntry<'a, R: std::io::Read + std::io::Seek> {
        pub archive: &'a mut ndarray_npy::NpzReader<R>,
        pub name: &'a str,
    }

    impl<R: std::io::Read + std::io::Seek> Source for NpzEntry<'_, R> {
        fn read<T: ReadableElement>(&mut self) -> Result<ArrayD<T>, Miss> {
            self.archive.by_name(self.name).map_err(|e| match e {
                ndarray_npy::ReadNpzError::Npy(e) => from_npy(e),
                other => Miss::Fail(other.to_string()),
            })
        }
    }

    /// Reads the array as the first element type its descriptor matches.
    pub fn read(source: &mut impl Source) -> Result<Tensor, String> {
        macro_rules! try_types {
            ($($t:ty),*) => {
                $(
                    match source.read::<$t>() {
                        Ok(a) => return array_to_tensor(a),
                        Err(Miss::Fail(reason)) => return Err(reason),
                        Err(Miss::WrongType) => {}
                    }
                )*
            };
        }
        try_types!(f32, f64, i64, i32, i16, i8, u64, u32, u16, u8, bool);
        Err("an element type Smelt does not exchange (it takes float32/64, int8-64, uint8-64, bool)".to_string())
    }

    pub fn write<W: std::io::Write>(t: &Tensor, out: W) -> Result<(), String> {
        let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
        macro_rules! write_as {
            ($v:expr) => {
                ArrayD::from_shape_vec(shape, $v.clone())
                    .map_err(|e| e.to_string())?
                    .write_npy(out)
                    .map_err(|e| e.to_string())
            };
        }
        match t.data() {
            TensorData::F32(v) => write_as!(v),
            TensorData::F64(v) => write_as!(v),
            TensorData::I64(v) => write_as!(v),
            TensorData::I32(v) => write_as!(v),
            TensorData::I16(v) => write_as!(v),
            TensorData::I8(v) => write_as!(v),
            TensorData::U64(v) => write_as!(v),
            TensorData::U32(v) => write_as!(v),
            TensorData::U16(v) => write_as!(v),
            TensorData::U8(v) => write_as!(v),
            TensorData::Bool(v) => write_as!(v),
            TensorData::F16(_) | TensorData::BF16(_) => {
                Err(format!("{} has no .npy writer here; write it as a TensorProto (.pb)", t.element().name()))
            }
        }
    }
}

fn join(dims: &[u64]) -> String {
    let parts: Vec<String> = dims.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}
