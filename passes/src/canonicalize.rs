//! `canonicalize`: a greedy worklist driver that erases dead ops, refines result types, applies
//! op fold hooks and canonicalization patterns until nothing changes (or `max-iterations` rounds
//! pass). Type refinement is part of it because exporters' shape arithmetic only folds once
//! shapes are known, and folding makes more shapes known.
//!
//! Patterns here are the op-pair simplifications that are always profitable: they never add
//! work. Folding constants is the ops' own business (their `fold` hooks); this pass only drives.

use crate::rewrite::{is_trivially_dead, refine_result_types, sync_function_signatures, try_fold};
use crate::{Diagnostic, Pass};
use smelt_compiler::attributes::Attribute;
use smelt_compiler::ir::{Module, OpId, ValueId};
use smelt_compiler::names;
use std::collections::HashSet;

pub struct Canonicalize {
    pub max_iterations: usize,
    /// Only fold hooks and dead-op erasure (the `fold` pass), no patterns.
    pub fold_only: bool,
}

impl Default for Canonicalize {
    fn default() -> Self {
        Canonicalize { max_iterations: 10, fold_only: false }
    }
}

/// A rewrite of one op; returns whether it changed the IR.
type Pattern = fn(&mut Module, OpId) -> bool;

fn patterns_for(name: &str) -> &'static [Pattern] {
    match name {
        names::TRANSPOSE => &[compose_transposes],
        names::RESHAPE | names::FLATTEN | names::SQUEEZE | names::UNSQUEEZE => &[collapse_reshapes],
        names::REDUCE_MEAN => &[spatial_mean_to_global_pool],
        names::DEQUANTIZE_LINEAR => &[quantize_round_trip_in_float],
        _ => &[],
    }
}

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        if self.fold_only {
            "fold"
        } else {
            "canonicalize"
        }
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        for _ in 0..self.max_iterations.max(1) {
            if !self.round(m)? {
                break;
            }
        }
        sync_function_signatures(m);
        Ok(())
    }
}

impl Canonicalize {
    /// One sweep over a worklist seeded with every op; returns whether anything changed.
    fn round(&self, m: &mut Module) -> Result<bool, Diagnostic> {
        let mut worklist: Vec<OpId> = m.walk_pre_order(m.root());
        worklist.reverse(); // pop() then visits in program order: producers fold first.
        let mut queued: HashSet<OpId> = worklist.iter().copied().collect();
        let mut changed = false;
        while let Some(op) = worklist.pop() {
            queued.remove(&op);
            if !m.is_live(op) {
                continue;
            }
            if is_trivially_dead(m, op) {
                let producers: Vec<OpId> = m.op(op).operands().iter().filter_map(|v| m.defining_op(*v)).collect();
                m.erase_op(op);
                changed = true;
                for p in producers {
                    if queued.insert(p) {
                        worklist.push(p);
                    }
                }
                continue;
            }
            let producers: Vec<OpId> = m.op(op).operands().iter().filter_map(|v| m.defining_op(*v)).collect();
            if let Some(values) = try_fold(m, op) {
                changed = true;
                // The folded op's producers may have lost their last user.
                for p in producers {
                    if m.is_live(p) && queued.insert(p) {
                        worklist.push(p);
                    }
                }
                for v in values {
                    for u in m.value(v).uses().to_vec() {
                        if queued.insert(u.user) {
                            worklist.push(u.user);
                        }
                    }
                    if let Some(d) = m.defining_op(v) {
                        if queued.insert(d) {
                            worklist.push(d);
                        }
                    }
                }
                continue;
            }
            if self.fold_only {
                continue;
            }
            if refine_result_types(m, op)? {
                changed = true;
                for user in m.users(op) {
                    if queued.insert(user) {
                        worklist.push(user);
                    }
                }
                if queued.insert(op) {
                    worklist.push(op); // a more precise type may let it fold now
                }
                continue;
            }
            for pattern in patterns_for(m.op(op).name()) {
                if pattern(m, op) {
                    changed = true;
                    if m.is_live(op) && queued.insert(op) {
                        worklist.push(op);
                    }
                    break;
                }
            }
        }
        Ok(changed)
    }
}

/// `transpose(transpose(x, p), q)` -> `transpose(x, p∘q)`.
fn compose_transposes(m: &mut Module, op: OpId) -> bool {
    let input = m.op(op).operands()[0];
    let Some(inner) = m.defining_op(input).filter(|i| m.op(*i).name() == names::TRANSPOSE) else { return false };
    let rank = match m.value_type(input).as_tensor().and_then(|t| t.rank()) {
        Some(r) => r,
        None => return false,
    };
    let perm_of = |o: OpId| -> Vec<i64> {
        m.op(o)
            .attr("perm")
            .and_then(Attribute::as_i64_array)
            .map_or_else(|| (0..rank as i64).rev().collect(), <[i64]>::to_vec)
    };
    let (p, q) = (perm_of(inner), perm_of(op));
    let composed: Vec<i64> = q.iter().map(|&i| p[i as usize]).collect();
    let source = m.op(inner).operands()[0];
    m.set_operand(op, 0, source);
    m.op_mut(op).attributes.insert("perm".into(), Attribute::I64Array(composed));
    true
}

