//! Elementwise programs compiled to 2-D loops.
//!
//! An [`Elementwise`] program is a small SSA list of f32 operations over input streams (a
//! chain of smelt ops, a conv/matmul epilogue, or one input alone: a strided copy). It
//! compiles to one function
//!
//! ```text
//! extern "C" fn(ptrs: *const *mut f32, rows: i64, cols: i64)
//! ```
//!
//! that computes `rows x cols` outputs; input `i` is read at `ptrs[i] + r * row_stride[i] +
//! c * col_stride[i]` (strides in elements, 0 for broadcast, negative for reversed slices),
//! the output (`ptrs[inputs]`) at `r * out_row_stride + c`. The inner loop runs on 128-bit
//! vectors when every input is contiguous or broadcast along columns, with a scalar tail.

use cranelift_codegen::ir::{condcodes::FloatCC, types, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;

use super::loops::{columns_until, counted, mem};
use super::math;
use crate::vmath::Activation;

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
    Log(u32),
    /// To the nearest integer, halves to even.
    Round(u32),
    /// `x < 0 ? x * slope : x` (leaky and parametric ReLU): a positive `x` is kept even where
    /// the slope is infinite or NaN.
    ScaleBelowZero(u32, u32),
    /// An activation, as one unit: the JIT expands it (`math::activate`), and where it ends a
    /// kernel the executor may run it at full width instead (`crate::vmath`).
    Act(Activation, u32),
}

impl Ew {
    /// The program entries this one reads.
    pub fn operands(&self) -> Vec<u32> {
        match *self {
            Ew::Input(_) | Ew::Const(_) => vec![],
            Ew::Add(x, y)
            | Ew::Sub(x, y)
            | Ew::Mul(x, y)
            | Ew::Div(x, y)
            | Ew::Max(x, y)
            | Ew::Min(x, y)
            | Ew::ScaleBelowZero(x, y) => {
                vec![x, y]
            }
            Ew::Neg(x) | Ew::Abs(x) | Ew::Sqrt(x) | Ew::Log(x) | Ew::Round(x) | Ew::Act(_, x) => vec![x],
        }
    }
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

pub(super) fn build(b: &mut FunctionBuilder, program: &Elementwise, params: &[Value], ptr: Type) {
    if let Some(stride) = transposed_stride(program) {
        return build_transposed(b, stride, program.out_row_stride, params, ptr);
    }
    let (ptrs, rows, cols) = (params[0], params[1], params[2]);
    let n_inputs = program.strides.len();
    let width = ptr.bytes() as i32;
    let bases: Vec<Value> = (0..=n_inputs).map(|i| b.ins().load(ptr, mem(), ptrs, i as i32 * width)).collect();
    let vectorizable = program.strides.iter().all(|&(_, cs)| cs == 0 || cs == 1);
    let zero = b.ins().iconst(types::I64, 0);
    counted(b, zero, rows, 1, |b, r| {
        let row_bases: Vec<Value> = (0..=n_inputs)
            .map(|i| {
                let offset = match program.strides.get(i) {
                    Some(&(rs, _)) => b.ins().imul_imm_s(r, rs),
                    None if program.out_row_stride == 0 => b.ins().imul(r, cols),
                    None => b.ins().imul_imm_s(r, program.out_row_stride),
                };
                let bytes = b.ins().ishl_imm_s(offset, 2);
                b.ins().iadd(bases[i], bytes)
            })
            .collect();
        columns_until(b, cols, vectorizable, |b, ty, c, _| step(b, program, ty, &row_bases, c));
    });
    b.ins().return_(&[]);
}

/// The column stride of a copy whose input is contiguous down the rows and strided along
/// them (`strides == [(1, s)]`: a transpose's last two axes). Copied element by element, each
/// load touches another cache line, and lines a multiple of 1 KiB apart share a few L1 sets:
/// BERT's keys, 3 KiB apart, took 1.4 ns an element.
fn transposed_stride(program: &Elementwise) -> Option<i64> {
    match (program.ops.as_slice(), program.result, program.strides.as_slice()) {
        ([Ew::Input(0)], 0, &[(1, stride)]) if stride != 0 && stride != 1 => Some(stride),
        _ => None,
    }
}

/// The copy [`transposed_stride`] found, as 4x4 blocks (four vector loads down the rows, a
/// register transpose, four vector stores along them), sixteen rows at a time so every input
/// line is used whole while it is in L1; then four rows at a time, then rows one by one.
fn build_transposed(b: &mut FunctionBuilder, stride: i64, out_row_stride: i64, params: &[Value], ptr: Type) {
    let (ptrs, rows, cols) = (params[0], params[1], params[2]);
    let from = b.ins().load(ptr, mem(), ptrs, 0);
    let to = b.ins().load(ptr, mem(), ptrs, ptr.bytes() as i32);
    let out_row = if out_row_stride == 0 { cols } else { b.ins().iconst(types::I64, out_row_stride) };
    let layout = Transposed { from, to, stride, out_row, cols };
    let zero = b.ins().iconst(types::I64, 0);
    let sixteens = counted(b, zero, rows, 16, |b, r| layout.rows(b, r, 4));
    let fours = counted(b, sixteens, rows, 4, |b, r| layout.rows(b, r, 1));
    counted(b, fours, rows, 1, |b, r| {
        let zero = b.ins().iconst(types::I64, 0);
        counted(b, zero, cols, 1, |b, c| layout.copy_scalar(b, r, c));
    });
    b.ins().return_(&[]);
}

/// Where [`build_transposed`] reads and writes: input element (r, c) at `from + c * stride
/// + r`, output element (r, c) at `to + r * out_row + c`.
struct Transposed {
    from: Value,
    to: Value,
    stride: i64,
    out_row: Value,
    cols: Value,
}

impl Transposed {
    fn input(&self, b: &mut FunctionBuilder, r: Value, c: Value) -> Value {
        let column = super::loops::address(b, self.from, c, self.stride * 4);
        super::loops::address(b, column, r, 4)
    }

