//! Strided views: values that data-movement ops make from another value and that only
//! attention reads. They are never copied: attention's products read the root buffer
//! through the view's strides. The executor reads them so; the fusion cost model and the
//! report count them as free, from this one analysis.
//!
//! A ViT-B/16 layer splits its fused QKV product into queries, keys and values by a
//! transpose, three selects by a constant index and three more transposes into heads, each a
//! copy of the activations. Seen as strides over the product's output, a query head is a
//! row-major slice, a key head a column-major one (what `K^T` needs) and a value head
//! another row-major slice: no copy is needed.
//!
//! A movement op becomes a view when every user of its result is attention (as queries, keys
//! or values, not the mask) or another such view. Transposes, slices with constant bounds
//! (the Q, K and V of a merged projection), selects (a gather by one constant index) and the
//! aliasing ops (reshape, squeeze, ...) compose; a reshape that would merge axes the strides
//! keep apart is copied as before.
//!
//! Whoever reads it, a slice that is one contiguous range of its input ([`contiguous_slice`])
//! aliases the input at an offset, as a reshape aliases it at none.

use std::collections::{HashMap, HashSet};

use crate::dialect::infer::{normalize_axis, slice_bounds};
use crate::dialect::OpView;
use crate::ir::{Module, OpId, ValueId};
use crate::names;
use crate::types::TensorType;
use crate::ElementType;

/// A value read in place from `root`'s buffer: element `idx` is at
/// `offset + sum(idx[d] * strides[d])` (in elements) from the root's start.
#[derive(Clone, Debug, PartialEq)]
pub struct StridedView {
    pub root: ValueId,
    pub offset: i64,
    pub strides: Vec<i64>,
}

/// The results of `ops` (one block, in order) that attention reads as strided views.
pub fn strided_views(m: &Module, ops: &[OpId]) -> HashMap<ValueId, StridedView> {
    // Which candidates could be views, assuming every candidate input is one.
    let mut possible: HashMap<ValueId, StridedView> = HashMap::new();
    for &op in ops {
        if let Some(view) = view_of(m, op, &possible) {
            possible.insert(m.op(op).result(), view);
        }
    }
    // Which of them only attention and other views read: users come after their producers,
    // so one backward sweep decides every candidate after all of its users.
    let mut deferred: HashSet<ValueId> = HashSet::new();
    for &op in ops.iter().rev() {
        let o = m.op(op);
        if o.results().len() != 1 || !possible.contains_key(&o.result()) {
            continue;
        }
        let uses = m.value(o.result()).uses();
        let read_as_view = |u: &crate::ir::Use| {
            let user = m.op(u.user);
            (native_attention(m, u.user) && u.operand < 3)
                || user.results().len() == 1 && deferred.contains(&user.result())
        };
        if !uses.is_empty() && uses.iter().all(read_as_view) {
            deferred.insert(o.result());
        }
    }
    // The views again, now that inputs that stay materialized are roots of their own (over a
    // dense input every candidate is a view; one that were not would simply run).
    let mut views: HashMap<ValueId, StridedView> = HashMap::new();
    for &op in ops {
        let r = m.op(op).results().first().copied();
        if let Some(view) = r.filter(|r| deferred.contains(r)).and_then(|_| view_of(m, op, &views)) {
            views.insert(m.op(op).result(), view);
        }
    }
    views
}

/// Whether `op` is attention the executor runs natively (f32 throughout), reading its
/// queries, keys and values through strides.
pub fn native_attention(m: &Module, op: OpId) -> bool {
    let o = m.op(op);
    o.name() == names::ATTENTION
        && o.operands().iter().chain(o.results()).all(|&v| m.value_type(v).element() == Some(ElementType::F32))
}

