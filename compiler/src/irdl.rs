//! Generates an IRDL definition of the `smelt` dialect from the op registry, so real MLIR can
//! load the dialect (`mlir-opt --irdl-file=...`, or melior) and verify Smelt's printed IR.
//!
//! IRDL (MLIR 22) registers dynamic ops without traits, so no IRDL op can be a block terminator;
//! `smelt.yield` is therefore left out, and [`MLIR_TERMINATOR`] names the upstream structural
//! terminator the verification harness spells it as. Every other op, slot and attribute is
//! checked as printed.

use crate::dialect::{all_ops, Arity, AttrKind};
use std::fmt::Write;

/// The upstream op `smelt.yield` is spelled as when MLIR verifies printed Smelt IR: a terminator
/// that accepts any operands and any parent.
pub const MLIR_TERMINATOR: &str = "vector.yield";

fn attr_constraint(kind: AttrKind) -> &'static str {
    match kind {
        AttrKind::Int => "#builtin.integer",
        AttrKind::Float => "#builtin.float",
        AttrKind::Bool => "#builtin.bool",
        AttrKind::String => "#builtin.string",
        AttrKind::I64Array => "#builtin.dense_array",
        AttrKind::Type => "#builtin.type",
        AttrKind::Dense => "",
        AttrKind::Symbol => "#builtin.symbol_ref",
    }
}

pub fn generate() -> String {
    let mut out = String::from("irdl.dialect @smelt {\n");
    for def in all_ops().filter(|d| d.dialect() == "smelt" && !d.traits.terminator) {
        let short = &def.name["smelt.".len()..];
        let _ = writeln!(out, "  irdl.operation @{short} {{");
        let mut n = 0;
        let slots = |out: &mut String, keyword: &str, list: &[crate::dialect::SlotDef], n: &mut usize| {
            if list.is_empty() {
                return;
            }
            let mut parts = Vec::new();
            for s in list {
                let _ = writeln!(out, "    %{} = irdl.base \"!builtin.tensor\"", *n);
                let prefix = match s.arity {
                    Arity::One => "",
                    Arity::Optional => "optional ",
                    Arity::Variadic => "variadic ",
                };
                parts.push(format!("{}: {prefix}%{}", s.name, *n));
                *n += 1;
            }
            let _ = writeln!(out, "    irdl.{keyword}({})", parts.join(", "));
        };
        slots(&mut out, "operands", def.operands, &mut n);
        slots(&mut out, "results", def.results, &mut n);
        // IRDL attributes are all required; optional attributes are checked by Smelt alone.
        let required: Vec<_> = def.attributes.iter().filter(|a| a.required).collect();
        if !required.is_empty() {
            let mut parts = Vec::new();
            for a in required {
                let base = attr_constraint(a.kind);
                if base.is_empty() {
                    let _ = writeln!(out, "    %{n} = irdl.any");
                } else {
                    let _ = writeln!(out, "    %{n} = irdl.base \"{base}\"");
                }
                parts.push(format!("\"{}\" = %{n}", a.name));
                n += 1;
            }
            let _ = writeln!(out, "    irdl.attributes {{{}}}", parts.join(", "));
        }
        if def.regions > 0 {
            let names: Vec<String> = (0..def.regions)
                .map(|i| {
                    let _ = writeln!(out, "    %{} = irdl.region", n + i);
                    format!("body{i}: %{}", n + i)
                })
                .collect();
            let _ = writeln!(out, "    irdl.regions({})", names.join(", "));
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