    fn output(&self, b: &mut FunctionBuilder, r: Value, c: Value) -> Value {
        let row = b.ins().imul(r, self.out_row);
        let at = super::loops::address(b, self.to, row, 4);
        super::loops::address(b, at, c, 4)
    }

    fn copy_scalar(&self, b: &mut FunctionBuilder, r: Value, c: Value) {
        let (at, into) = (self.input(b, r, c), self.output(b, r, c));
        let v = b.ins().load(types::F32, mem(), at, 0);
        b.ins().store(mem(), v, into, 0);
    }

    /// Output rows `r..r + 4 * groups`: 4x4 blocks while four columns remain, then the rest
    /// element by element.
    fn rows(&self, b: &mut FunctionBuilder, r: Value, groups: i64) {
        let zero = b.ins().iconst(types::I64, 0);
        let tail = counted(b, zero, self.cols, 4, |b, c| {
            for g in 0..groups {
                let r0 = b.ins().iadd_imm_s(r, 4 * g);
                let columns = [0, 1, 2, 3].map(|j| {
                    let cj = b.ins().iadd_imm_s(c, j);
                    let at = self.input(b, r0, cj);
                    b.ins().load(types::F32X4, mem(), at, 0)
                });
                let block_rows = math::transpose4(b, columns);
                for (i, row) in block_rows.into_iter().enumerate() {
                    let ri = b.ins().iadd_imm_s(r0, i as i64);
                    let into = self.output(b, ri, c);
                    b.ins().store(mem(), row, into, 0);
                }
            }
        });
        counted(b, tail, self.cols, 1, |b, c| {
            for i in 0..4 * groups {
                let ri = b.ins().iadd_imm_s(r, i);
                self.copy_scalar(b, ri, c);
            }
        });
    }
}

/// Computes the program at column `c` of the current row for one lane type and stores it.
fn step(b: &mut FunctionBuilder, program: &Elementwise, ty: Type, row_bases: &[Value], c: Value) {
    let n_inputs = program.strides.len();
    let mut vals: Vec<Value> = Vec::with_capacity(program.ops.len());
    for op in &program.ops {
        let v = match *op {
            Ew::Input(i) => {
                let i = i as usize;
                let cs = program.strides[i].1;
                let addr = if cs == 0 { row_bases[i] } else { super::loops::address(b, row_bases[i], c, cs * 4) };
                if ty == types::F32 || cs == 1 {
                    b.ins().load(ty, mem(), addr, 0)
                } else {
                    let s = b.ins().load(types::F32, mem(), addr, 0);
                    b.ins().splat(ty, s)
                }
            }
            Ew::Const(k) => math::constant(b, ty, k),
            Ew::Add(x, y) => b.ins().fadd(vals[x as usize], vals[y as usize]),
            Ew::Sub(x, y) => b.ins().fsub(vals[x as usize], vals[y as usize]),
            Ew::Mul(x, y) => b.ins().fmul(vals[x as usize], vals[y as usize]),
            Ew::Div(x, y) => b.ins().fdiv(vals[x as usize], vals[y as usize]),
            Ew::Max(x, y) => b.ins().fmax(vals[x as usize], vals[y as usize]),
            Ew::Min(x, y) => b.ins().fmin(vals[x as usize], vals[y as usize]),
            Ew::Neg(x) => b.ins().fneg(vals[x as usize]),
            Ew::Abs(x) => b.ins().fabs(vals[x as usize]),
            Ew::Sqrt(x) => b.ins().sqrt(vals[x as usize]),
            Ew::Log(x) => math::log(b, ty, vals[x as usize]),
            Ew::Round(x) => b.ins().nearest(vals[x as usize]),
            Ew::ScaleBelowZero(x, slope) => {
                let (x, slope) = (vals[x as usize], vals[slope as usize]);
                let zero = math::constant(b, ty, 0.0);
                let below = b.ins().fcmp(FloatCC::LessThan, x, zero);
                let scaled = b.ins().fmul(x, slope);
                math::select(b, ty, below, scaled, x)
            }
            Ew::Act(a, x) => math::activate(b, ty, a, vals[x as usize]),
        };
        vals.push(v);
    }
    let addr = super::loops::address(b, row_bases[n_inputs], c, 4);
    b.ins().store(mem(), vals[program.result as usize], addr, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::jit::Jit;

    /// The program's output rows (`out_row_stride` apart, or `cols`), zeros where it wrote
    /// nothing.
    fn run(program: &Elementwise, inputs: &[Vec<f32>], rows: usize, cols: usize) -> Vec<f32> {
        let mut jit = Jit::new().unwrap();
        let f = jit.compile(program).unwrap();
        let ldo = if program.out_row_stride == 0 { cols } else { program.out_row_stride as usize };
        let mut out = vec![0.0f32; rows * ldo];
        let mut ptrs: Vec<*mut f32> = inputs.iter().map(|v| v.as_ptr() as *mut f32).collect();
        ptrs.push(out.as_mut_ptr());
        unsafe { f(ptrs.as_ptr(), rows as i64, cols as i64) };
        out
    }

    #[test]
    fn broadcasts_rows_and_columns_with_a_scalar_tail() {
        // out[r][c] = x[r][c] * col[c] + row[r]; 15 columns: a pair of vectors, one vector,
        // three scalars.
        let p = Elementwise {
            ops: vec![Ew::Input(0), Ew::Input(1), Ew::Input(2), Ew::Mul(0, 1), Ew::Add(3, 2)],
            result: 4,
            strides: vec![(15, 1), (0, 1), (1, 0)],
            out_row_stride: 0,
        };
        let (rows, cols) = (3, 15);
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

    /// Transposing copies (input contiguous down the rows) of every remainder of rows (by 16,
    /// then 4) and columns (by 4), into dense and strided output rows, equal a direct loop.
    #[test]
    fn transposing_copies_match_a_direct_loop() {
        for (rows, cols, stride, out_row_stride) in [
            (1, 1, 5, 0),
            (3, 7, 9, 0),
            (4, 4, 4, 0),
            (16, 8, 20, 0),
            (37, 13, 41, 0),
            (21, 6, 768, 9),
            (64, 128, 70, 0),
        ] {
            let p = Elementwise { ops: vec![Ew::Input(0)], result: 0, strides: vec![(1, stride)], out_row_stride };
            assert_eq!(transposed_stride(&p), Some(stride));
            // No zeros, so a stray write into the rows' padding shows. rows <= stride.
            let x: Vec<f32> = (1..=cols * stride as usize).map(|i| i as f32).collect();
            let ldo = if out_row_stride == 0 { cols } else { out_row_stride as usize };
            let out = run(&p, std::slice::from_ref(&x), rows, cols);
            for r in 0..rows {
                for c in 0..ldo {
                    let want = if c < cols { x[c * stride as usize + r] } else { 0.0 };
                    assert_eq!(out[r * ldo + c], want, "{rows}x{cols}, stride {stride}: ({r}, {c})");
                }
            }
        }
    }

    #[test]
    fn transcendentals_are_accurate() {
        let xs: Vec<f32> = (0..2001).map(|i| -10.0 + i as f32 * 0.01).collect();
        for (op, f, tol) in [
            (Ew::Act(Activation::Exp, 0), (|x: f64| x.exp()) as fn(f64) -> f64, 3e-7),
            (Ew::Act(Activation::Tanh, 0), f64::tanh, 5e-7),
            (Ew::Act(Activation::Sigmoid, 0), |x: f64| 1.0 / (1.0 + (-x).exp()), 3e-7),
            (Ew::Act(Activation::Erf, 0), libm::erf, 5e-7),
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

    /// Below f32's normal range e^x is 0, never the smallest normal: a product with that would
    /// be subnormal (a masked attention probability times a value), many times slower on Intel
    /// cores; from the edge up it is the true value.
    #[test]
    fn exp_is_zero_below_the_normal_range() {
        let xs = [-1e30f32, -1000.0, -104.0, -88.0, -87.0, -10.0];
        let p = Elementwise {
            ops: vec![Ew::Input(0), Ew::Act(Activation::Exp, 0)],
            result: 1,
            strides: vec![(0, 1)],
            out_row_stride: 0,
        };
        let out = run(&p, &[xs.to_vec()], 1, xs.len());
        assert_eq!(&out[..4], &[0.0; 4], "{out:?}");
        assert!(out[4] >= f32::MIN_POSITIVE && (out[4] as f64 / (-87.0f64).exp() - 1.0).abs() < 1e-6, "{out:?}");
        assert!(out.iter().all(|v| *v == 0.0 || v.is_normal()), "{out:?}");
    }

    #[test]
    fn tanh_keeps_relative_accuracy_near_zero() {
        let xs: Vec<f32> = (1..2000).map(|i| (i as f32 - 1000.0) * 3e-4).collect();
        let p = Elementwise {
            ops: vec![Ew::Input(0), Ew::Act(Activation::Tanh, 0)],
            result: 1,
            strides: vec![(0, 1)],
            out_row_stride: 0,
        };
        let out = run(&p, std::slice::from_ref(&xs), 1, xs.len());
        for (x, y) in xs.iter().zip(&out) {
            let want = (*x as f64).tanh();
            assert!((*y as f64 - want).abs() <= 5e-7 * want.abs().max(1e-30), "tanh({x}) = {y}, want {want}");
        }
    }

    #[test]
    fn log_is_accurate_from_tiny_to_huge_and_exact_at_the_edges() {
        let mut xs: Vec<f32> = (0..4000).map(|i| 1e-30f32 * 1.0318f32.powi(i)).filter(|x| x.is_finite()).collect();
        xs.extend((1..2000).map(|i| i as f32 * 0.001));
        let p =
            Elementwise { ops: vec![Ew::Input(0), Ew::Log(0)], result: 1, strides: vec![(0, 1)], out_row_stride: 0 };
        let out = run(&p, std::slice::from_ref(&xs), 1, xs.len());
        for (x, y) in xs.iter().zip(&out) {
            let want = (*x as f64).ln();
            assert!((*y as f64 - want).abs() < 2e-7 * want.abs().max(1.0), "log({x}) = {y}, want {want}");
        }
        let edges = vec![0.0f32, -1.0, f32::INFINITY, f32::NAN, 1.0];
        let out = run(&p, std::slice::from_ref(&edges), 1, edges.len());
        assert_eq!(out[0], f32::NEG_INFINITY);
        assert!(out[1].is_nan() && out[3].is_nan());
        assert_eq!((out[2], out[4]), (f32::INFINITY, 0.0));
    }
}
