//! Places launches in time: list scheduling in program order over the target's compute units,
//! on the graph of launches (`petgraph`): node `i` is launch `i`'s work, an edge runs from a
//! producer to each launch that reads what it wrote.
//!
//! A launch starts when the host has issued it, its producers have finished and the device's
//! per-kernel gap has passed, and — where kernels may overlap — when enough compute units are
//! free; otherwise after the previous launch ends.

/// When one launch runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot {
    pub start_s: f64,
    pub end_s: f64,
    /// Time between the launch being ready (producers done) and starting: launch overhead
    /// the device waited out.
    pub wait_s: f64,
}

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction::Incoming;

/// Launches in program order, each with (device seconds, units occupied); edges from
/// producers (earlier launches) to their consumers.
pub type LaunchGraph = DiGraph<(f64, u32), ()>;

pub fn schedule(launches: &LaunchGraph, units: u32, concurrent: bool, gap_s: f64, host_s: f64) -> Vec<Slot> {
    let work: Vec<(f64, u32)> = launches.node_weights().copied().collect();
    let mut slots: Vec<Slot> = Vec::with_capacity(work.len());
    let mut issued = 0.0;
    let mut previous_end: f64 = 0.0;
    for (i, &(seconds, need)) in work.iter().enumerate() {
        issued += host_s;
        let producers = launches.neighbors_directed(NodeIndex::new(i), Incoming);
        let mut ready = producers.map(|d| slots[d.index()].end_s).fold(0.0, f64::max);
        if !concurrent {
            ready = ready.max(previous_end);
        }
        let mut start = issued.max(ready + gap_s);
        if concurrent {
            let need = need.min(units);
            loop {
                let busy: u32 = slots
                    .iter()
                    .zip(&work)
                    .filter(|(s, _)| s.start_s <= start && start < s.end_s)
                    .map(|(_, w)| w.1.min(units))
                    .sum();
                if busy + need <= units {
                    break;
                }
                // Wait for the next running launch to finish.
                let next = slots.iter().map(|s| s.end_s).filter(|&e| e > start).fold(f64::INFINITY, f64::min);
                if !next.is_finite() {
                    break;
                }
                start = next;
            }
        }
        let end = start + seconds;
        slots.push(Slot { start_s: start, end_s: end, wait_s: (start - ready).max(0.0) });
        previous_end = previous_end.max(end);
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(work: &[(f64, u32)], deps: &[Vec<usize>]) -> LaunchGraph {
        let mut g = LaunchGraph::new();
        let nodes: Vec<NodeIndex> = work.iter().map(|&w| g.add_node(w)).collect();
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                g.add_edge(nodes[d], nodes[i], ());
            }
        }
        g
    }

    #[test]
    fn independent_kernels_overlap_only_where_allowed() {
        // Two independent half-chip kernels, then one that needs both.
        let work = [(1.0, 50), (1.0, 50), (1.0, 100)];
        let deps = vec![vec![], vec![], vec![0, 1]];
        let overlapped = schedule(&graph(&work, &deps), 100, true, 0.0, 0.0);
        assert_eq!(overlapped[1].start_s, 0.0);
        assert_eq!(overlapped[2].end_s, 2.0);
        let serial = schedule(&graph(&work, &deps), 100, false, 0.0, 0.0);
        assert_eq!(serial[2].end_s, 3.0);
    }

    #[test]
    fn units_bound_the_overlap_and_launches_cost_time() {
        let work = [(1.0, 80), (1.0, 80)];
        let s = schedule(&graph(&work, &[vec![], vec![]]), 100, true, 0.0, 0.0);
        assert_eq!(s[1].start_s, 1.0, "80 + 80 units do not fit on 100");
        // A host that issues slower than kernels run leaves the device waiting.
        let tiny = [(1e-6, 1); 10];
        let deps: Vec<Vec<usize>> = (0..10).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect();
        let s = schedule(&graph(&tiny, &deps), 100, true, 1e-6, 5e-6);
        assert!((s[9].end_s - 51e-6).abs() < 1e-12, "{}", s[9].end_s);
        assert!(s[9].wait_s > 3e-6);
    }
}
