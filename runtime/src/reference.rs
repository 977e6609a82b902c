//! The reference interpreter: runs a function op by op with the reference semantics of
//! `smelt_compiler::dialect::eval` (f64 arithmetic), materializing every value. Slow and
//! obviously correct; the oracle for the JIT, fused kernels and rewrites.

use smelt_compiler::dialect::eval::evaluate;
use smelt_compiler::ir::{BlockId, Module, OpId, ValueId};
use smelt_compiler::literal::Literal;
use smelt_compiler::names;
use std::collections::HashMap;

/// Runs `@main` (or the only function) on `inputs`; returns what it returns.
pub fn run(m: &Module, inputs: &[Literal]) -> Result<Vec<Literal>, String> {
    run_function(m, smelt_compiler::signature::main_function(m)?, inputs)
}

/// Runs the function `func` on `inputs`.
pub fn run_function(m: &Module, func: OpId, inputs: &[Literal]) -> Result<Vec<Literal>, String> {
    let entry = m.body_of(func);
    smelt_compiler::signature::check_inputs(m, func, inputs)?;
    let args = m.block(entry).args();
    let mut env: HashMap<ValueId, Literal> = args.iter().copied().zip(inputs.iter().cloned()).collect();
    run_block(m, entry, &mut env)
}

/// Interprets a block; returns the operands of its terminator.
fn run_block(m: &Module, block: BlockId, env: &mut HashMap<ValueId, Literal>) -> Result<Vec<Literal>, String> {
    for op in m.block_ops(block) {
        let o = m.op(op);
        match o.name() {
            names::RETURN | names::YIELD => {
                return o
                    .operands()
                    .iter()
                    .map(|v| env.get(v).cloned().ok_or_else(|| "returns an undefined value".to_string()))
                    .collect();
            }
            names::KERNEL => {
                let outs = run_kernel(m, op, env)?;
                bind(m, op, outs, env)?;
            }
            _ => {
                let inputs: Vec<&Literal> = o
                    .operands()
                    .iter()
                    .map(|v| env.get(v).ok_or_else(|| format!("'{}' reads an undefined value", o.name())))
                    .collect::<Result<_, _>>()?;
                let outs = evaluate(m, op, &inputs).map_err(|e| format!("{} at {}: {e}", o.name(), o.loc))?;
                bind(m, op, outs, env)?;
            }
        }
    }
    Err("block has no terminator".into())
}

/// Runs a `smelt.kernel`'s body on the values its operands have in `env`.
pub fn run_kernel(m: &Module, op: OpId, env: &HashMap<ValueId, Literal>) -> Result<Vec<Literal>, String> {
    let body = m.body_of(op);
    let mut inner: HashMap<ValueId, Literal> = HashMap::new();
    for (arg, v) in m.block(body).args().iter().zip(m.op(op).operands()) {
        inner.insert(*arg, env.get(v).cloned().ok_or("kernel reads an undefined value")?);
    }
    run_block(m, body, &mut inner)
}

fn bind(m: &Module, op: OpId, outs: Vec<Literal>, env: &mut HashMap<ValueId, Literal>) -> Result<(), String> {
    let results = m.op(op).results();
    if outs.len() != results.len() {
        return Err(format!("'{}' produced {} values for {} results", m.op(op).name(), outs.len(), results.len()));
    }
    env.extend(results.iter().copied().zip(outs));
    Ok(())
}

/// Largest absolute and relative (to the largest expected magnitude) difference.
pub fn max_errors(actual: &Literal, expected: &Literal) -> (f64, f64) {
    let (a, e) = (actual.to_f64(), expected.to_f64());
    // A NaN where the other side has a number (an element never written, on a poisoned arena)
    // is an infinite error; equal values (infinities, NaN for NaN) none.
    let error = |x: &f64, y: &f64| match (x.is_nan(), y.is_nan()) {
        (true, true) => 0.0,
        (false, false) if x == y => 0.0,
        (false, false) => (x - y).abs(),
        _ => f64::INFINITY,
    };
    let abs = a.iter().zip(e.iter()).map(|(x, y)| error(x, y)).fold(0.0, f64::max);
    let scale = e.iter().map(|y| y.abs()).fold(0.0, f64::max);
    (abs, if scale == 0.0 { abs } else { abs / scale })
}
