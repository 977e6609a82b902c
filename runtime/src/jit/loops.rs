//! Loop shapes every program kind uses.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// Lanes of the vector type the loops use.
pub const LANES: i64 = 4;

/// Loads and stores into buffers the executor sized: they cannot trap.
pub fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Emits `i = start; while i + step <= end { body(i); i += step }` and leaves the builder in
/// the block after the loop; returns `i` there (where a scalar tail starts).
pub fn counted(
    b: &mut FunctionBuilder,
    start: Value,
    end: Value,
    step: i64,
    mut body: impl FnMut(&mut FunctionBuilder, Value),
) -> Value {
    let i = b.declare_var(types::I64);
    b.def_var(i, start);
    let head = b.create_block();
    let block = b.create_block();
    let exit = b.create_block();
    b.ins().jump(head, &[]);
    b.switch_to_block(head);
    let iv = b.use_var(i);
    let next = b.ins().iadd_imm_s(iv, step);
    let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, next, end);
    b.ins().brif(fits, block, &[], exit, &[]);
    b.seal_block(block);
    b.seal_block(exit);
    b.switch_to_block(block);
    let iv = b.use_var(i);
    body(b, iv);
    let next = b.ins().iadd_imm_s(iv, step);
    b.def_var(i, next);
    b.ins().jump(head, &[]);
    b.seal_block(head);
    b.switch_to_block(exit);
    b.use_var(i)
}

/// The `F32` `v` as the parameter of a fresh block the builder continues in. Cranelift's
/// elaboration places a pure value at its uses and hoists it out of a loop only to the loop
/// depth of its arguments' definitions; a value computed from a finished loop's state (a
/// fold's total: that loop header's parameters) sits at that loop's depth, so it was
/// recomputed on every iteration of the loops after it (softmax's cross-lane maximum inside
/// its exponential loop). A block parameter outside those loops pins it. The two edges pass
/// bitwise-equal values (`|v|` only when the sign bit is clear), which keeps the optimizer
/// from folding the parameter back into `v`.
pub fn pin(b: &mut FunctionBuilder, v: Value) -> Value {
    let next = b.create_block();
    let pinned = b.append_block_param(next, types::F32);
    let bits = b.ins().bitcast(types::I32, MemFlagsData::new(), v);
    let sign_clear = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, bits, 0);
    let magnitude = b.ins().fabs(v);
    b.ins().brif(sign_clear, next, &[magnitude.into()], next, &[v.into()]);
    b.seal_block(next);
    b.switch_to_block(next);
    pinned
}

/// `for i in start..end` with a constant trip count known to the caller.
pub fn range(b: &mut FunctionBuilder, start: Value, end: Value, body: impl FnMut(&mut FunctionBuilder, Value)) {
    counted(b, start, end, 1, body);
}

/// Columns `0..cols`: two 4-lane (`F32X4`) steps an iteration while they fit, when
/// `vectorize`, then one, then single `F32` steps. `body` gets the lane type and the column.
/// Two steps an iteration let the next vector's work start while the last one's long chains
/// (erf, exp) finish: GELU 1.36 -> 1.24 ns an element.
pub fn columns(
    b: &mut FunctionBuilder,
    cols: i64,
    vectorize: bool,
    mut body: impl FnMut(&mut FunctionBuilder, Type, Value),
) {
    let end = b.ins().iconst(types::I64, cols);
    columns_until(b, end, vectorize, |b, ty, c, _| body(b, ty, c));
}

/// Like [`columns`], telling the two 4-lane steps of an iteration apart by `slot` (0, 1), so a
/// fold can carry two independent dependency chains; the remaining steps are slot 0.
pub fn columns_unrolled(
    b: &mut FunctionBuilder,
    cols: i64,
    body: impl FnMut(&mut FunctionBuilder, Type, Value, usize),
) {
    let end = b.ins().iconst(types::I64, cols);
    columns_until(b, end, true, body);
}

/// [`columns_unrolled`] up to a run-time column count, vector steps only when `vectorize`.
pub fn columns_until(
    b: &mut FunctionBuilder,
    end: Value,
    vectorize: bool,
    mut body: impl FnMut(&mut FunctionBuilder, Type, Value, usize),
) {
    let zero = b.ins().iconst(types::I64, 0);
    let tail = if vectorize {
        let pairs = counted(b, zero, end, 2 * LANES, |b, c| {
            body(b, types::F32X4, c, 0);
            let next = b.ins().iadd_imm_s(c, LANES);
            body(b, types::F32X4, next, 1);
        });
        counted(b, pairs, end, LANES, |b, c| body(b, types::F32X4, c, 0))
    } else {
        zero
    };
    counted(b, tail, end, 1, |b, c| body(b, types::F32, c, 0));
}

/// `base + index * scale` (bytes). A power-of-two scale is a shift, which x86-64 lowering
/// folds into the load's or store's addressing mode.
pub fn address(b: &mut FunctionBuilder, base: Value, index: Value, scale: i64) -> Value {
    let off = if scale > 0 && (scale as u64).is_power_of_two() {
        b.ins().ishl_imm_s(index, scale.trailing_zeros() as i64)
    } else {
        b.ins().imul_imm_s(index, scale)
    };
    b.ins().iadd(base, off)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jit::Jit;

    /// A pinned value is bitwise the value: signed zeros, NaNs of either sign, infinities.
    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot run JIT-compiled code (and `loops::` matches its `ops::` filter)")]
    fn pinned_values_keep_their_bits() {
        let values =
            [-0.0f32, 0.0, f32::NAN, -f32::NAN, f32::NEG_INFINITY, f32::INFINITY, 1.5, -2.5, f32::MIN_POSITIVE];
        let mut jit = Jit::new().unwrap();
        let code = jit
            .define(|b, params, ptr| {
                let (from, to) =
                    (b.ins().load(ptr, mem(), params[0], 0), b.ins().load(ptr, mem(), params[0], ptr.bytes() as i32));
                range(b, params[1], params[2], |b, i| {
                    let (at, into) = (address(b, from, i, 4), address(b, to, i, 4));
                    let v = b.ins().load(types::F32, mem(), at, 0);
                    let v = pin(b, v);
                    b.ins().store(mem(), v, into, 0);
                });
                b.ins().return_(&[]);
            })
            .unwrap();
        // SAFETY: `define` compiled a `RangeFn`.
        let f = unsafe { std::mem::transmute::<*const u8, crate::jit::RangeFn>(code) };
        let mut out = vec![0.0f32; values.len()];
        let ptrs = [values.as_ptr() as *mut f32, out.as_mut_ptr()];
        // SAFETY: both buffers hold `values.len()` floats.
        unsafe { f(ptrs.as_ptr(), 0, values.len() as i64) };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&out), bits(&values));
    }
}
