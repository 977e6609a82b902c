//! Compile-time evaluation of ops on constants, and the fold hooks that use it.
//!
//! Folding is what turns an exporter's shape arithmetic (`Shape -> Gather -> Unsqueeze -> Concat
//! -> Reshape`) into plain constants. Values are evaluated in f64 (floats) or i64 (integers);
//! results are rounded to the op's element type when materialized.

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
    /// Decodes a dense attribute (inline or resource-held, splats expanded).
    pub fn from_dense(d: &DenseElements, resources: &ResourceStore) -> Option<Literal> {
        let shape = d.ty.static_shape()?;
        let n: u64 = shape.iter().product();
        if n > MAX_FOLD_ELEMENTS {
            return None;
        }
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
        let data = if d.ty.element.is_float() {
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

    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            Data::F(v) => v.clone(),
            Data::I(v) => v.iter().map(|&x| x as f64).collect(),
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

    /// Element `i` of this literal, with broadcasting of `self.shape` against `out_shape`.
    fn broadcast_index(&self, out_shape: &[u64], flat: usize) -> usize {
        let offset = out_shape.len() - self.shape.len();
        let mut rem = flat;
        let mut idx = 0usize;
        let mut stride = 1usize;
        for d in (0..out_shape.len()).rev() {
            let coord = rem % out_shape[d] as usize;
            rem /= out_shape[d] as usize;
            if d >= offset {
                let extent = self.shape[d - offset] as usize;
                if extent != 1 {
                    idx += coord * stride;
                }
                stride *= extent;
            }
        }
        idx
    }
}

fn out_shape(inputs: &[&Literal]) -> Option<Vec<u64>> {
    let dims: Vec<Vec<crate::types::Dim>> =
        inputs.iter().map(|l| l.shape.iter().map(|&d| crate::types::Dim::Known(d)).collect()).collect();
    let refs: Vec<Option<&[crate::types::Dim]>> = dims.iter().map(|d| Some(d.as_slice())).collect();
    super::infer::broadcast(&refs).ok()??.iter().map(|d| d.known()).collect()
}

/// Applies a binary function elementwise with broadcasting. Integer ops return `None` to refuse
/// (division by zero), which abandons the fold.
pub fn binary(
    a: &Literal,
    b: &Literal,
    element: ElementType,
    float: impl Fn(f64, f64) -> f64,
    int: impl Fn(i64, i64) -> Option<i64>,
) -> Option<Literal> {
    let shape = out_shape(&[a, b])?;
    let n: u64 = shape.iter().product();
    if n > MAX_FOLD_ELEMENTS {
        return None;
    }
    let data = match (&a.data, &b.data) {
        (Data::I(x), Data::I(y)) if element.is_integer() => Data::I(
            (0..n as usize)
                .map(|i| int(x[a.broadcast_index(&shape, i)], y[b.broadcast_index(&shape, i)]))
                .collect::<Option<_>>()?,
        ),
        _ => {
            let (x, y) = (a.to_f64(), b.to_f64());
            let vals = (0..n as usize).map(|i| float(x[a.broadcast_index(&shape, i)], y[b.broadcast_index(&shape, i)]));
            if element.is_float() {
                Data::F(vals.collect())
            } else {
                Data::I(vals.map(|v| v as i64).collect())
            }
        }
    };
    Some(Literal { shape, element, data })
}

/// Whether every operand is a constant: checked before decoding any of them, so that a weight
/// next to a run-time value is never decoded (or generated) for nothing.
fn all_constant(v: &OpView) -> bool {
    v.operands().iter().all(|o| v.constant_of(*o).is_some())
}

fn literal_operand(v: &OpView, i: usize) -> Option<Literal> {
    Literal::from_dense(v.constant_of(*v.operands().get(i)?)?, &v.module.resources)
}

fn result_element(v: &OpView) -> Option<ElementType> {
    v.result_type(0).element()
}

fn constant(l: Literal) -> Option<Vec<Folded>> {
    Some(vec![Folded::Constant(l.to_dense())])
}

/// Folds a broadcasting binary arithmetic or comparison op on two constants.
pub fn fold_binary(v: &OpView) -> Option<Vec<Folded>> {
    if !all_constant(v) {
        return None;
    }
    let (a, b) = (literal_operand(v, 0)?, literal_operand(v, 1)?);
    let element = result_element(v)?;
    let bool_of = |c: bool| c as i64 as f64;
    let result = match v.def().name {
        "smelt.add" => binary(&a, &b, element, |x, y| x + y, |x, y| x.checked_add(y)),
        "smelt.sub" => binary(&a, &b, element, |x, y| x - y, |x, y| x.checked_sub(y)),
        "smelt.mul" => binary(&a, &b, element, |x, y| x * y, |x, y| x.checked_mul(y)),
        // ONNX integer division truncates toward zero.
        "smelt.div" => binary(&a, &b, element, |x, y| x / y, |x, y| x.checked_div(y)),
        "smelt.max" => binary(&a, &b, element, f64::max, |x, y| Some(x.max(y))),
        "smelt.min" => binary(&a, &b, element, f64::min, |x, y| Some(x.min(y))),
        "smelt.pow" => binary(&a, &b, element, f64::powf, |x, y| u32::try_from(y).ok().and_then(|y| x.checked_pow(y))),
        "smelt.equal" => binary(&a, &b, element, |x, y| bool_of(x == y), |x, y| Some((x == y) as i64)),
        "smelt.less" => binary(&a, &b, element, |x, y| bool_of(x < y), |x, y| Some((x < y) as i64)),
        "smelt.greater" => binary(&a, &b, element, |x, y| bool_of(x > y), |x, y| Some((x > y) as i64)),
        _ => None,
    }?;
    constant(result)
}

/// Folds unary math on a constant.
pub fn fold_unary(v: &OpView) -> Option<Vec<Folded>> {
    if !all_constant(v) {
        return None;
    }
    let x = literal_operand(v, 0)?;
    let element = result_element(v)?;
    let f: fn(f64) -> f64 = match v.def().name {
        "smelt.neg" => |x| -x,
        "smelt.abs" => f64::abs,
        "smelt.sqrt" => f64::sqrt,
        "smelt.exp" => f64::exp,
        "smelt.log" => f64::ln,
        "smelt.reciprocal" => |x| 1.0 / x,
        "smelt.relu" => |x| x.max(0.0),
        "smelt.not" => |x| (x == 0.0) as i64 as f64,
        _ => return None,
    };
    let data = match (&x.data, element.is_float()) {
        (Data::I(vals), false) if v.def().name == "smelt.neg" => Data::I(vals.iter().map(|v| -v).collect()),
        (Data::I(vals), false) if v.def().name == "smelt.abs" => Data::I(vals.iter().map(|v| v.abs()).collect()),
        (Data::I(vals), false) if v.def().name == "smelt.relu" => Data::I(vals.iter().map(|v| (*v).max(0)).collect()),
        (_, true) => Data::F(x.to_f64().into_iter().map(f).collect()),
        (_, false) => Data::I(x.to_f64().into_iter().map(|v| f(v) as i64).collect()),
    };
    constant(Literal { shape: x.shape, element, data })
}

/// Replaces an op whose result type equals its input type and that is a no-op then
/// (identity, dropout in inference, same-type cast/reshape/expand, identity transpose).
pub fn fold_to_input(v: &OpView) -> Option<Vec<Folded>> {
    let input = v.operands()[0];
    let out_ty = v.result_type(0);
    if v.module.value_type(input) != out_ty || matches!(out_ty, Type::Tensor(t) if t.static_shape().is_none()) {
        return None;
    }
    let no_op = match v.def().name {
        "smelt.identity" | "smelt.reshape" | "smelt.expand" | "smelt.cast" | "smelt.squeeze" | "smelt.unsqueeze" => {
            true
        }
        "smelt.transpose" => v.ints("perm").is_some_and(|p| p.iter().enumerate().all(|(i, &a)| a == i as i64)),
        "smelt.dropout" => v.module.op(v.id).results().len() == 1,
        _ => false,
    };
    no_op.then(|| vec![Folded::Value(input)])
}

/// Shape-preserving data movement on a constant: the result is the input's elements under the
/// result type (reshape, squeeze, unsqueeze, flatten).
pub fn fold_retype(v: &OpView) -> Option<Vec<Folded>> {
    if let Some(f) = fold_to_input(v) {
        return Some(f);
    }
    if !all_constant(v) {
        return None;
    }
    let x = literal_operand(v, 0)?;
    let ty = v.result_type(0).as_tensor()?;
    let shape = ty.static_shape()?;
    if shape.iter().product::<u64>() as usize != x.len() {
        return None;
    }
    constant(Literal { shape, element: x.element, data: x.data })
}

pub fn fold_shape(v: &OpView) -> Option<Vec<Folded>> {
    let shape = v.tensor(0).ok()?.static_shape()?;
    let r = shape.len() as i64;
    let clamp = |a: i64| if a < 0 { (a + r).max(0) } else { a.min(r) } as usize;
    let (s, e) = (clamp(v.int("start", 0)), clamp(v.int("end", r)));
    let dims: Vec<i64> = shape[s..e.max(s)].iter().map(|&d| d as i64).collect();
    constant(Literal::from_i64(vec![dims.len() as u64], ElementType::I64, dims))
}

pub fn fold_cast(v: &OpView) -> Option<Vec<Folded>> {
    if let Some(f) = fold_to_input(v) {
        return Some(f);
    }
    if !all_constant(v) {
        return None;
    }
    let x = literal_operand(v, 0)?;
    let to = result_element(v)?;
    let data = match (to.is_float(), x.data) {
        (true, d) => Data::F(Literal { shape: vec![], element: x.element, data: d }.to_f64()),
        (false, Data::I(i)) => Data::I(i),
        (false, Data::F(f)) => {
            Data::I(f.iter().map(|&x| if to == ElementType::I1 { (x != 0.0) as i64 } else { x as i64 }).collect())
        }
    };
    constant(Literal { shape: x.shape, element: to, data })
}

pub fn fold_gather(v: &OpView) -> Option<Vec<Folded>> {
    if !all_constant(v) {
        return None;
    }
    let (x, idx) = (literal_operand(v, 0)?, literal_operand(v, 1)?);
    let axis = super::infer::normalize_axis(v.int("axis", 0), x.shape.len()).ok()?;
    let extent = x.shape[axis] as i64;
    let outer: usize = x.shape[..axis].iter().product::<u64>() as usize;
    let inner: usize = x.shape[axis + 1..].iter().product::<u64>() as usize;
    let indices: Vec<usize> = idx
        .to_i64()
        .iter()
        .map(|&i| {
            let i = if i < 0 { i + extent } else { i };
            (0..extent).contains(&i).then_some(i as usize)
        })
        .collect::<Option<_>>()?;
    let mut order = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &i in &indices {
            let base = (o * extent as usize + i) * inner;
            order.extend(base..base + inner);
        }
    }
    let data = match &x.data {
        Data::F(vals) => Data::F(order.iter().map(|&k| vals[k]).collect()),
        Data::I(vals) => Data::I(order.iter().map(|&k| vals[k]).collect()),
    };
    let mut shape = x.shape[..axis].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&x.shape[axis + 1..]);
    constant(Literal { shape, element: x.element, data })
}

