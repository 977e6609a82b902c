//! DAG-aware extraction: choose one node per needed e-class so that the program, with every
//! shared class computed once, costs least.
//!
//! The greedy pass is extraction-gym's `faster-greedy-dag`: a class's cost is the sum over the
//! *set* of classes its best node transitively needs, so a shared input is counted once rather
//! than once per path (a tree extractor's overcount). Greedy choices are made class by class,
//! and a kernel that fuses a value some other consumer also needs would compute it twice; a
//! local search then revisits each chosen kernel against the class's other nodes with the
//! whole program's cost, and keeps changes that lower it. A substitution that merges products
//! pays only when all its slices are used at once, which no class-by-class choice sees: each
//! merged class is also tried as one move (every class holding a slice of it switches to the
//! slice), kept when the whole program's cost falls. Ties break by node order, so the result is
//! deterministic.

use super::lang::{EGraph, Node};
use egg::{Id, Language};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeMap;

/// The chosen node for every class the roots need.
#[derive(Clone, Debug)]
pub struct Extraction {
    pub choice: BTreeMap<Id, Node>,
    /// Seconds, each needed class counted once.
    pub cost: f64,
}

#[derive(Clone)]
struct CostSet {
    /// Needed classes (the class itself included) and their own node's cost.
    costs: HashMap<Id, f64>,
    total: f64,
    node: Node,
}

