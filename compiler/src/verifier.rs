//! The verifier: structural rules every pass may assume, checked after parsing, after import and
//! (with `--verify-each`) after every pass.
//!
//! Per operation: registered slot counts, required attributes of the right kind, no unknown
//! inherent attributes (discardable ones carry a dialect prefix, `smelt.note`), region counts,
//! terminators last, operands defined before use and visible (isolated regions see only their
//! own arguments), declared result types compatible with the inferred ones, then the op's own
//! verify hook. All errors are collected, not just the first.

use crate::diagnostics::Diagnostic;
use crate::dialect::{infer, OpDef, OpView};
use crate::ir::{Module, OpId, ValueId};
use std::collections::HashSet;

pub fn verify(module: &Module) -> Result<(), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut visible = vec![HashSet::new()];
    verify_op(module, module.root(), &mut visible, &mut errors);
    // Symbols are unique in the module: a call or a run by name would otherwise pick one.
    let mut named = std::collections::HashMap::new();
    for f in module.functions() {
        let op = module.op(f);
        let Some(name) = op.attr("sym_name").and_then(|a| a.as_str()) else { continue };
        if let Some(first) = named.insert(name.to_string(), op.loc.clone()) {
            let message = format!("'func.func' op redefines symbol '@{name}'");
            errors.push(Diagnostic::error(op.loc.clone(), message).with_note(first, "first defined here"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn verify_op(m: &Module, id: OpId, visible: &mut Vec<HashSet<ValueId>>, errors: &mut Vec<Diagnostic>) {
    let op = m.op(id);
    let def = op.def;
    let error = |msg: String| Diagnostic::error(op.loc.clone(), format!("'{}' op {msg}", def.name));
    let before = errors.len();

    for &v in op.operands() {
        if !visible.iter().rev().any(|scope| scope.contains(&v)) {
            errors.push(error("uses a value that is not defined before it in scope".into()));
            break;
        }
    }
    if OpDef::assign_slots(def.operands, op.operands().len()).is_none() {
        errors.push(error(format!("expects {} operands, got {}", describe_slots(def.operands), op.operands().len())));
    }
    if OpDef::assign_slots(def.results, op.results().len()).is_none() {
        errors.push(error(format!("expects {} results, got {}", describe_slots(def.results), op.results().len())));
    }
    if op.regions().len() != def.regions {
        errors.push(error(format!("expects {} regions, got {}", def.regions, op.regions().len())));
    }
    for a in def.attributes {
        match op.attr(a.name) {
            None if a.required => errors.push(error(format!("requires attribute '{}'", a.name))),
            Some(v) if !a.kind.accepts(v) => errors.push(error(format!(
                "attribute '{}' must be {}, got {}",
                a.name,
                a.kind.describe(),
                v.kind_name()
            ))),
            _ => {}
        }
    }
    for name in op.attributes.keys() {
        if def.attr_def(name).is_none() && !name.contains('.') {
            errors.push(error(format!("has unknown attribute '{name}'")));
        }
    }
    if def.traits.terminator
        && m.block_terminator(op.parent_block().unwrap_or(crate::ir::BlockId(u32::MAX))).is_some_and(|t| t != id)
    {
        errors.push(error("must be the last operation in its block".into()));
    }

    // Regions: isolated ones start a fresh scope.
    for &region in op.regions() {
        if def.traits.isolated_from_above {
            visible.push(HashSet::new());
        } else {
            visible.push(visible.last().cloned().unwrap_or_default());
        }
        for &block in m.region(region).blocks() {
            let scope = visible.len() - 1;
            visible[scope].extend(m.block(block).args().iter().copied());
            for inner in m.block_ops(block) {
                verify_op(m, inner, visible, errors);
                visible[scope].extend(m.op(inner).results().iter().copied());
            }
        }
        visible.pop();
    }

    // Types are checked only when the structure is sound: inference assumes it.
    if errors.len() == before {
        let view = OpView::new(m, id);
        if let Some(infer_fn) = def.infer {
            match infer_fn(&view) {
                Err(e) => errors.push(error(e)),
                Ok(types) if types.len() == op.results().len() => {
                    for (i, (r, t)) in op.results().iter().zip(&types).enumerate() {
                        let declared = m.value_type(*r);
                        if !infer::compatible(declared, t) {
                            errors
                                .push(error(format!("result #{i} is declared {declared} but the operands imply {t}")));
                        }
                    }
                }
                Ok(types) => errors.push(error(format!(
                    "produces {} results but {} are declared",
                    types.len(),
                    op.results().len()
                ))),
            }
        }
        if errors.len() == before {
            if let Some(verify_fn) = def.verify {
                if let Err(e) = verify_fn(&view) {
                    errors.push(error(e));
                }
            }
        }
    }
}

fn describe_slots(slots: &[crate::dialect::SlotDef]) -> String {
    use crate::dialect::Arity;
    let fixed = slots.iter().filter(|s| s.arity == Arity::One).count();
    let optional = slots.iter().filter(|s| s.arity == Arity::Optional).count();
    if slots.iter().any(|s| s.arity == Arity::Variadic) {
        format!("at least {fixed}")
    } else if optional > 0 {
        format!("{fixed} to {}", fixed + optional)
    } else {
        format!("{fixed}")
    }
}
