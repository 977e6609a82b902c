//! A function's inputs and outputs as callers see them: their names (ONNX's, kept by the
//! importer as `input_names` / `output_names`, onnx-mlir's convention) and the check that
//! given tensors fit the declared types.

use crate::ir::{Module, OpId};
use crate::literal::Literal;
use crate::types::{ElementType, TensorType, Type};
use crate::Attribute;

/// `@main`, or the only function: what runners run.
pub fn main_function(m: &Module) -> Result<OpId, String> {
    let funcs = m.functions();
    funcs
        .iter()
        .copied()
        .find(|f| m.op(*f).attr("sym_name").and_then(|a| a.as_str()) == Some("main"))
        .or_else(|| (funcs.len() == 1).then(|| funcs[0]))
        .ok_or_else(|| "the module has no @main function".to_string())
}

/// The name of each of `func`'s inputs (`key` = `input_names`) or outputs (`output_names`):
/// the recorded one, else `#i`.
fn names(m: &Module, func: OpId, key: &str, count: usize) -> Vec<String> {
    let recorded = match m.op(func).attr(key) {
        Some(Attribute::Array(items)) if items.len() == count => {
            items.iter().map(|a| if let Attribute::String(s) = a { s.clone() } else { String::new() }).collect()
        }
        _ => vec![String::new(); count],
    };
    recorded.into_iter().enumerate().map(|(i, n)| if n.is_empty() { format!("#{i}") } else { n }).collect()
}

/// The names of `func`'s inputs, in order (`#i` where the module records none).
pub fn input_names(m: &Module, func: OpId) -> Vec<String> {
    let count = m.block(m.body_of(func)).args().len();
    names(m, func, "input_names", count)
}

/// The names of `func`'s outputs, in order (`#i` where the module records none).
pub fn output_names(m: &Module, func: OpId) -> Vec<String> {
    let count = m.block_terminator(m.body_of(func)).map_or(0, |t| m.op(t).operands().len());
    names(m, func, "output_names", count)
}

/// The named symbolic dimensions of each of `func`'s inputs, as (axis, name) pairs (from the
/// importer's `input_dim_params`, onnx-mlir's "0:N,2:seq" form; none where it records none).
pub fn input_dim_params(m: &Module, func: OpId) -> Vec<Vec<(usize, String)>> {
    let count = m.block(m.body_of(func)).args().len();
    dim_params(m, func, "input_dim_params", count)
}

/// [`input_dim_params`] for `func`'s outputs (`output_dim_params`).
pub fn output_dim_params(m: &Module, func: OpId) -> Vec<Vec<(usize, String)>> {
    let count = m.block_terminator(m.body_of(func)).map_or(0, |t| m.op(t).operands().len());
    dim_params(m, func, "output_dim_params", count)
}

fn dim_params(m: &Module, func: OpId, key: &str, count: usize) -> Vec<Vec<(usize, String)>> {
    let parse = |text: &str| -> Vec<(usize, String)> {
        text.split(',')
            .filter_map(|entry| {
                let (axis, name) = entry.split_once(':')?;
                Some((axis.trim().parse().ok()?, name.to_string()))
            })
            .collect()
    };
    match m.op(func).attr(key) {
        Some(Attribute::Array(items)) if items.len() == count => {
            items.iter().map(|a| if let Attribute::String(s) = a { parse(s) } else { Vec::new() }).collect()
        }
        _ => vec![Vec::new(); count],
    }
}

/// Checks `inputs` against `func`'s declared input types: their number, and for each its
/// element type, rank and every static dimension (a dynamic one takes any extent). The error
/// names the input and the dimension that disagrees.
pub fn check_inputs(m: &Module, func: OpId, inputs: &[Literal]) -> Result<(), String> {
    let args = m.block(m.body_of(func)).args().to_vec();
    let names = input_names(m, func);
    if args.len() != inputs.len() {
        return Err(format!("the model takes {} inputs ({}), {} given", args.len(), names.join(", "), inputs.len()));
    }
    for ((a, l), name) in args.iter().zip(inputs).zip(&names) {
        let Type::Tensor(t) = m.value_type(*a) else {
            return Err(format!("input '{name}' is not a tensor ({})", m.value_type(*a)));
        };
        check_input(name, t, l.element, &l.shape)?;
    }
    Ok(())
}

/// Checks one input tensor (`element`, `dims`) against its declared type `t`: element type,
/// rank, and every static dimension. The error names the input `name` and the dimension that
/// disagrees.
pub fn check_input(name: &str, t: &TensorType, element: ElementType, dims: &[u64]) -> Result<(), String> {
    let given = TensorType::of(dims, element);
    if t.element != element {
        return Err(format!("input '{name}' is {} in the model but the given tensor is {given}", t.element));
    }
    let Some(shape) = &t.shape else { return Ok(()) };
    if shape.len() != dims.len() {
        return Err(format!(
            "input '{name}' has rank {} in the model ({t}) but the given tensor has rank {} ({given})",
            shape.len(),
            dims.len()
        ));
    }
    for (axis, (d, &n)) in shape.iter().zip(dims).enumerate() {
        if let Some(k) = d.known().filter(|&k| k != n) {
            return Err(format!(
                "input '{name}' dimension {axis} is {k} in the model ({t}) but {n} in the given tensor ({given})"
            ));
        }
    }
    Ok(())
}