/// `node_cost` is the cost of computing a node from its children's values (infinite when the
/// node cannot be built).
pub fn greedy_dag(eg: &EGraph, roots: &[Id], node_cost: &mut dyn FnMut(&Node) -> f64) -> Extraction {
    let mut classes: Vec<Id> = eg.classes().map(|c| c.id).collect();
    classes.sort();
    let mut own_cost: HashMap<Node, f64> = HashMap::default();
    let mut best: HashMap<Id, CostSet> = HashMap::default();
    // A node is re-priced only when one of its children's best changed since it was last
    // priced (versions count updates).
    let mut version: HashMap<Id, u64> = HashMap::default();
    let mut priced_at: HashMap<(Id, usize), u64> = HashMap::default();
    let mut clock = 0u64;
    loop {
        let mut changed = false;
        for &class in &classes {
            for (index, node) in eg[class].nodes.iter().enumerate() {
                let children: Vec<Id> = node.children().iter().map(|&c| eg.find(c)).collect();
                if children.iter().any(|c| !best.contains_key(c)) || children.contains(&class) {
                    continue;
                }
                let newest = children.iter().map(|c| version[c]).max().unwrap_or(0);
                if priced_at.get(&(class, index)).is_some_and(|&at| at >= newest) {
                    continue;
                }
                priced_at.insert((class, index), clock);
                let cost = *own_cost.entry(node.clone()).or_insert_with(|| node_cost(node));
                if !cost.is_finite() {
                    continue;
                }
                // Start from the largest child set, then add the others' entries.
                let largest = children.iter().max_by_key(|c| best[c].costs.len());
                let mut costs = largest.map(|c| best[c].costs.clone()).unwrap_or_default();
                for c in &children {
                    if Some(c) != largest {
                        for (&k, &v) in &best[c].costs {
                            costs.insert(k, v);
                        }
                    }
                }
                if costs.contains_key(&class) {
                    continue; // the node needs its own class: a cycle
                }
                // Leaves cannot close a cycle; leaving them out keeps the sets small.
                if !node.is_leaf() {
                    costs.insert(class, cost);
                }
                let total: f64 = costs.values().sum();
                let better = best.get(&class).is_none_or(|b| total < b.total - 1e-15 * b.total.abs());
                if better {
                    best.insert(class, CostSet { costs, total, node: node.clone() });
                    clock += 1;
                    version.insert(class, clock);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut choice: BTreeMap<Id, Node> = best.iter().map(|(&c, s)| (c, s.node.clone())).collect();
    let roots: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    use_merged(eg, &roots, &mut choice, &own_cost);
    improve(eg, &roots, &mut choice, &own_cost, node_cost);
    let needed = needed(eg, &roots, &choice).expect("greedy choices are acyclic");
    choice.retain(|c, _| needed.contains(c));
    let cost = total(eg, &roots, &choice, &own_cost).unwrap_or(f64::INFINITY);
    Extraction { choice, cost }
}

/// The classes reachable from the roots through the chosen nodes; `None` on a cycle.
fn needed(eg: &EGraph, roots: &[Id], choice: &BTreeMap<Id, Node>) -> Option<HashSet<Id>> {
    let mut done = HashSet::default();
    let mut on_path = HashSet::default();
    fn visit(
        eg: &EGraph,
        c: Id,
        choice: &BTreeMap<Id, Node>,
        done: &mut HashSet<Id>,
        on_path: &mut HashSet<Id>,
    ) -> Option<()> {
        if done.contains(&c) {
            return Some(());
        }
        if !on_path.insert(c) {
            return None;
        }
        for &child in choice.get(&c)?.children() {
            visit(eg, eg.find(child), choice, done, on_path)?;
        }
        on_path.remove(&c);
        done.insert(c);
        Some(())
    }
    for &r in roots {
        visit(eg, r, choice, &mut done, &mut on_path)?;
    }
    Some(done)
}

fn total(eg: &EGraph, roots: &[Id], choice: &BTreeMap<Id, Node>, own: &HashMap<Node, f64>) -> Option<f64> {
    let needed = needed(eg, roots, choice)?;
    let mut classes: Vec<&Id> = needed.iter().collect();
    classes.sort();
    Some(classes.into_iter().map(|c| own.get(&choice[c]).copied().unwrap_or(f64::INFINITY)).sum())
}

/// Tries each merged class of a substitution as one move: every needed class holding a slice
/// of it, or of an elementwise op applied to it (the products' epilogue moved before their
/// slices), switches to that slice.
fn use_merged(eg: &EGraph, roots: &[Id], choice: &mut BTreeMap<Id, Node>, own: &HashMap<Node, f64>) {
    let Some(mut current) = total(eg, roots, choice, own) else { return };
    let mut merged: Vec<Id> = eg.analysis.substituted.iter().map(|&(c, _)| eg.find(c)).collect();
    merged.sort();
    merged.dedup();
    for z in merged {
        if !choice.contains_key(&z) {
            continue;
        }
        let Some(needed_now) = needed(eg, roots, choice) else { return };
        let sources = sliced_forms(eg, z);
        let mut readers: Vec<(Id, Node)> = needed_now
            .iter()
            .filter_map(|&c| {
                let node = eg[c].nodes.iter().find(|n| slices_of(eg, n, &sources))?;
                let ready = node.children().iter().all(|&k| choice.contains_key(&eg.find(k)));
                (ready && own.contains_key(node)).then(|| (c, node.clone()))
            })
            .collect();
        readers.sort();
        if readers.len() < 2 {
            continue;
        }
        let previous: Vec<(Id, Node)> =
            readers.iter().map(|(c, n)| (*c, choice.insert(*c, n.clone()).expect("chosen"))).collect();
        match total(eg, roots, choice, own) {
            Some(t) if t < current - 1e-12 * current.abs() => current = t,
            _ => {
                for (c, n) in previous {
                    choice.insert(c, n);
                }
            }
        }
    }
}

/// The classes a merged product `z` is sliced from: `z`, and elementwise ops over it.
pub(super) fn sliced_forms(eg: &EGraph, z: Id) -> HashSet<Id> {
    let mut sources: HashSet<Id> = HashSet::default();
    sources.insert(z);
    for parent in eg[z].parents() {
        let parent = eg.find(parent);
        let elementwise = |n: &Node| {
            n.op_name().is_some_and(|o| super::kernels::role(o) == super::kernels::Role::Elementwise)
                && n.operands().iter().any(|&k| eg.find(k) == z)
        };
        if eg[parent].nodes.iter().any(elementwise) {
            sources.insert(parent);
        }
    }
    sources
}

/// Whether `node` slices one of `sources`.
pub(super) fn slices_of(eg: &EGraph, node: &Node, sources: &HashSet<Id>) -> bool {
    node.op_name() == Some(smelt_compiler::names::SLICE)
        && node.operands().first().is_some_and(|&k| sources.contains(&eg.find(k)))
}

/// Revisits each needed class whose choice is a kernel: tries every other node of the class
/// and keeps the one with the lowest whole-program cost.
fn improve(
    eg: &EGraph,
    roots: &[Id],
    choice: &mut BTreeMap<Id, Node>,
    own: &HashMap<Node, f64>,
    node_cost: &mut dyn FnMut(&Node) -> f64,
) {
    let mut own = own.clone();
    let Some(mut current) = total(eg, roots, choice, &own) else { return };
    for _round in 0..4 {
        let mut improved = false;
        let Some(needed_now) = needed(eg, roots, choice) else { return };
        // Only a kernel that computes, inside, a value the program also needs outside can be
        // improved on: it computes that value twice.
        let mut kernels: Vec<Id> = needed_now
            .iter()
            .copied()
            .filter(|c| match &choice[c] {
                Node::Kernel(t, inputs) => {
                    let inputs: Vec<Id> = inputs.iter().map(|&i| eg.find(i)).collect();
                    let inside = super::kernels::absorbed(eg, &eg.analysis.templates[*t as usize], &inputs);
                    inside.iter().rev().skip(1).any(|i| needed_now.contains(&eg.find(*i)))
                }
                _ => false,
            })
            .collect();
        kernels.sort();
        for class in kernels {
            let original = choice[&class].clone();
            for node in &eg[class].nodes {
                if *node == original || node.children().iter().any(|c| !choice.contains_key(&eg.find(*c))) {
                    continue;
                }
                let cost = *own.entry(node.clone()).or_insert_with(|| node_cost(node));
                if !cost.is_finite() {
                    continue;
                }
                let previous = choice.insert(class, node.clone()).expect("class was chosen");
                match total(eg, roots, choice, &own) {
                    Some(t) if t < current - 1e-12 * current.abs() => {
                        current = t;
                        improved = true;
                    }
                    _ => {
                        choice.insert(class, previous);
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// The cost of the choices a tree extractor makes (each class's cheapest node, its children
/// counted once per path), counted as a DAG: the baseline the greedy DAG extractor is measured
/// against. Tree costs settle by a worklist: a class is re-priced only when a child's cost
/// fell, so a long chain takes one visit a class (egg's `Extractor` sweeps every class until
/// nothing changes, quadratic in a chain's length).
pub fn tree_choice_cost(eg: &EGraph, roots: &[Id], node_cost: &mut dyn FnMut(&Node) -> f64) -> f64 {
    let mut classes: Vec<Id> = eg.classes().map(|c| c.id).collect();
    classes.sort();
    let mut own: HashMap<Node, f64> = HashMap::default();
    let mut parents: HashMap<Id, Vec<Id>> = HashMap::default();
    for &class in &classes {
        for node in &eg[class].nodes {
            own.entry(node.clone()).or_insert_with(|| node_cost(node));
            for &child in node.children() {
                parents.entry(eg.find(child)).or_default().push(class);
            }
        }
    }
    let mut best: HashMap<Id, (f64, usize)> = HashMap::default();
    let mut queued: HashSet<Id> = classes.iter().copied().collect();
    let mut queue: std::collections::VecDeque<Id> = classes.iter().copied().collect();
    while let Some(class) = queue.pop_front() {
        queued.remove(&class);
        let priced = eg[class].nodes.iter().enumerate().map(|(i, node)| {
            let children = node.children().iter().map(|&c| best.get(&eg.find(c)).map_or(f64::INFINITY, |b| b.0));
            (children.fold(own[node], |acc, c| acc + c), i)
        });
        let Some(cheapest) = priced.min_by(|a, b| a.0.total_cmp(&b.0)) else { continue };
        if cheapest.0.is_finite() && best.get(&class).is_none_or(|b| cheapest.0 < b.0) {
            best.insert(class, cheapest);
            for &parent in parents.get(&class).into_iter().flatten() {
                if queued.insert(parent) {
                    queue.push_back(parent);
                }
            }
        }
    }
    let choice: BTreeMap<Id, Node> = best.iter().map(|(&c, &(_, i))| (c, eg[c].nodes[i].clone())).collect();
    let roots: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    total(eg, &roots, &choice, &own).unwrap_or(f64::INFINITY)
}