/// The view `op`'s result is of its input (itself a view in `views`, or materialized).
fn view_of(m: &Module, op: OpId, views: &HashMap<ValueId, StridedView>) -> Option<StridedView> {
    let o = m.op(op);
    if !(o.def.is_view() || matches!(o.name(), names::TRANSPOSE | names::GATHER | names::SLICE))
        || o.results().len() != 1
    {
        return None;
    }
    let x = o.operands()[0];
    let (xt, rt) = (static_tensor(m, x)?, static_tensor(m, o.result())?);
    if xt.element != ElementType::F32 || rt.element != xt.element {
        return None;
    }
    let (xs, rs) = (xt.static_shape()?, rt.static_shape()?);
    if xs.contains(&0) {
        return None;
    }
    let input =
        views.get(&x).cloned().unwrap_or_else(|| StridedView { root: x, offset: 0, strides: dense_strides(&xs) });
    let view = OpView::new(m, op);
    match o.name() {
        names::TRANSPOSE => {
            let perm: Vec<i64> =
                view.ints("perm").map_or_else(|| (0..xs.len() as i64).rev().collect(), <[i64]>::to_vec);
            let strides = perm.iter().map(|&p| input.strides.get(p as usize).copied()).collect::<Option<Vec<_>>>()?;
            (strides.len() == xs.len()).then_some(StridedView { strides, ..input })
        }
        names::GATHER => {
            // A select: one constant index (a 0-d indices tensor) drops the axis.
            let indices = o.operands()[1];
            if !m.value_type(indices).as_tensor()?.static_shape()?.is_empty() {
                return None;
            }
            let &[i] = view.const_ints(indices)?.as_slice() else { return None };
            let axis = normalize_axis(view.int("axis"), xs.len()).ok()?;
            let n = xs[axis] as i64;
            let i = if i < 0 { i + n } else { i };
            if !(0..n).contains(&i) {
                return None;
            }
            let mut strides = input.strides.clone();
            let stride = strides.remove(axis);
            Some(StridedView { root: input.root, offset: input.offset + i * stride, strides })
        }
        names::SLICE => {
            let (starts, steps) = slice_starts_and_steps(&view, &xs)?;
            let offset = input.offset + starts.iter().zip(&input.strides).map(|(s, t)| s * t).sum::<i64>();
            let strides = steps.iter().zip(&input.strides).map(|(s, t)| s * t).collect();
            Some(StridedView { root: input.root, offset, strides })
        }
        _ => {
            let strides = reshaped_strides(&xs, &input.strides, &rs)?;
            Some(StridedView { strides, ..input })
        }
    }
}

/// Per axis of an input of extents `xs`, where a slice with constant bounds starts and its step
/// (0 and 1 on the axes it leaves whole); `None` when a bound is not constant.
pub fn slice_starts_and_steps(view: &OpView, xs: &[u64]) -> Option<(Vec<i64>, Vec<i64>)> {
    let bound = |name: &str| view.operand(name).map(|v| view.const_ints(v));
    let (Some(Some(starts)), Some(Some(ends))) = (bound("starts"), bound("ends")) else { return None };
    let axes = match bound("axes") {
        Some(a) => a?,
        None => (0..starts.len() as i64).collect(),
    };
    let steps = match bound("steps") {
        Some(s) => s?,
        None => vec![1; starts.len()],
    };
    if axes.len() != starts.len() || ends.len() != starts.len() || steps.len() != starts.len() {
        return None;
    }
    let (mut from, mut step) = (vec![0i64; xs.len()], vec![1i64; xs.len()]);
    for i in 0..starts.len() {
        let a = normalize_axis(axes[i], xs.len()).ok()?;
        from[a] = slice_bounds(starts[i], ends[i], steps[i], xs[a] as i64).0;
        step[a] = steps[i];
    }
    Some((from, step))
}

/// Where a slice's result lies in its input, in bytes, when it is one contiguous range that
/// starts on a 64-byte boundary (a channel range of a batch-1 NCHW tensor, rows of a matrix):
/// the result can alias its input instead of being copied.
pub fn contiguous_slice(m: &Module, op: OpId) -> Option<u64> {
    let o = m.op(op);
    if o.name() != names::SLICE || o.results().len() != 1 {
        return None;
    }
    let (xt, rt) = (static_tensor(m, o.operands()[0])?, static_tensor(m, o.result())?);
    let (xs, rs) = (xt.static_shape()?, rt.static_shape()?);
    if xt.element != rt.element || xs.len() != rs.len() || rs.contains(&0) {
        return None;
    }
    let (starts, steps) = slice_starts_and_steps(&OpView::new(m, op), &xs)?;
    // Leading axes of extent one in the result, then one partial axis read with step one,
    // then whole axes.
    let partial = (0..rs.len()).find(|&d| rs[d] != 1 || xs[d] != 1).unwrap_or(rs.len());
    let whole_after = (partial + 1..rs.len()).all(|d| rs[d] == xs[d]);
    let unit_before = (0..partial).all(|d| rs[d] == 1);
    let forward = (0..rs.len()).all(|d| steps[d] == 1 || rs[d] == 1);
    if !whole_after || !unit_before || !forward {
        return None;
    }
    let strides = dense_strides(&xs);
    let elements: i64 = starts.iter().zip(&strides).map(|(s, t)| s * t).sum();
    let bytes = u64::try_from(elements).ok()? * xt.element.byte_size() as u64;
    bytes.is_multiple_of(64).then_some(bytes)
}

