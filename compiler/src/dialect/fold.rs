//! Compile-time evaluation of ops on constants, and the fold hooks that use it.
//!
//! Folding is what turns an exporter's shape arithmetic (`Shape -> Gather -> Unsqueeze -> Concat
//! -> Reshape`) into plain constants. Values are evaluated in f64 (floats) or i64 (integers);
//! results are rounded to the op's element type when materialized.

use std::borrow::Cow;

use super::{Folded, OpView};
use crate::attributes::{DenseElements, DenseStorage};
use crate::resources::ResourceStore;
use crate::types::{ElementType, TensorType, Type};

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

/// Whether every operand is a constant: checked before decoding any of them, so that a weight
/// next to a run-time value is never decoded (or generated) for nothing.
fn all_constant(v: &OpView) -> bool {
    v.operands().iter().all(|o| v.constant_of(*o).is_some())
}

/// Folds an op whose operands are all constants by evaluating it with the reference semantics
/// ([`super::eval`]). Results above [`MAX_FOLD_ELEMENTS`] elements, and above the largest
/// operand, are left to run time.
pub fn fold_constant(v: &OpView) -> Option<Vec<Folded>> {
    if v.operands().is_empty() || !all_constant(v) {
        return None;
    }
    let results = v.module.op(v.id).results();
    // Folding may produce as much data as it consumes (a folded BatchNorm rewrites a whole
    // weight tensor), but never blows a small constant up into a large one.
    let elements = |x: &crate::ir::ValueId| v.module.value_type(*x).as_tensor().and_then(TensorType::num_elements);
    let largest_input = v.operands().iter().filter_map(elements).max().unwrap_or(0);
    let small = |r: &crate::ir::ValueId| elements(r).is_some_and(|n| n <= MAX_FOLD_ELEMENTS.max(largest_input));
    if results.is_empty() || !results.iter().all(small) {
        return None;
    }
    let inputs: Vec<Literal> =
        v.operands().iter().map(|o| Literal::decode(v.constant_of(*o)?, &v.module.resources)).collect::<Option<_>>()?;
    let refs: Vec<&Literal> = inputs.iter().collect();
    let outputs = super::eval::evaluate(v.module, v.id, &refs).ok()?;
    Some(outputs.iter().map(|l| Folded::Constant(l.to_dense())).collect())
}

/// Replaces an op whose result type equals its input type and that is a no-op then
/// (identity, dropout in inference, same-type cast/reshape/expand, identity transpose); else
/// folds constants.
pub fn fold_to_input(v: &OpView) -> Option<Vec<Folded>> {
    let input = v.operands()[0];
    let out_ty = v.result_type(0);
    let same = v.module.value_type(input) == out_ty && !matches!(out_ty, Type::Tensor(t) if t.static_shape().is_none());
    let no_op = same
        && match v.def().name {
            "smelt.identity" | "smelt.reshape" | "smelt.expand" | "smelt.cast" | "smelt.squeeze"
            | "smelt.unsqueeze" | "smelt.flatten" => true,
            "smelt.transpose" => v.ints("perm").is_some_and(|p| p.iter().enumerate().all(|(i, &a)| a == i as i64)),
            "smelt.dropout" => v.module.op(v.id).results().len() == 1,
            _ => false,
        };
    if no_op {
        Some(vec![Folded::Value(input)])
    } else {
        fold_constant(v)
    }
}

/// `shape` folds whenever its input's shape is static, constant or not.
pub fn fold_shape(v: &OpView) -> Option<Vec<Folded>> {
    let shape = v.tensor(0).ok()?.static_shape()?;
    let r = shape.len() as i64;
    let clamp = |a: i64| if a < 0 { (a + r).max(0) } else { a.min(r) } as usize;
    let (s, e) = (clamp(v.int("start", 0)), clamp(v.int("end", r)));
    let dims: Vec<i64> = shape[s..e.max(s)].iter().map(|&d| d as i64).collect();
    Some(vec![Folded::Constant(Literal::from_i64(vec![dims.len() as u64], ElementType::I64, dims).to_dense())])
}
