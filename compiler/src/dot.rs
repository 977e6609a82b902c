//! Graphviz pictures of a function's op graph: one node per executed op (constants are folded
//! into their users' labels), edges labelled with tensor types, `smelt.kernel` bodies drawn as
//! clusters around their ops.

use crate::dialect::names;
use crate::ir::{Module, OpId, ValueId};
use std::collections::HashMap;
use std::fmt::Write;

/// Quotes for a Graphviz string; `\n` sequences in labels are line breaks on purpose.
fn escape(s: &str) -> String {
    s.replace('"', "\\\"")
}

struct Dot<'m> {
    m: &'m Module,
    out: String,
    ids: HashMap<OpId, String>,
    next_cluster: usize,
}

impl Dot<'_> {
    fn node_id(&mut self, op: OpId) -> String {
        let n = self.ids.len();
        self.ids.entry(op).or_insert_with(|| format!("op{n}")).clone()
    }

    fn op_node(&mut self, op: OpId, indent: &str) {
        let id = self.node_id(op);
        let o = self.m.op(op);
        let weights = o
            .operands()
            .iter()
            .filter(|v| self.m.defining_op(**v).is_some_and(|d| self.m.op(d).name() == names::CONSTANT))
            .count();
        let mut label = o.name().trim_start_matches("smelt.").to_string();
        if weights > 0 {
            let _ = write!(label, "\\n+{weights} const");
        }
        let shape = if o.name() == names::KERNEL { "box3d" } else { "box" };
        let _ = writeln!(self.out, "{indent}{id} [label=\"{}\", shape={shape}];", escape(&label));
    }

    fn block(&mut self, ops: &[OpId], indent: &str) {
        for &op in ops {
            match self.m.op(op).name() {
                names::CONSTANT | names::RETURN | names::YIELD => {}
                names::KERNEL => {
                    let c = self.next_cluster;
                    self.next_cluster += 1;
                    let pattern =
                        self.m.op(op).attr("pattern").and_then(|a| a.as_str()).unwrap_or("kernel").to_string();
                    let _ = writeln!(self.out, "{indent}subgraph cluster_{c} {{");
                    let _ = writeln!(self.out, "{indent}  label=\"{}\"; style=rounded; color=blue;", escape(&pattern));
                    let region = self.m.op(op).regions()[0];
                    let body: Vec<OpId> =
                        self.m.region(region).blocks().iter().flat_map(|b| self.m.block_ops(*b)).collect();
                    self.block(&body, &format!("{indent}  "));
                    let _ = writeln!(self.out, "{indent}}}");
                }
                _ => self.op_node(op, indent),
            }
        }
    }

    /// The drawn node that stands for `v`'s producer (inside a kernel, the producing body op).
    fn source(&self, v: ValueId) -> Option<String> {
        let def = self.m.defining_op(v)?;
        self.ids.get(&def).cloned()
    }
}

/// The op graph of `@main` (or the first function) in Graphviz syntax.
pub fn to_dot(m: &Module) -> String {
    let mut d = Dot { m, out: String::new(), ids: HashMap::new(), next_cluster: 0 };
    d.out.push_str("digraph smelt {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=8];\n");
    let Some(&func) = m.functions().first() else {
        d.out.push_str("}\n");
        return d.out;
    };
    let entry = m.body_of(func);
    for (i, _) in m.block(entry).args().iter().enumerate() {
        let _ = writeln!(d.out, "  input{i} [label=\"input {i}\", shape=ellipse];");
    }
    let ops: Vec<OpId> = m.block_ops(entry).collect();
    d.block(&ops, "  ");
    // Edges: every drawn op from the drawn producers of its operands; kernel inputs feed the
    // body ops that read the matching block arguments.
    let mut edges = String::new();
    for op in m.walk_pre_order(func) {
        let Some(to) = d.ids.get(&op).cloned() else { continue };
        for &v in m.op(op).operands() {
            let from = match m.value(v).def {
                crate::ir::ValueDef::BlockArg { block, index } if block == entry => Some(format!("input{index}")),
                crate::ir::ValueDef::BlockArg { block, index } => {
                    // A kernel argument: draw from whatever feeds the kernel's operand.
                    m.block_parent_op(block).and_then(|k| m.op(k).operands().get(index as usize).copied()).and_then(
                        |outer| match m.value(outer).def {
                            crate::ir::ValueDef::BlockArg { index, .. } => Some(format!("input{index}")),
                            _ => d.source(outer).or_else(|| kernel_yield_source(&d, m, outer)),
                        },
                    )
                }
                _ => d.source(v).or_else(|| kernel_yield_source(&d, m, v)),
            };
            if let Some(from) = from {
                let _ = writeln!(edges, "  {from} -> {to} [label=\"{}\"];", escape(&m.value_type(v).to_string()));
            }
        }
    }
    d.out.push_str(&edges);
    d.out.push_str("}\n");
    d.out
}

/// For a kernel result, the body op that produced the yielded value.
fn kernel_yield_source(d: &Dot, m: &Module, v: ValueId) -> Option<String> {
    let k = m.defining_op(v)?;
    if m.op(k).name() != names::KERNEL {
        return None;
    }
    let crate::ir::ValueDef::Result { index, .. } = m.value(v).def else { return None };
    let body = m.body_of(k);
    let y = m.block_terminator(body)?;
    let inner = *m.op(y).operands().get(index as usize)?;
    d.source(inner)
}
