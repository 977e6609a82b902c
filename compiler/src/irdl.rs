//! Generates an IRDL definition of the `smelt` dialect from the op registry, so that real MLIR
//! can load the dialect (`mlir-opt --irdl-file=...`) and check Smelt's printed IR against it.
//!
//! IRDL (MLIR 22) cannot express everything the registry says, and [`expressible`] names what is
//! left out:
//! - terminators: IRDL registers ops without traits, so no IRDL op can end a block
//!   (`smelt.yield`);
//! - heterogeneous variadic slots: an IRDL constraint variable binds to the first type it meets,
//!   so all values of a variadic group must have one type (`concat`, `split`, `kernel`);
//! - several optional slots: IRDL then requires an `operandSegmentSizes` attribute, which Smelt's
//!   ONNX-style trailing optionals do not need (`clip`, `slice`, `pad`, `dropout`).
//!
//! Those ops are verified by Smelt's own verifier; MLIR still parses and verifies them as
//! generic operations (see `tests/mlir_opt.rs`).

use crate::dialect::{all_ops, Arity, AttrKind, OpDef, SlotDef};
use std::fmt::Write;

/// Whether IRDL can describe `def` faithfully (see the module documentation).
pub fn expressible(def: &OpDef) -> bool {
    let simple = |slots: &[SlotDef]| {
        !slots.iter().any(|s| s.arity == Arity::Variadic)
            && slots.iter().filter(|s| s.arity == Arity::Optional).count() <= 1
    };
    !def.traits.terminator && simple(def.operands) && simple(def.results)
}

fn attr_constraint(kind: AttrKind) -> Option<&'static str> {
    match kind {
        AttrKind::Int => Some("#builtin.integer"),
        AttrKind::Float => Some("#builtin.float"),
        AttrKind::Bool => Some("#builtin.bool"),
        AttrKind::String => Some("#builtin.string"),
        AttrKind::I64Array => Some("#builtin.dense_array"),
        AttrKind::Type => Some("#builtin.type"),
        AttrKind::Symbol => Some("#builtin.symbol_ref"),
        AttrKind::StringArray => Some("#builtin.array"),
        // Inline dense elements and dense resources are different attribute classes.
        AttrKind::Dense => None,
    }
}

/// IRDL text for every expressible `smelt` op.
pub fn generate() -> String {
    let mut out = String::from("irdl.dialect @smelt {\n");
    for def in all_ops().filter(|d| d.dialect() == "smelt" && expressible(d)) {
        let _ = writeln!(out, "  irdl.operation @{} {{", &def.name["smelt.".len()..]);
        let mut next = 0;
        // One constraint variable per value: IRDL variables unify, so sharing one would force
        // equal types.
        let mut tensor_var = |out: &mut String| {
            let _ = writeln!(out, "    %r{next} = irdl.base \"!builtin.tensor\"");
            let _ = writeln!(out, "    %u{next} = irdl.base \"!builtin.unranked_tensor\"");
            let _ = writeln!(out, "    %{next} = irdl.any_of(%r{next}, %u{next})");
            next += 1;
            next - 1
        };
        for (keyword, slots) in [("operands", def.operands), ("results", def.results)] {
            if slots.is_empty() {
                continue;
            }
            let parts: Vec<String> = slots
                .iter()
                .map(|s| {
                    let v = tensor_var(&mut out);
                    let prefix = if s.arity == Arity::Optional { "optional " } else { "" };
                    format!("{}: {prefix}%{v}", s.name)
                })
                .collect();
            let _ = writeln!(out, "    irdl.{keyword}({})", parts.join(", "));
        }
        // IRDL attributes are all required; optional attributes are Smelt's verifier's job.
        let required: Vec<String> = def
            .attributes
            .iter()
            .filter(|a| a.required)
            .enumerate()
            .map(|(i, a)| {
                match attr_constraint(a.kind) {
                    Some(base) => {
                        let _ = writeln!(out, "    %a{i} = irdl.base \"{base}\"");
                    }
                    None => {
                        let _ = writeln!(out, "    %a{i} = irdl.any");
                    }
                }
                format!("\"{}\" = %a{i}", a.name)
            })
            .collect();
        if !required.is_empty() {
            let _ = writeln!(out, "    irdl.attributes {{{}}}", required.join(", "));
        }
        if def.regions > 0 {
            let regions: Vec<String> = (0..def.regions)
                .map(|i| {
                    let _ = writeln!(out, "    %g{i} = irdl.region");
                    format!("body{i}: %g{i}")
                })
                .collect();
            let _ = writeln!(out, "    irdl.regions({})", regions.join(", "));
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
