//! `Literal`: a fully materialized tensor, the currency of the reference semantics. Floats are
//! held as f64 and integers as i64 (rounded to the element type where an op produces them), so
//! one evaluation routine serves every element type.

use std::borrow::Cow;

use crate::attributes::{DenseElements, DenseStorage};
use crate::resources::ResourceStore;
use crate::types::{ElementType, TensorType};

/// Folding stops above this many elements: a bigger result is a weight transformation, which
/// belongs to the fusion passes, not to canonicalization.
pub const MAX_FOLD_ELEMENTS: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F(Vec<f64>),
    I(Vec<i64>),
}

/// A fully materialized constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub shape: Vec<u64>,
    pub element: ElementType,
    pub data: Data,
}

impl Literal {
    /// Decodes a dense attribute (inline or resource-held, splats expanded) of at most
    /// [`MAX_FOLD_ELEMENTS`] elements.
    pub fn from_dense(d: &DenseElements, resources: &ResourceStore) -> Option<Literal> {
        if d.ty.num_elements()? > MAX_FOLD_ELEMENTS {
            return None;
        }
        Self::decode(d, resources)
    }

    /// Decodes a dense attribute of any size (interpreters read whole weights).
    pub fn from_dense_unbounded(d: &DenseElements) -> Option<Literal> {
        Self::decode(d, &ResourceStore::default())
    }

    /// Decodes any dense attribute whose storage is readable.
    pub fn decode(d: &DenseElements, resources: &ResourceStore) -> Option<Literal> {
        let shape = d.ty.static_shape()?;
        let n: u64 = d.ty.num_elements()?;
        let bytes: &[u8] = match &d.storage {
            DenseStorage::Inline(b) => b,
            DenseStorage::Resource(h) => resources.get(h)?.bytes(),
        };
        let size = d.ty.element.byte_size();
        let count = bytes.len() / size;
        if count != n as usize && count != 1 {
            return None;
        }
        let at = |i: usize| if count == 1 { &bytes[..size] } else { &bytes[i * size..(i + 1) * size] };
        let data = if d.ty.element.is_float() && count > 1 {
            Data::F(crate::scalar::decode_floats(d.ty.element, &bytes[..count * size]))
        } else if d.ty.element.is_float() {
            Data::F((0..n as usize).map(|i| crate::scalar::decode(d.ty.element, at(i))).collect())
        } else {
            Data::I((0..n as usize).map(|i| crate::scalar::decode_int(d.ty.element, at(i))).collect())
        };
        Some(Literal { shape, element: d.ty.element, data })
    }

    pub fn from_i64(shape: Vec<u64>, element: ElementType, values: Vec<i64>) -> Literal {
        let data =
            if element.is_float() { Data::F(values.iter().map(|&v| v as f64).collect()) } else { Data::I(values) };
        Literal { shape, element, data }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_i64(&self) -> Vec<i64> {
        match &self.data {
            Data::F(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I(v) => v.clone(),
        }
    }

    /// The values as f64: borrowed for floats, converted for integers.
    pub fn to_f64(&self) -> Cow<'_, [f64]> {
        match &self.data {
            Data::F(v) => Cow::Borrowed(v),
            Data::I(v) => Cow::Owned(v.iter().map(|&x| x as f64).collect()),
        }
    }

    /// Every element encoded as its element type stores it (little-endian, one byte for
    /// narrow types): what executors and tensor files hold.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.element.byte_size());
        match &self.data {
            Data::F(v) => v.iter().for_each(|&x| crate::scalar::encode(self.element, x, &mut out)),
            Data::I(v) => v.iter().for_each(|&x| crate::scalar::encode_int(self.element, x, &mut out)),
        }
        out
    }

    pub fn ty(&self) -> TensorType {
        TensorType::of(&self.shape, self.element)
    }

    /// Inline dense attribute; one element is stored when all are equal (a splat).
    pub fn to_dense(&self) -> DenseElements {
        let ty = self.ty();
        match &self.data {
            Data::F(v) if v.len() > 1 && v.iter().all(|x| x.to_bits() == v[0].to_bits()) => {
                DenseElements::from_f64(ty, &v[..1])
            }
            Data::I(v) if v.len() > 1 && v.iter().all(|x| *x == v[0]) => DenseElements::from_i64(ty, &v[..1]),
            Data::F(v) => DenseElements::from_f64(ty, v),
            Data::I(v) => DenseElements::from_i64(ty, v),
        }
    }
}