pub fn fold_concat(v: &OpView) -> Option<Vec<Folded>> {
    if !all_constant(v) {
        return None;
    }
    let lits: Vec<Literal> = (0..v.operands().len()).map(|i| literal_operand(v, i)).collect::<Option<_>>()?;
    let rank = lits[0].shape.len();
    let axis = super::infer::normalize_axis(v.int("axis", 0), rank).ok()?;
    let outer: usize = lits[0].shape[..axis].iter().product::<u64>() as usize;
    let mut shape = lits[0].shape.clone();
    shape[axis] = lits.iter().map(|l| l.shape[axis]).sum();
    let element = lits[0].element;
    let chunks = |l: &Literal, o: usize| {
        let inner: usize = l.shape[axis..].iter().product::<u64>() as usize;
        o * inner..(o + 1) * inner
    };
    let data = if element.is_float() {
        let vals: Vec<Vec<f64>> = lits.iter().map(Literal::to_f64).collect();
        Data::F(
            (0..outer).flat_map(|o| lits.iter().zip(&vals).flat_map(move |(l, v)| v[chunks(l, o)].to_vec())).collect(),
        )
    } else {
        let vals: Vec<Vec<i64>> = lits.iter().map(Literal::to_i64).collect();
        Data::I(
            (0..outer).flat_map(|o| lits.iter().zip(&vals).flat_map(move |(l, v)| v[chunks(l, o)].to_vec())).collect(),
        )
    };
    constant(Literal { shape, element, data })
}

