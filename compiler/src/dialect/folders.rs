//! Compile-time evaluation of ops on constants, and the fold hooks that use it.
//!
//! Folding is what turns an exporter's shape arithmetic (`Shape -> Gather -> Unsqueeze -> Concat
//! -> Reshape`) into plain constants. Values are evaluated in f64 (floats) or i64 (integers);
//! results are rounded to the op's element type when materialized.

use super::{names, Folded, OpView};
use crate::attributes::{Attribute, DenseElements, DenseStorage};
use crate::literal::{Literal, MAX_FOLD_ELEMENTS};
use crate::types::{ElementType, TensorType, Type};

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
    if let Some(splat) = fold_splat(v) {
        return Some(splat);
    }
    if let Some(joined) = fold_concat_bytes(v) {
        return Some(joined);
    }
    let results = v.module.op(v.id).results();
    // Folding may produce as much data as it consumes (a folded BatchNorm rewrites a whole
    // weight tensor, a concatenation joins the weights of merged products), but never blows a
    // small constant up into a large one.
    let elements = |x: &crate::ir::ValueId| v.module.value_type(*x).as_tensor().and_then(TensorType::num_elements);
    let consumed = match v.def().name {
        names::CONCAT => v.operands().iter().filter_map(elements).sum(),
        _ => v.operands().iter().filter_map(elements).max().unwrap_or(0),
    };
    let small = |r: &crate::ir::ValueId| elements(r).is_some_and(|n| n <= MAX_FOLD_ELEMENTS.max(consumed));
    if results.is_empty() || !results.iter().all(small) {
        return None;
    }
    let inputs: Vec<Literal> =
        v.operands().iter().map(|o| Literal::decode(v.constant_of(*o)?, &v.module.resources)).collect::<Option<_>>()?;
    let refs: Vec<&Literal> = inputs.iter().collect();
    let outputs = super::eval::evaluate(v.module, v.id, &refs).ok()?;
    Some(outputs.iter().map(|l| Folded::Constant(l.to_dense())).collect())
}

/// A concatenation of dense constants as bytes: the merged weights of parallel products are
/// megabytes, which the reference evaluation would widen to f64 and back.
fn fold_concat_bytes(v: &OpView) -> Option<Vec<Folded>> {
    if v.def().name != names::CONCAT {
        return None;
    }
    let out = v.result_type(0).as_tensor()?.clone();
    let shape = out.static_shape()?;
    let axis = super::infer::normalize_axis(v.int("axis"), shape.len()).ok()?;
    let size = out.element.byte_size();
    let outer: u64 = shape[..axis].iter().product();
    let mut parts: Vec<(&[u8], usize)> = Vec::new();
    for &o in v.operands() {
        let d = v.constant_of(o)?;
        let s = d.ty.static_shape()?;
        if d.ty.element != out.element || d.is_splat() {
            return None;
        }
        let bytes: &[u8] = match &d.storage {
            DenseStorage::Inline(b) => b,
            DenseStorage::Resource(h) => v.module.resources.get(h)?.bytes(),
        };
        let row = s[axis..].iter().product::<u64>() as usize * size;
        if bytes.len() != row * outer as usize {
            return None;
        }
        parts.push((bytes, row));
    }
    let mut joined = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    for r in 0..outer as usize {
        for (bytes, row) in &parts {
            joined.extend_from_slice(&bytes[r * row..(r + 1) * row]);
        }
    }
    Some(vec![Folded::Constant(DenseElements { ty: out, storage: DenseStorage::Inline(joined.into()) })])
}

/// A splat through an op that only fills, moves or repeats elements stays a splat: one value
/// stored whatever the size (VGG-19's 25088x4096 weight from `ConstantOfShape`), never
/// materialized per element nor generated per run.
fn fold_splat(v: &OpView) -> Option<Vec<Folded>> {
    let out = v.result_type(0).as_tensor()?;
    out.static_shape()?;
    let source = match v.def().name {
        names::CONSTANT_OF_SHAPE => v.attr("value").and_then(Attribute::as_dense),
        names::EXPAND
        | names::RESHAPE
        | names::TILE
        | names::TRANSPOSE
        | names::SQUEEZE
        | names::UNSQUEEZE
        | names::FLATTEN
        | names::IDENTITY => Some(v.constant_of(v.operands()[0])?),
        _ => return None,
    };
    let bytes: std::sync::Arc<[u8]> = match source {
        Some(d) if d.ty.element == out.element && d.is_splat() => match &d.storage {
            DenseStorage::Inline(b) => b.clone(),
            DenseStorage::Resource(_) => return None,
        },
        Some(_) => return None,
        None => vec![0u8; out.element.byte_size()].into(),
    };
    let ty = out.clone();
    Some(vec![Folded::Constant(DenseElements { ty, storage: DenseStorage::Inline(bytes) })])
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
            names::IDENTITY
            | names::RESHAPE
            | names::EXPAND
            | names::CAST
            | names::SQUEEZE
            | names::UNSQUEEZE
            | names::FLATTEN => true,
            names::TRANSPOSE => v.ints("perm").is_some_and(|p| p.iter().enumerate().all(|(i, &a)| a == i as i64)),
            names::DROPOUT => v.module.op(v.id).results().len() == 1,
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
    let (s, e) = (clamp(v.int("start")), clamp(v.opt_int("end").unwrap_or(r)));
    let dims: Vec<i64> = shape[s..e.max(s)].iter().map(|&d| d as i64).collect();
    Some(vec![Folded::Constant(Literal::from_i64(vec![dims.len() as u64], ElementType::I64, dims).to_dense())])
}