/// Whether `op` launches nothing: a view op, a contiguous slice, or a movement op attention
/// reads in place (`attention_views`, from [`strided_views`] over the same block).
pub fn runs_nothing(m: &Module, op: OpId, attention_views: &HashMap<ValueId, StridedView>) -> bool {
    let o = m.op(op);
    o.def.is_view()
        || contiguous_slice(m, op).is_some()
        || o.results().first().is_some_and(|r| attention_views.contains_key(r))
}

/// Row-major strides (in elements) of a dense tensor of `shape`.
pub fn dense_strides(shape: &[u64]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1] as i64;
    }
    s
}

fn static_tensor(m: &Module, v: ValueId) -> Option<&TensorType> {
    m.value_type(v).as_tensor().filter(|t| t.static_shape().is_some())
}

/// The strides of a view of `dims` (under `strides`) reshaped to `to`, when no axis of `to`
/// spans axes of `dims` that are not laid out contiguously one after the other.
fn reshaped_strides(dims: &[u64], strides: &[i64], to: &[u64]) -> Option<Vec<i64>> {
    let (from, from_strides): (Vec<u64>, Vec<i64>) =
        dims.iter().zip(strides).filter(|(&d, _)| d != 1).map(|(&d, &s)| (d, s)).unzip();
    let kept: Vec<usize> = (0..to.len()).filter(|&d| to[d] != 1).collect();
    let mut out = vec![0i64; to.len()];
    // Groups of axes with equal products, matched left to right.
    let (mut i, mut j) = (0, 0);
    while i < from.len() && j < kept.len() {
        let (i0, j0) = (i, j);
        let (mut a, mut b) = (from[i], to[kept[j]]);
        while a != b {
            if a < b {
                i += 1;
                a *= *from.get(i)?;
            } else {
                j += 1;
                b *= to[*kept.get(j)?];
            }
        }
        if (i0..i).any(|k| from_strides[k] != from_strides[k + 1] * from[k + 1] as i64) {
            return None;
        }
        out[kept[j]] = from_strides[i];
        for k in (j0..j).rev() {
            out[kept[k]] = out[kept[k + 1]] * to[kept[k + 1]] as i64;
        }
        i += 1;
        j += 1;
    }
    (i == from.len() && j == kept.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshapes_split_and_merge_contiguous_axes_only() {
        // 197 x 768 rows of a 2304-wide buffer, split into 12 heads of 64.
        assert_eq!(reshaped_strides(&[197, 1, 768], &[2304, 7, 1], &[197, 12, 64]), Some(vec![2304, 64, 1]));
        // Unit axes come and go with any stride.
        assert_eq!(reshaped_strides(&[12, 197, 64], &[64, 2304, 1], &[1, 12, 197, 64]), Some(vec![0, 64, 2304, 1]));
        // Merging two axes the strides keep apart needs a copy.
        assert_eq!(reshaped_strides(&[12, 197, 64], &[64, 2304, 1], &[12, 12608]), None);
        // Merging contiguous ones does not.
        assert_eq!(reshaped_strides(&[2, 3, 4], &[24, 4, 1], &[2, 12]), Some(vec![24, 1]));
        assert_eq!(reshaped_strides(&[2, 3, 4], &[12, 4, 1], &[24]), Some(vec![1]));
        assert_eq!(reshaped_strides(&[6], &[2], &[2, 3]), Some(vec![6, 2]));
    }
}