pub fn fold_slice(v: &OpView) -> Option<Vec<Folded>> {
    if !all_constant(v) {
        return None;
    }
    let x = literal_operand(v, 0)?;
    let ty = v.result_type(0).as_tensor()?.static_shape()?;
    let get = |name: &str| v.operand(name).map(|o| v.const_ints(o));
    let starts = get("starts")??;
    let ends = get("ends")??;
    let axes = match get("axes") {
        Some(a) => a?,
        None => (0..starts.len() as i64).collect(),
    };
    let steps = match get("steps") {
        Some(s) => s?,
        None => vec![1; starts.len()],
    };
    let rank = x.shape.len();
    let mut begin = vec![0i64; rank];
    let mut step = vec![1i64; rank];
    for i in 0..starts.len() {
        let a = super::infer::normalize_axis(axes[i], rank).ok()?;
        let (s, _) = super::infer::slice_bounds(starts[i], ends[i], steps[i], x.shape[a] as i64);
        begin[a] = s;
        step[a] = steps[i];
    }
    let n: u64 = ty.iter().product();
    let strides: Vec<usize> = (0..rank).map(|d| x.shape[d + 1..].iter().product::<u64>() as usize).collect();
    let index = |flat: usize| {
        let mut rem = flat;
        let mut src = 0usize;
        for d in (0..rank).rev() {
            let c = rem % ty[d] as usize;
            rem /= ty[d] as usize;
            src += (begin[d] + c as i64 * step[d]) as usize * strides[d];
        }
        src
    };
    let data = match &x.data {
        Data::F(vals) => Data::F((0..n as usize).map(|i| vals[index(i)]).collect()),
        Data::I(vals) => Data::I((0..n as usize).map(|i| vals[index(i)]).collect()),
    };
    constant(Literal { shape: ty, element: x.element, data })
}

