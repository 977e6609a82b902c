//! Which movement ops attention would read in place, seen from the e-graph: the extractor's
//! side of [`smelt_compiler::views`], so a slice or transpose the executor never runs is not
//! priced as a copy.
//!
//! A class qualifies when it holds a movement op the executor can read as a strided view
//! (transpose, slice, select, or an aliasing view) and every reader of its value in the input
//! program is attention (queries, keys or values, not the mask) or another qualifying class.
//! Readers come from the input program (`ClassData::consumers`), as for kernel formation.

use super::lang::{EGraph, Node};
use super::rules::tensor;
use egg::Id;
use rustc_hash::FxHashSet as HashSet;
use smelt_compiler::{names, ElementType};

/// Whether `node` is a movement op of the kinds attention reads in place (a gather only as a
/// select: one index, a 0-d tensor).
pub(super) fn is_view_movement(eg: &EGraph, node: &Node) -> bool {
    let Node::Op(key, _) = node else { return false };
    let select = || node.operands().get(1).and_then(|&i| tensor(eg, i)).is_some_and(|t| t.rank() == Some(0));
    key.results == 1
        && (matches!(key.name, names::TRANSPOSE | names::SLICE)
            || key.name == names::GATHER && select()
            || smelt_compiler::dialect::lookup(key.name).is_some_and(|d| d.is_view()))
}

/// The classes whose movement nodes attention reads in place.
pub(super) fn read_in_place(eg: &EGraph) -> HashSet<Id> {
    let f32 = |c: Id| tensor(eg, c).is_some_and(|t| t.element == ElementType::F32);
    let mut set: HashSet<Id> =
        eg.classes().filter(|c| f32(c.id) && c.nodes.iter().any(|n| is_view_movement(eg, n))).map(|c| c.id).collect();
    loop {
        let mut dropped: Vec<Id> = set.iter().copied().filter(|&c| !read_only_as_view(eg, c, &set)).collect();
        if dropped.is_empty() {
            return set;
        }
        dropped.sort();
        for c in dropped {
            set.remove(&c);
        }
    }
}

/// Readers of an attention's decomposed form (the scores product, scale, mask, softmax) the
/// recognized attention leaves behind, followed this many classes deep.
const DECOMPOSED_DEPTH: usize = 6;

fn read_only_as_view(eg: &EGraph, c: Id, set: &HashSet<Id>) -> bool {
    let data = &eg[c].data;
    let readers: Vec<Id> = data.consumers.iter().map(|&k| eg.find(k)).collect();
    // Attention reading `c` as queries, keys or values (never as the mask), by class.
    let mut parents: Vec<Id> = eg[c].parents().map(|p| eg.find(p)).collect();
    parents.sort();
    parents.dedup();
    let attention: Vec<Id> = parents
        .into_iter()
        .filter(|&a| {
            tensor(eg, a).is_some_and(|t| t.element == ElementType::F32)
                && eg[a].nodes.iter().any(|n| {
                    let ops = n.operands();
                    let (qkv, rest) = ops.split_at(ops.len().min(3));
                    n.op_name() == Some(names::ATTENTION)
                        && qkv.iter().any(|&o| eg.find(o) == c)
                        && !rest.iter().any(|&o| eg.find(o) == c)
                })
        })
        .collect();
    let read_as_view = |k: Id| {
        set.contains(&k)
            && eg[k]
                .nodes
                .iter()
                .any(|n| is_view_movement(eg, n) && n.operands().first().is_some_and(|&o| eg.find(o) == c))
    };
    // A reader that is attention, or part of the decomposed form only attention reads.
    let read_by_attention =
        |k: Id| attention.iter().any(|&a| k == a || super::kernels::feeds_only(eg, k, a, DECOMPOSED_DEPTH));
    !readers.is_empty()
        && data.uses as usize == readers.len()
        && readers.iter().all(|&k| read_as_view(k) || read_by_attention(k))
}
