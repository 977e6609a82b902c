//! `builtin.module`, `func.func` and `func.return`: the containers every program lives in.
//! Their printed form is MLIR's own custom syntax (`module {`, `func.func @main(...)`), the
//! form every MLIR user reads; the generic form parses too.

use super::*;
use crate::types::Type;

const ISOLATED: Traits = Traits { pure: false, commutative: false, terminator: false, isolated_from_above: true };

const TERMINATOR: Traits = Traits { pure: false, commutative: false, terminator: true, isolated_from_above: false };

/// The names of the builtin ops.
pub mod names {
    pub const MODULE: &str = "builtin.module";
    pub const FUNC: &str = "func.func";
    pub const RETURN: &str = "func.return";
}

pub static OPS: &[OpDef] = &[
    OpDef::new(names::MODULE, "a container of functions")
        .attrs(&[attr_opt("sym_name", AttrKind::Symbol)])
        .regions(1)
        .traits(ISOLATED)
        .infer(no_results),
    OpDef::new(names::FUNC, "a function: one block whose arguments are the inputs")
        .attrs(&[
            attr("sym_name", AttrKind::String),
            attr("function_type", AttrKind::Type),
            attr_opt("sym_visibility", AttrKind::String),
            attr_opt("input_names", AttrKind::StringArray),
            attr_opt("output_names", AttrKind::StringArray),
            attr_opt("input_dim_params", AttrKind::StringArray),
            attr_opt("output_dim_params", AttrKind::StringArray),
        ])
        .regions(1)
        .traits(ISOLATED)
        .infer(no_results)
        .verify(verify_func),
    OpDef::new(names::RETURN, "returns values from a function")
        .operands(&[many("operands")])
        .traits(TERMINATOR)
        .infer(no_results)
        .verify(verify_return),
];

fn no_results(_: &OpView) -> Result<Vec<Type>, String> {
    Ok(Vec::new())
}

/// The signature a `func.func` declares.
pub fn function_type(view: &OpView) -> Result<crate::types::FunctionType, String> {
    match view.attr("function_type") {
        Some(Attribute::Type(Type::Function(ft))) => Ok((**ft).clone()),
        _ => Err("`function_type` must be a function type".into()),
    }
}

fn verify_func(view: &OpView) -> Result<(), String> {
    let ft = function_type(view)?;
    let m = view.module;
    let region = m.op(view.id).regions()[0];
    let blocks = m.region(region).blocks();
    let [entry] = blocks else {
        return Err(format!("expects one block in its body, found {}", blocks.len()));
    };
    let arg_types: Vec<&Type> = m.block(*entry).args().iter().map(|a| m.value_type(*a)).collect();
    if arg_types.len() != ft.inputs.len() || arg_types.iter().zip(&ft.inputs).any(|(a, b)| *a != b) {
        return Err(format!(
            "entry block arguments ({}) do not match the signature inputs ({})",
            join(arg_types.iter().copied()),
            join(ft.inputs.iter())
        ));
    }
    let (inputs, results) = (ft.inputs.len(), ft.results.len());
    for (key, count) in [
        ("input_names", inputs),
        ("output_names", results),
        ("input_dim_params", inputs),
        ("output_dim_params", results),
    ] {
        if let Some(Attribute::Array(names)) = view.attr(key) {
            if names.len() != count {
                return Err(format!("`{key}` has {} entries for {count} values", names.len()));
            }
        }
    }
    match m.block_terminator(*entry) {
        Some(t) if m.op(t).name() == "func.return" => Ok(()),
        _ => Err("body must end with `func.return`".into()),
    }
}

fn verify_return(view: &OpView) -> Result<(), String> {
    let m = view.module;
    let Some(func) = m.parent_op(view.id).filter(|f| m.op(*f).name() == "func.func") else {
        return Err("must be directly inside a `func.func`".into());
    };
    let ft = function_type(&OpView::new(m, func))?;
    let types: Vec<&Type> = view.operands().iter().map(|v| m.value_type(*v)).collect();
    if types.len() != ft.results.len() || types.iter().zip(&ft.results).any(|(a, b)| *a != b) {
        return Err(format!(
            "returns ({}) but the function signature says ({})",
            join(types.iter().copied()),
            join(ft.results.iter())
        ));
    }
    Ok(())
}

fn join<'a>(types: impl Iterator<Item = &'a Type>) -> String {
    types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
}
