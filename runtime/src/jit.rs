//! Cranelift JIT: elementwise programs compiled to native loops.
//!
//! An [`Elementwise`] program is a small SSA list of f32 operations over input streams (a
//! chain of smelt ops, or a conv/matmul epilogue). It compiles to one function
//!
//! ```text
//! extern "C" fn(ptrs: *const *mut f32, rows: i64, cols: i64)
//! ```
//!
//! that computes `rows x cols` outputs; input `i` is read at `ptrs[i] + r * row_stride[i] +
//! c * col_stride[i]` (strides in elements, 0 for broadcast), the output (`ptrs[inputs]`) is
//! dense. The inner loop runs on 128-bit vectors (Cranelift's x86-64 width) when every input
//! is contiguous or broadcast along columns, with a scalar tail. Transcendentals are
//! polynomial approximations (exp: range reduction to [-ln2/2, ln2/2] and a degree-6
//! polynomial, relative error < 3e-7; erf: Abramowitz-Stegun 7.1.26, absolute error < 5e-7 in
//! f32 arithmetic).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, Type, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

/// One operation of an elementwise program; operands index earlier entries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ew {
    Input(u32),
    Const(f32),
    Add(u32, u32),
    Sub(u32, u32),
    Mul(u32, u32),
    Div(u32, u32),
    Max(u32, u32),
    Min(u32, u32),
    Neg(u32),
    Abs(u32),
    Sqrt(u32),
    Exp(u32),
    Tanh(u32),
    Sigmoid(u32),
    Erf(u32),
}

/// An elementwise program and the layout of its inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Elementwise {
    pub ops: Vec<Ew>,
    /// The value stored (an index into `ops`).
    pub result: u32,
    /// Per input: (row stride, column stride) in elements.
    pub strides: Vec<(i64, i64)>,
    /// The output's row stride in elements; 0 for dense rows (`cols`).
    pub out_row_stride: i64,
}

pub type EwFn = unsafe extern "C" fn(*const *mut f32, i64, i64);

/// Owns the JIT memory; functions stay valid as long as it lives.
pub struct Jit {
    module: JITModule,
    ctx: cranelift_codegen::Context,
    builder_ctx: FunctionBuilderContext,
    count: usize,
}

impl Jit {
    pub fn new() -> Result<Jit, String> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
        flags.set("is_pic", "false").map_err(|e| e.to_string())?;
        let isa = cranelift_native::builder()
            .map_err(|e| format!("this CPU is not supported by Cranelift: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let ctx = module.make_context();
        Ok(Jit { module, ctx, builder_ctx: FunctionBuilderContext::new(), count: 0 })
    }

    /// Compiles `program` to native code.
    pub fn compile(&mut self, program: &Elementwise) -> Result<EwFn, String> {
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(types::I64), AbiParam::new(types::I64)]);
        let name = format!("ew{}", self.count);
        self.count += 1;
        let id = self.module.declare_function(&name, Linkage::Local, &sig).map_err(|e| e.to_string())?;
        self.ctx.func.signature = sig;
        let config = self.module.target_config();
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder_ctx);
            Codegen { b: &mut b, program, ptr }.build();
            b.finalize(config);
        }
        self.module.define_function(id, &mut self.ctx).map_err(|e| format!("{e:?}"))?;
        self.module.clear_context(&mut self.ctx);
        self.module.finalize_definitions().map_err(|e| e.to_string())?;
        let code = self.module.get_finalized_function(id);
        // SAFETY: the function was compiled with exactly this signature.
        Ok(unsafe { std::mem::transmute::<*const u8, EwFn>(code) })
    }
}

struct Codegen<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    program: &'a Elementwise,
    ptr: Type,
}

fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl Codegen<'_, '_> {
    fn build(&mut self) {
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let params = self.b.block_params(entry).to_vec();
        let (ptrs, rows, cols) = (params[0], params[1], params[2]);
        let n_inputs = self.program.strides.len();
        let width = self.ptr.bytes() as i32;
        let bases: Vec<Value> =
            (0..=n_inputs).map(|i| self.b.ins().load(self.ptr, mem(), ptrs, i as i32 * width)).collect();
        let vectorizable = self.program.strides.iter().all(|&(_, cs)| cs == 0 || cs == 1);

        // for r in 0..rows
        let r = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(r, zero);
        let row_head = self.b.create_block();
        let row_body = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().jump(row_head, &[]);
        self.b.switch_to_block(row_head);
        let rv = self.b.use_var(r);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, rv, rows);
        self.b.ins().brif(more, row_body, &[], done, &[]);

        self.b.switch_to_block(row_body);
        let rv = self.b.use_var(r);
        let row_bases: Vec<Value> = (0..=n_inputs)
            .map(|i| {
                let rs = if i == n_inputs { None } else { Some(self.program.strides[i].0) };
                let offset = match rs {
                    None if self.program.out_row_stride == 0 => self.b.ins().imul(rv, cols),
                    None => self.b.ins().imul_imm_s(rv, self.program.out_row_stride),
                    Some(s) => self.b.ins().imul_imm_s(rv, s),
                };
                let bytes = self.b.ins().ishl_imm_s(offset, 2);
                self.b.ins().iadd(bases[i], bytes)
            })
            .collect();
        let c = self.b.declare_var(types::I64);
        self.b.def_var(c, zero);
        let scalar_head = self.b.create_block();
        if vectorizable {
            // while c + 4 <= cols: one f32x4 step
            let vec_head = self.b.create_block();
            let vec_body = self.b.create_block();
            self.b.ins().jump(vec_head, &[]);
            self.b.switch_to_block(vec_head);
            let cv = self.b.use_var(c);
            let next = self.b.ins().iadd_imm_s(cv, 4);
            let fits = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, next, cols);
            self.b.ins().brif(fits, vec_body, &[], scalar_head, &[]);
            self.b.switch_to_block(vec_body);
            let cv = self.b.use_var(c);
            self.step(types::F32X4, &row_bases, cv);
            let next = self.b.ins().iadd_imm_s(cv, 4);
            self.b.def_var(c, next);
            self.b.ins().jump(vec_head, &[]);
            self.b.seal_block(vec_body);
            self.b.seal_block(vec_head);
        } else {
            self.b.ins().jump(scalar_head, &[]);
        }
        // while c < cols: one scalar step
        let scalar_body = self.b.create_block();
        let row_end = self.b.create_block();
        self.b.switch_to_block(scalar_head);
        let cv = self.b.use_var(c);
        let left = self.b.ins().icmp(IntCC::SignedLessThan, cv, cols);
        self.b.ins().brif(left, scalar_body, &[], row_end, &[]);
        self.b.switch_to_block(scalar_body);
        let cv = self.b.use_var(c);
        self.step(types::F32, &row_bases, cv);
        let next = self.b.ins().iadd_imm_s(cv, 1);
        self.b.def_var(c, next);
        self.b.ins().jump(scalar_head, &[]);
        self.b.seal_block(scalar_body);
        self.b.seal_block(scalar_head);

        self.b.switch_to_block(row_end);
        let rv = self.b.use_var(r);
        let next = self.b.ins().iadd_imm_s(rv, 1);
        self.b.def_var(r, next);
        self.b.ins().jump(row_head, &[]);
        self.b.seal_block(row_end);
        self.b.seal_block(row_body);
        self.b.seal_block(row_head);

        self.b.switch_to_block(done);
        self.b.seal_block(done);
        self.b.ins().return_(&[]);
        self.b.seal_block(entry);
    }

    /// Computes the program at column `c` of the current row for one lane type and stores it.
    fn step(&mut self, ty: Type, row_bases: &[Value], c: Value) {
        let n_inputs = self.program.strides.len();
        let mut vals: Vec<Value> = Vec::with_capacity(self.program.ops.len());
        for op in &self.program.ops {
            let v = match *op {
                Ew::Input(i) => {
                    let i = i as usize;
                    let cs = self.program.strides[i].1;
                    let offset =
                        if cs == 0 { self.b.ins().iconst(types::I64, 0) } else { self.b.ins().imul_imm_s(c, cs * 4) };
                    let addr = self.b.ins().iadd(row_bases[i], offset);
                    if ty == types::F32 || cs == 1 {
                        self.b.ins().load(ty, mem(), addr, 0)
                    } else {
                        let s = self.b.ins().load(types::F32, mem(), addr, 0);
                        self.b.ins().splat(ty, s)
                    }
                }
                Ew::Const(k) => self.constant(ty, k),
                Ew::Add(a, b) => self.b.ins().fadd(vals[a as usize], vals[b as usize]),
                Ew::Sub(a, b) => self.b.ins().fsub(vals[a as usize], vals[b as usize]),
                Ew::Mul(a, b) => self.b.ins().fmul(vals[a as usize], vals[b as usize]),
                Ew::Div(a, b) => self.b.ins().fdiv(vals[a as usize], vals[b as usize]),
                Ew::Max(a, b) => self.b.ins().fmax(vals[a as usize], vals[b as usize]),
                Ew::Min(a, b) => self.b.ins().fmin(vals[a as usize], vals[b as usize]),
                Ew::Neg(a) => self.b.ins().fneg(vals[a as usize]),
                Ew::Abs(a) => self.b.ins().fabs(vals[a as usize]),
                Ew::Sqrt(a) => self.b.ins().sqrt(vals[a as usize]),
                Ew::Exp(a) => self.exp(ty, vals[a as usize]),
                Ew::Sigmoid(a) => {
                    // 1 / (1 + e^-x)
                    let neg = self.b.ins().fneg(vals[a as usize]);
                    let e = self.exp(ty, neg);
                    let one = self.constant(ty, 1.0);
                    let d = self.b.ins().fadd(one, e);
                    self.b.ins().fdiv(one, d)
                }
                Ew::Tanh(a) => self.tanh(ty, vals[a as usize]),
                Ew::Erf(a) => self.erf(ty, vals[a as usize]),
            };
            vals.push(v);
        }
        let offset = self.b.ins().ishl_imm_s(c, 2);
        let addr = self.b.ins().iadd(row_bases[n_inputs], offset);
        self.b.ins().store(mem(), vals[self.program.result as usize], addr, 0);
    }

    fn constant(&mut self, ty: Type, k: f32) -> Value {
        let s = self.b.ins().f32const(k);
        if ty == types::F32 {
            s
        } else {
            self.b.ins().splat(ty, s)
        }
    }

    fn int_constant(&mut self, ty: Type, k: i64) -> Value {
        if ty == types::F32 {
            self.b.ins().iconst(types::I32, k)
        } else {
            let s = self.b.ins().iconst(types::I32, k);
            self.b.ins().splat(types::I32X4, s)
        }
    }

    fn poly(&mut self, ty: Type, x: Value, coefficients: &[f32]) -> Value {
        // Horner, highest degree first.
        let mut acc = self.constant(ty, coefficients[0]);
        for &k in &coefficients[1..] {
            let m = self.b.ins().fmul(acc, x);
            let c = self.constant(ty, k);
            acc = self.b.ins().fadd(m, c);
        }
        acc
    }

    /// e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln2 / 2.
    fn exp(&mut self, ty: Type, x: Value) -> Value {
        let hi = self.constant(ty, 88.37);
        let lo = self.constant(ty, -87.33);
        let x = self.b.ins().fmin(x, hi);
        let x = self.b.ins().fmax(x, lo);
        let log2e = self.constant(ty, std::f32::consts::LOG2_E);
        let t = self.b.ins().fmul(x, log2e);
        let n = self.b.ins().nearest(t);
        let ln2_hi = self.constant(ty, 0.693_145_75);
        let ln2_lo = self.constant(ty, 1.428_606_8e-6);
        let a = self.b.ins().fmul(n, ln2_hi);
        let r = self.b.ins().fsub(x, a);
        let b = self.b.ins().fmul(n, ln2_lo);
        let r = self.b.ins().fsub(r, b);
        let p = self.poly(ty, r, &[1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0]);
        let int_ty = if ty == types::F32 { types::I32 } else { types::I32X4 };
        let ni = self.b.ins().fcvt_to_sint_sat(int_ty, n);
        let bias = self.int_constant(ty, 127);
        let e = self.b.ins().iadd(ni, bias);
        let bits = self.b.ins().ishl_imm_s(e, 23);
        let flags = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
        let scale = self.b.ins().bitcast(ty, flags, bits);
        self.b.ins().fmul(p, scale)
    }

    /// `1 - 2 / (e^2x + 1)`, and the odd Taylor series below |x| = 0.25, where the former
    /// cancels (relative error < 5e-7 everywhere).
    fn tanh(&mut self, ty: Type, x: Value) -> Value {
        let two_x = self.b.ins().fadd(x, x);
        let e = self.exp(ty, two_x);
        let one = self.constant(ty, 1.0);
        let two = self.constant(ty, 2.0);
        let d = self.b.ins().fadd(e, one);
        let q = self.b.ins().fdiv(two, d);
        let large = self.b.ins().fsub(one, q);
        // x (1 - x^2/3 + 2x^4/15 - 17x^6/315 + 62x^8/2835)
        let x2 = self.b.ins().fmul(x, x);
        let p = self.poly(ty, x2, &[62.0 / 2835.0, -17.0 / 315.0, 2.0 / 15.0, -1.0 / 3.0, 1.0]);
        let small = self.b.ins().fmul(x, p);
        let ax = self.b.ins().fabs(x);
        let limit = self.constant(ty, 0.25);
        let is_small = self.b.ins().fcmp(FloatCC::LessThan, ax, limit);
        if ty == types::F32 {
            self.b.ins().select(is_small, small, large)
        } else {
            let flags = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
            let mask = self.b.ins().bitcast(ty, flags, is_small);
            self.b.ins().bitselect(mask, small, large)
        }
    }

    /// Abramowitz-Stegun 7.1.26 with the sign restored.
    fn erf(&mut self, ty: Type, x: Value) -> Value {
        let ax = self.b.ins().fabs(x);
        let p = self.constant(ty, 0.327_591_1);
        let one = self.constant(ty, 1.0);
        let px = self.b.ins().fmul(p, ax);
        let d = self.b.ins().fadd(one, px);
        let t = self.b.ins().fdiv(one, d);
        let poly = self.poly(ty, t, &[1.061_405_4, -1.453_152_1, 1.421_413_8, -0.284_496_74, 0.254_829_6, 0.0]);
        let x2 = self.b.ins().fmul(ax, ax);
        let nx2 = self.b.ins().fneg(x2);
        let e = self.exp(ty, nx2);
        let pe = self.b.ins().fmul(poly, e);
        let y = self.b.ins().fsub(one, pe);
        // copysign(y, x)
        let flags = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
        let int_ty = if ty == types::F32 { types::I32 } else { types::I32X4 };
        let xb = self.b.ins().bitcast(int_ty, flags, x);
        let yb = self.b.ins().bitcast(int_ty, flags, y);
        let sign = self.int_constant(ty, i32::MIN as i64);
        let s = self.b.ins().band(xb, sign);
        let r = self.b.ins().bor(yb, s);
        self.b.ins().bitcast(ty, flags, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(program: &Elementwise, inputs: &[Vec<f32>], rows: usize, cols: usize) -> Vec<f32> {
        let mut jit = Jit::new().unwrap();
        let f = jit.compile(program).unwrap();
        let mut out = vec![0.0f32; rows * cols];
        let mut ptrs: Vec<*mut f32> = inputs.iter().map(|v| v.as_ptr() as *mut f32).collect();
        ptrs.push(out.as_mut_ptr());
        unsafe { f(ptrs.as_ptr(), rows as i64, cols as i64) };
        out
    }

    #[test]
    fn broadcasts_rows_and_columns_with_a_scalar_tail() {
        // out[r][c] = x[r][c] * col[c] + row[r]
        let p = Elementwise {
            ops: vec![Ew::Input(0), Ew::Input(1), Ew::Input(2), Ew::Mul(0, 1), Ew::Add(3, 2)],
            result: 4,
            strides: vec![(7, 1), (0, 1), (1, 0)],
            out_row_stride: 0,
        };
        let (rows, cols) = (3, 7);
        let x: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let col: Vec<f32> = (0..cols).map(|i| i as f32 * 0.5).collect();
        let row: Vec<f32> = (0..rows).map(|i| 100.0 * i as f32).collect();
        let out = run(&p, &[x.clone(), col.clone(), row.clone()], rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(out[r * cols + c], x[r * cols + c] * col[c] + row[r]);
            }
        }
    }

    #[test]
    fn transcendentals_are_accurate() {
        let xs: Vec<f32> = (0..2001).map(|i| -10.0 + i as f32 * 0.01).collect();
        for (op, f, tol) in [
            (Ew::Exp(0), (|x: f64| x.exp()) as fn(f64) -> f64, 3e-7),
            (Ew::Tanh(0), f64::tanh, 5e-7),
            (Ew::Sigmoid(0), |x: f64| 1.0 / (1.0 + (-x).exp()), 3e-7),
            (Ew::Erf(0), libm::erf, 5e-7),
        ] {
            let p = Elementwise { ops: vec![Ew::Input(0), op], result: 1, strides: vec![(0, 1)], out_row_stride: 0 };
            let out = run(&p, std::slice::from_ref(&xs), 1, xs.len());
            for (x, y) in xs.iter().zip(&out) {
                let want = f(*x as f64);
                let err = (*y as f64 - want).abs() / want.abs().max(1.0);
                assert!(err < tol, "{op:?}({x}) = {y}, want {want}");
            }
        }
    }

    #[test]
    fn tanh_keeps_relative_accuracy_near_zero() {
        let xs: Vec<f32> = (1..2000).map(|i| (i as f32 - 1000.0) * 3e-4).collect();
        let p =
            Elementwise { ops: vec![Ew::Input(0), Ew::Tanh(0)], result: 1, strides: vec![(0, 1)], out_row_stride: 0 };
        let out = run(&p, std::slice::from_ref(&xs), 1, xs.len());
        for (x, y) in xs.iter().zip(&out) {
            let want = (*x as f64).tanh();
            assert!((*y as f64 - want).abs() <= 5e-7 * want.abs().max(1e-30), "tanh({x}) = {y}, want {want}");
        }
    }
}
