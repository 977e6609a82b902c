//! The dataflow graph of a function's executed ops, on `petgraph`: an edge from each op to
//! every op that reads one of its results. Characterization reads its stages and critical
//! path from it.

use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction::Incoming;
use smelt_compiler::ir::{Module, OpId};
use std::collections::HashMap;

pub struct OpGraph {
    /// Node `i` is `ops[i]` of [`OpGraph::new`].
    pub graph: DiGraph<OpId, ()>,
}

impl OpGraph {
    /// The graph of `ops` (in program order); operands defined outside `ops` (arguments,
    /// constants left out) add no edge.
    pub fn new(m: &Module, ops: &[OpId]) -> OpGraph {
        let mut graph = DiGraph::with_capacity(ops.len(), 2 * ops.len());
        let node: HashMap<OpId, NodeIndex> = ops.iter().map(|&op| (op, graph.add_node(op))).collect();
        for &op in ops {
            for &v in m.op(op).operands() {
                if let Some(&producer) = m.defining_op(v).and_then(|d| node.get(&d)) {
                    graph.update_edge(producer, node[&op], ());
                }
            }
        }
        OpGraph { graph }
    }

    /// Each op's stage, by position: 1 + the latest stage of its producers (ops whose inputs
    /// are all ready after the previous stages). The deepest stage is the critical path's
    /// length in ops.
    pub fn stages(&self) -> Vec<usize> {
        let g = &self.graph;
        // SSA values are defined before they are used, so program order is a fallback order.
        let order = toposort(g, None).unwrap_or_else(|_| g.node_indices().collect());
        let mut stage = vec![0; g.node_count()];
        for n in order {
            stage[n.index()] = 1 + g.neighbors_directed(n, Incoming).map(|p| stage[p.index()]).max().unwrap_or(0);
        }
        stage
    }
}