pub fn fold_expand(v: &OpView) -> Option<Vec<Folded>> {
    if let Some(f) = fold_to_input(v) {
        return Some(f);
    }
    if !all_constant(v) {
        return None;
    }
    let x = literal_operand(v, 0)?;
    let shape = v.result_type(0).as_tensor()?.static_shape()?;
    let n: u64 = shape.iter().product();
    if n > MAX_FOLD_ELEMENTS {
        return None;
    }
    let data = match &x.data {
        Data::F(vals) => Data::F((0..n as usize).map(|i| vals[x.broadcast_index(&shape, i)]).collect()),
        Data::I(vals) => Data::I((0..n as usize).map(|i| vals[x.broadcast_index(&shape, i)]).collect()),
    };
    constant(Literal { shape, element: x.element, data })
}

pub fn fold_range(v: &OpView) -> Option<Vec<Folded>> {
    if !all_constant(v) {
        return None;
    }
    let vals: Vec<Literal> = (0..3).map(|i| literal_operand(v, i)).collect::<Option<_>>()?;
    let n = v.result_type(0).as_tensor()?.static_shape()?[0];
    let element = result_element(v)?;
    let data = if element.is_float() {
        let (s, d) = (vals[0].to_f64()[0], vals[2].to_f64()[0]);
        Data::F((0..n).map(|i| s + i as f64 * d).collect())
    } else {
        let (s, d) = (vals[0].to_i64()[0], vals[2].to_i64()[0]);
        Data::I((0..n as i64).map(|i| s + i * d).collect())
    };
    constant(Literal { shape: vec![n], element, data })
}