/// A shape-only op fed by another shape-only op reads the original input instead: only the final
/// shape matters. Reshape keeps its target operand; the others become a reshape to their result
/// shape only when that is static, so the rewrite never loses information.
fn collapse_reshapes(m: &mut Module, op: OpId) -> bool {
    let input = m.op(op).operands()[0];
    let Some(inner) = m.defining_op(input) else { return false };
    let shape_only = [names::RESHAPE, names::FLATTEN, names::SQUEEZE, names::UNSQUEEZE];
    if !shape_only.contains(&m.op(inner).name()) {
        return false;
    }
    let source = m.op(inner).operands()[0];
    match m.op(op).name() {
        // reshape's result is fully determined by its target operand.
        names::RESHAPE => {
            let target_has_copy = smelt_compiler::dialect::OpView::new(m, op)
                .const_ints(m.op(op).operands()[1])
                .is_none_or(|t| t.contains(&0));
            if target_has_copy {
                return false; // `0` copies input extents, which the inner op changed.
            }
            m.set_operand(op, 0, source);
            true
        }
        _ => false,
    }
}

/// `reduce_mean(x, axes = [2, 3], keepdims)` on an NCHW tensor is `global_avg_pool(x)`: the
/// form exporters give `AdaptiveAvgPool2d(1)`, turned into the op fusion and kernels know.
fn spatial_mean_to_global_pool(m: &mut Module, op: OpId) -> bool {
    let view = smelt_compiler::dialect::OpView::new(m, op);
    let x = m.op(op).operands()[0];
    let Some(4) = m.value_type(x).as_tensor().and_then(|t| t.rank()) else { return false };
    let Some(axes) = view.operand("axes").and_then(|a| view.const_ints(a)) else { return false };
    let mut axes: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + 4 } else { a }).collect();
    axes.sort_unstable();
    if axes != [2, 3] || !view.bool("keepdims") {
        return false;
    }
    let loc = m.op(op).loc.clone();
    let ty = m.value_type(m.op(op).result()).clone();
    let pool = m.create_op(smelt_compiler::OpSpec::new(names::GLOBAL_AVG_POOL).operands([x]).results([ty]).loc(loc));
    m.insert_op_before(op, pool);
    let v = m.op(pool).result();
    m.replace_op(op, &[v]);
    true
}

/// `dequantize(quantize(x, s, z), s, z)` with one scale and zero point is
/// `clip(round(x / s), qmin - z, qmax - z) * s` in x's float type: elementwise ops that fuse
/// into the kernel producing `x`, where the integer round trip would be two conversions
/// through memory. (The QDQ form marks where an int8 engine rounds; the values are the same.)
fn quantize_round_trip_in_float(m: &mut Module, op: OpId) -> bool {
    use smelt_compiler::literal::Literal;
    let dq = m.op(op).operands().to_vec();
    let Some(q) = m.defining_op(dq[0]).filter(|&q| m.op(q).name() == names::QUANTIZE_LINEAR) else { return false };
    let qs = m.op(q).operands().to_vec();
    let view = smelt_compiler::dialect::OpView::new(m, op);
    let scalar = |v: ValueId| -> Option<f64> {
        let l = Literal::from_dense(view.constant_of(v)?, &m.resources)?;
        (l.len() == 1).then(|| l.to_f64()[0])
    };
    let (Some(s1), Some(s2), Some(z1), Some(z2)) = (scalar(qs[1]), scalar(dq[1]), scalar(qs[2]), scalar(dq[2])) else {
        return false;
    };
    let (x, integer) = (qs[0], m.value_type(dq[0]).element());
    let (Some(float), Some(integer)) = (m.value_type(x).as_tensor().map(|t| t.element), integer) else { return false };
    if s1 != s2 || z1 != z2 || Some(float) != m.value_type(m.op(op).result()).element() {
        return false;
    }
    let zero = z1;
    let (lo, hi) = (integer.lowest(), integer.highest());
    let ty = m.value_type(x).clone();
    let loc = m.op(op).loc.clone();
    let bound = |m: &mut Module, v: f64| {
        let d = smelt_compiler::attributes::DenseElements::from_f64(smelt_compiler::TensorType::of(&[], float), &[v]);
        crate::rewrite::materialize_constant(m, d, op)
    };
    let (lo, hi) = (bound(m, lo - zero), bound(m, hi - zero));
    let chain = |m: &mut Module, name: &str, operands: Vec<ValueId>| {
        let new =
            m.create_op(smelt_compiler::OpSpec::new(name).operands(operands).results([ty.clone()]).loc(loc.clone()));
        m.insert_op_before(op, new);
        m.op(new).result()
    };
    let scaled = chain(m, names::DIV, vec![x, qs[1]]);
    let rounded = chain(m, names::ROUND, vec![scaled]);
    let clipped = chain(m, names::CLIP, vec![rounded, lo, hi]);
    let y = chain(m, names::MUL, vec![clipped, dq[1]]);
    m.replace_op(op, &[y]);
    true
}