pub fn fold_constant_of_shape(v: &OpView) -> Option<Vec<Folded>> {
    let shape = v.result_type(0).as_tensor()?.static_shape()?;
    let n: u64 = shape.iter().product();
    if n > MAX_FOLD_ELEMENTS {
        return None;
    }
    let value = match v.attr("value").and_then(|a| a.as_dense()) {
        Some(d) => Literal::from_dense(d, &v.module.resources)?,
        None => Literal::from_i64(vec![1], ElementType::F32, vec![0]),
    };
    let data = match value.data {
        Data::F(f) => Data::F(vec![f[0]; n as usize]),
        Data::I(i) => Data::I(vec![i[0]; n as usize]),
    };
    constant(Literal { shape, element: value.element, data })
}

pub fn fold_where(v: &OpView) -> Option<Vec<Folded>> {
    if !all_constant(v) {
        return None;
    }
    let (c, x, y) = (literal_operand(v, 0)?, literal_operand(v, 1)?, literal_operand(v, 2)?);
    let shape = out_shape(&[&c, &x, &y])?;
    let n: u64 = shape.iter().product();
    let cond = c.to_i64();
    let pick = |i: usize| cond[c.broadcast_index(&shape, i)] != 0;
    let data = match (&x.data, &y.data) {
        (Data::I(a), Data::I(b)) => Data::I(
            (0..n as usize)
                .map(|i| if pick(i) { a[x.broadcast_index(&shape, i)] } else { b[y.broadcast_index(&shape, i)] })
                .collect(),
        ),
        _ => {
            let (a, b) = (x.to_f64(), y.to_f64());
            Data::F(
                (0..n as usize)
                    .map(|i| if pick(i) { a[x.broadcast_index(&shape, i)] } else { b[y.broadcast_index(&shape, i)] })
                    .collect(),
            )
        }
    };
    constant(Literal { shape, element: x.element, data })
}

pub fn fold_transpose(v: &OpView) -> Option<Vec<Folded>> {
    if let Some(f) = fold_to_input(v) {
        return Some(f);
    }
    if !all_constant(v) {
        return None;
    }
    let x = literal_operand(v, 0)?;
    let rank = x.shape.len();
    let perm: Vec<usize> = match v.ints("perm") {
        Some(p) => p.iter().map(|&a| a as usize).collect(),
        None => (0..rank).rev().collect(),
    };
    let out: Vec<u64> = perm.iter().map(|&p| x.shape[p]).collect();
    let strides: Vec<usize> = (0..rank).map(|d| x.shape[d + 1..].iter().product::<u64>() as usize).collect();
    let index = |flat: usize| {
        let mut rem = flat;
        let mut src = 0;
        for d in (0..rank).rev() {
            let c = rem % out[d] as usize;
            rem /= out[d] as usize;
            src += c * strides[perm[d]];
        }
        src
    };
    let data = match &x.data {
        Data::F(vals) => Data::F((0..x.len()).map(|i| vals[index(i)]).collect()),
        Data::I(vals) => Data::I((0..x.len()).map(|i| vals[index(i)]).collect()),
    };
    constant(Literal { shape: out, element: x.element, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_broadcasts_and_refuses_division_by_zero() {
        let a = Literal::from_i64(vec![2, 1], ElementType::I64, vec![1, 2]);
        let b = Literal::from_i64(vec![3], ElementType::I64, vec![10, 20, 30]);
        let sum = binary(&a, &b, ElementType::I64, |x, y| x + y, |x, y| x.checked_add(y)).unwrap();
        assert_eq!(sum.shape, vec![2, 3]);
        assert_eq!(sum.data, Data::I(vec![11, 21, 31, 12, 22, 32]));
        let zero = Literal::from_i64(vec![1], ElementType::I64, vec![0]);
        assert!(binary(&a, &zero, ElementType::I64, |x, y| x / y, |x, y| x.checked_div(y)).is_none());
    }
}
