//! Polynomial transcendentals for `F32` and `F32X4` values, shared by every program kind.
//!
//! exp: range reduction to [-ln2/2, ln2/2] and a degree-6 polynomial (relative error
//! < 3e-7); log: exponent split and the atanh series on [sqrt(1/2), sqrt(2)) (absolute error
//! < 2e-7); tanh: through exp, with the odd Taylor series near zero; erf: a rational fit on
//! [-4, 4] (absolute error < 5e-7).

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

use crate::vmath::Activation;

fn bits() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

fn int_type(ty: Type) -> Type {
    if ty == types::F32 {
        types::I32
    } else {
        types::I32X4
    }
}

/// `k` in every lane of `ty`.
pub fn constant(b: &mut FunctionBuilder, ty: Type, k: f32) -> Value {
    let s = b.ins().f32const(k);
    if ty == types::F32 {
        s
    } else {
        b.ins().splat(ty, s)
    }
}

fn int_constant(b: &mut FunctionBuilder, ty: Type, k: i64) -> Value {
    let s = b.ins().iconst(types::I32, k);
    if ty == types::F32 {
        s
    } else {
        b.ins().splat(types::I32X4, s)
    }
}

/// `cond ? yes : no` lane by lane (`cond` from an `fcmp` of the same lane type).
pub fn select(b: &mut FunctionBuilder, ty: Type, cond: Value, yes: Value, no: Value) -> Value {
    if ty == types::F32 {
        b.ins().select(cond, yes, no)
    } else {
        let mask = b.ins().bitcast(ty, bits(), cond);
        b.ins().bitselect(mask, yes, no)
    }
}

/// Lanes 0 and 2 of `lo`, then lanes 0 and 2 of `hi` (`F32X4`): every second element of the
/// eight `lo` and `hi` hold.
pub fn even_lanes(b: &mut FunctionBuilder, lo: Value, hi: Value) -> Value {
    pick_lanes(b, lo, hi, [0, 2, 4, 6])
}

/// The `F32X4` of the given lanes of the eight `lo` then `hi` hold (0..4 in `lo`, 4..8 in
/// `hi`).
pub fn pick_lanes(b: &mut FunctionBuilder, lo: Value, hi: Value, lanes: [u8; 4]) -> Value {
    let bytes: Vec<u8> = lanes.iter().flat_map(|&lane| (0..4).map(move |byte| lane * 4 + byte)).collect();
    let mask = b.func.dfg.immediates.push(bytes.into());
    let (lo, hi) = (b.ins().bitcast(types::I8X16, bits(), lo), b.ins().bitcast(types::I8X16, bits(), hi));
    let picked = b.ins().shuffle(lo, hi, mask);
    b.ins().bitcast(types::F32X4, bits(), picked)
}

/// The 4x4 block whose columns are `columns` (four `F32X4`), as its four rows.
pub fn transpose4(b: &mut FunctionBuilder, columns: [Value; 4]) -> [Value; 4] {
    let [a, c, e, g] = columns;
    let (ac_lo, ac_hi) = (pick_lanes(b, a, c, [0, 4, 1, 5]), pick_lanes(b, a, c, [2, 6, 3, 7]));
    let (eg_lo, eg_hi) = (pick_lanes(b, e, g, [0, 4, 1, 5]), pick_lanes(b, e, g, [2, 6, 3, 7]));
    [
        pick_lanes(b, ac_lo, eg_lo, [0, 1, 4, 5]),
        pick_lanes(b, ac_lo, eg_lo, [2, 3, 6, 7]),
        pick_lanes(b, ac_hi, eg_hi, [0, 1, 4, 5]),
        pick_lanes(b, ac_hi, eg_hi, [2, 3, 6, 7]),
    ]
}

/// Whether the host has fused multiply-add (Cranelift then emits `vfmadd`; without it, `fma`
/// would become a library call).
fn host_has_fma() -> bool {
    static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FMA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("fma");
        #[cfg(target_arch = "aarch64")]
        return true;
        #[allow(unreachable_code)]
        false
    })
}

/// `a * x + c`, fused where the host can (one rounding instead of two: never less accurate).
pub fn mul_add(b: &mut FunctionBuilder, a: Value, x: Value, c: Value) -> Value {
    if host_has_fma() {
        b.ins().fma(a, x, c)
    } else {
        let m = b.ins().fmul(a, x);
        b.ins().fadd(m, c)
    }
}

/// `coefficients` (highest degree first) at `x` by Estrin's scheme: pairs `a + b x` combined
/// with `x^2`, those pairs with `x^4`, and so on: a chain of about log2(degree) dependent
/// FMAs where Horner's has one per degree. The long chains of erf and exp, not their
/// instruction counts, bound the loops that use them: GELU 1.42 -> 1.36 ns an element in L1.
fn poly(b: &mut FunctionBuilder, ty: Type, x: Value, coefficients: &[f32]) -> Value {
    let mut terms: Vec<Value> = coefficients.iter().rev().map(|&k| constant(b, ty, k)).collect();
    let mut power = x;
    while terms.len() > 1 {
        let pairs = terms.chunks(2).map(|pair| match *pair {
            [low, high] => mul_add(b, high, power, low),
            _ => pair[0],
        });
        terms = pairs.collect();
        if terms.len() > 1 {
            power = b.ins().fmul(power, power);
        }
    }
    terms[0]
}

/// `x` clamped to `[lo, hi]` by compare-and-select (two instructions a bound, where `fmin` and
/// `fmax` need a NaN-correcting sequence); a NaN stays NaN: both comparisons fail on it.
pub fn clamp(b: &mut FunctionBuilder, ty: Type, x: Value, lo: f32, hi: f32) -> Value {
    let h = constant(b, ty, hi);
    let above = b.ins().fcmp(FloatCC::GreaterThan, x, h);
    let x = select(b, ty, above, h, x);
    at_least(b, ty, x, lo)
}

/// `lo` where `x < lo`, else `x` (NaN stays).
fn at_least(b: &mut FunctionBuilder, ty: Type, x: Value, lo: f32) -> Value {
    let l = constant(b, ty, lo);
    let below = b.ins().fcmp(FloatCC::LessThan, x, l);
    select(b, ty, below, l, x)
}

/// The larger of `acc` and `x` by compare-and-select: a NaN `x` is skipped (callers whose
/// later steps propagate NaN anyway, like softmax's maximum).
pub fn max_skipping_nan(b: &mut FunctionBuilder, ty: Type, acc: Value, x: Value) -> Value {
    let greater = b.ins().fcmp(FloatCC::GreaterThan, x, acc);
    select(b, ty, greater, x, acc)
}

/// e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln2 / 2. Adding 1.5 * 2^23 rounds x / ln 2
/// to an integer held in the low mantissa bits, which then build 2^n's exponent: no rounding
/// or (saturating, NaN-checking) conversion instructions.
pub fn exp(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let clamped = clamp(b, ty, x, EXP_MIN, EXP_MAX);
    let e = exp_in_range(b, ty, clamped);
    zero_below_range(b, ty, x, e)
}

/// [`exp`] of an `x` known to be at most 0 (or NaN): softmax's shifted scores, clamped below
/// only.
pub fn exp_of_nonpositive(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let clamped = at_least(b, ty, x, EXP_MIN);
    let e = exp_in_range(b, ty, clamped);
    zero_below_range(b, ty, x, e)
}

/// `e` (e^x at the clamped x), or 0 where `x` is below [`EXP_MIN`]: e^x is then below f32's
/// normal range, and the smallest normal the clamp gives would make products with it
/// subnormal (a masked attention score's probability times a value), which Intel cores
/// compute by microcode assists, tens of times slower. Above [`EXP_MAX`], infinity, as a
/// correctly rounded e^x is.
fn zero_below_range(b: &mut FunctionBuilder, ty: Type, x: Value, e: Value) -> Value {
    let h = constant(b, ty, EXP_MAX);
    let above = b.ins().fcmp(FloatCC::GreaterThan, x, h);
    let inf = constant(b, ty, f32::INFINITY);
    let e = select(b, ty, above, inf, e);
    let l = constant(b, ty, EXP_MIN);
    let below = b.ins().fcmp(FloatCC::LessThan, x, l);
    let zero = constant(b, ty, 0.0);
    select(b, ty, below, zero, e)
}

/// Where the result of `exp` and its scale 2^n stay normal.
/// The polynomials both forms of the math evaluate (this JIT and `crate::vmath`), highest
/// degree first: one definition, so the two paths compute the same function.
pub(crate) const EXP_POLY: [f32; 7] = [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0];
pub(crate) const LOG_POLY: [f32; 6] = [2.0 / 11.0, 2.0 / 9.0, 2.0 / 7.0, 2.0 / 5.0, 2.0 / 3.0, 2.0];
/// tanh x / x near 0, in x^2.
pub(crate) const TANH_SMALL_POLY: [f32; 5] = [62.0 / 2835.0, -17.0 / 315.0, 2.0 / 15.0, -1.0 / 3.0, 1.0];
/// erf's rational fit on [-4, 4]: x P(x^2) / Q(x^2).
pub(crate) const ERF_P: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906_3e-4,
    -2.954_600_1e-3,
    -1.609_603_3e-2,
];
pub(crate) const ERF_Q: [f32; 5] = [-1.456_607_2e-5, -2.133_740_6e-4, -1.682_827e-3, -7.373_329_2e-3, -1.426_474e-2];

pub(crate) const EXP_MIN: f32 = -87.33;
pub(crate) const EXP_MAX: f32 = 88.37;

/// `exp x` for `x` in [`EXP_MIN`, `EXP_MAX`] (or NaN).
fn exp_in_range(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    const MAGIC: f32 = 12_582_912.0;
    let log2e = constant(b, ty, std::f32::consts::LOG2_E);
    let t = b.ins().fmul(x, log2e);
    let magic = constant(b, ty, MAGIC);
    let shifted = b.ins().fadd(t, magic);
    let n = b.ins().fsub(shifted, magic);
    let ln2_hi = constant(b, ty, -0.693_145_75);
    let ln2_lo = constant(b, ty, -1.428_606_8e-6);
    let r = mul_add(b, n, ln2_hi, x);
    let r = mul_add(b, n, ln2_lo, r);
    let p = poly(b, ty, r, &EXP_POLY);
    // bits(shifted) - bits(MAGIC) = n; + 127 biases it; << 23 places it in the exponent.
    let nb = b.ins().bitcast(int_type(ty), bits(), shifted);
    let bias = int_constant(b, ty, 127 - MAGIC.to_bits() as i64);
    let e = b.ins().iadd(nb, bias);
    let scale_bits = b.ins().ishl_imm_s(e, 23);
    let scale = b.ins().bitcast(ty, bits(), scale_bits);
    b.ins().fmul(p, scale)
}

/// ln x for x > 0 (normal): x = 2^e m with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) with
/// s = (m - 1) / (m + 1), |s| < 0.172, to s^11. Zero gives -inf; negatives and NaN give NaN.
pub fn log(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let it = int_type(ty);
    let xb = b.ins().bitcast(it, bits(), x);
    // Subtracting sqrt(1/2)'s bits centres the mantissa range on 1.
    let offset = int_constant(b, ty, 0x3f35_04f3);
    let shifted = b.ins().isub(xb, offset);
    let e = b.ins().sshr_imm_s(shifted, 23);
    let e_bits = b.ins().ishl_imm_s(e, 23);
    let mb = b.ins().isub(xb, e_bits);
    let m = b.ins().bitcast(ty, bits(), mb);
    let one = constant(b, ty, 1.0);
    let num = b.ins().fsub(m, one);
    let den = b.ins().fadd(m, one);
    let s = b.ins().fdiv(num, den);
    let s2 = b.ins().fmul(s, s);
    let p = poly(b, ty, s2, &LOG_POLY);
    let lm = b.ins().fmul(s, p);
    let ef = b.ins().fcvt_from_sint(ty, e);
    let ln2 = constant(b, ty, std::f32::consts::LN_2);
    let el = b.ins().fmul(ef, ln2);
    let y = b.ins().fadd(el, lm);
    // Edges: ln 0 = -inf, ln(negative or NaN) = NaN, ln inf = inf.
    let zero = constant(b, ty, 0.0);
    let inf = constant(b, ty, f32::INFINITY);
    let neg_inf = constant(b, ty, f32::NEG_INFINITY);
    let nan = constant(b, ty, f32::NAN);
    let is_zero = b.ins().fcmp(FloatCC::Equal, x, zero);
    let y = select(b, ty, is_zero, neg_inf, y);
    let is_inf = b.ins().fcmp(FloatCC::Equal, x, inf);
    let y = select(b, ty, is_inf, inf, y);
    let bad = b.ins().fcmp(FloatCC::UnorderedOrLessThan, x, zero);
    select(b, ty, bad, nan, y)
}

/// `1 - 2 / (e^2x + 1)`, and the odd Taylor series below |x| = 0.25, where the former
/// cancels (relative error < 5e-7 everywhere).
pub fn tanh(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let two_x = b.ins().fadd(x, x);
    let e = exp(b, ty, two_x);
    let one = constant(b, ty, 1.0);
    let two = constant(b, ty, 2.0);
    let d = b.ins().fadd(e, one);
    let q = b.ins().fdiv(two, d);
    let large = b.ins().fsub(one, q);
    // x (1 - x^2/3 + 2x^4/15 - 17x^6/315 + 62x^8/2835)
    let x2 = b.ins().fmul(x, x);
    let p = poly(b, ty, x2, &TANH_SMALL_POLY);
    let small = b.ins().fmul(x, p);
    let ax = b.ins().fabs(x);
    let limit = constant(b, ty, 0.25);
    let is_small = b.ins().fcmp(FloatCC::LessThan, ax, limit);
    select(b, ty, is_small, small, large)
}

/// 1 / (1 + e^-x)
pub fn sigmoid(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let neg = b.ins().fneg(x);
    let e = exp(b, ty, neg);
    let one = constant(b, ty, 1.0);
    let d = b.ins().fadd(one, e);
    let s = b.ins().fdiv(one, d);
    // Where e^-x saturates, 0 exactly, as IEEE's 1 / (1 + inf) gives: x sigmoid(x) at -inf
    // is then NaN, as ONNX Runtime computes it, not -inf.
    let low = constant(b, ty, -EXP_MAX);
    let below = b.ins().fcmp(FloatCC::LessThan, x, low);
    let zero = constant(b, ty, 0.0);
    select(b, ty, below, zero, s)
}

/// erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (outside, erf(+-4) = +-1 in f32): a rational
/// minimax fit (degrees 13 over 8, the form XLA and Eigen use for f32), one division and no
/// exp.
pub fn erf(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let x = clamp(b, ty, x, -4.0, 4.0);
    let x2 = b.ins().fmul(x, x);
    let p = poly(b, ty, x2, &ERF_P);
    let p = b.ins().fmul(x, p);
    let q = poly(b, ty, x2, &ERF_Q);
    b.ins().fdiv(p, q)
}

/// `act` of `x`, as `crate::vmath` computes it at full width: the same expansions.
pub fn activate(b: &mut FunctionBuilder, ty: Type, act: Activation, x: Value) -> Value {
    let (half, one, zero) = (constant(b, ty, 0.5), constant(b, ty, 1.0), constant(b, ty, 0.0));
    // min(max(t, 0), 1) with NaN kept.
    let unit = |b: &mut FunctionBuilder, t: Value| clamp(b, ty, t, 0.0, 1.0);
    let softplus = |b: &mut FunctionBuilder, x: Value| {
        // max(x, 0) + ln(1 + e^-|x|): no overflow for large x.
        let below = b.ins().fcmp(FloatCC::LessThan, x, zero);
        let positive = select(b, ty, below, zero, x);
        let a = b.ins().fabs(x);
        let na = b.ins().fneg(a);
        let e = exp(b, ty, na);
        let s = b.ins().fadd(one, e);
        let l = log(b, ty, s);
        b.ins().fadd(positive, l)
    };
    match act {
        Activation::Exp => exp(b, ty, x),
        Activation::Sigmoid => sigmoid(b, ty, x),
        Activation::Tanh => tanh(b, ty, x),
        Activation::Erf => erf(b, ty, x),
        Activation::Silu => {
            let s = sigmoid(b, ty, x);
            b.ins().fmul(x, s)
        }
        Activation::Gelu => {
            let c = constant(b, ty, std::f32::consts::FRAC_1_SQRT_2);
            let u = b.ins().fmul(x, c);
            let e = erf(b, ty, u);
            let p = b.ins().fadd(e, one);
            let hx = b.ins().fmul(x, half);
            b.ins().fmul(hx, p)
        }
        Activation::GeluTanh => {
            let x2 = b.ins().fmul(x, x);
            let x3 = b.ins().fmul(x2, x);
            let k = constant(b, ty, 0.044715);
            let kx3 = b.ins().fmul(x3, k);
            let s = b.ins().fadd(x, kx3);
            let c = constant(b, ty, 0.797_884_6);
            let u = b.ins().fmul(s, c);
            let t = tanh(b, ty, u);
            let p = b.ins().fadd(t, one);
            let hx = b.ins().fmul(x, half);
            b.ins().fmul(hx, p)
        }
        Activation::RoundToGrid { scale, lo, hi } => {
            let k = constant(b, ty, scale);
            let steps = b.ins().fdiv(x, k);
            let steps = b.ins().nearest(steps);
            let steps = clamp(b, ty, steps, lo, hi);
            b.ins().fmul(steps, k)
        }
        Activation::HardSigmoid { alpha, beta } => {
            let a = constant(b, ty, alpha);
            let ax = b.ins().fmul(x, a);
            let bb = constant(b, ty, beta);
            let t = b.ins().fadd(ax, bb);
            unit(b, t)
        }
        Activation::HardSwish => {
            let a = constant(b, ty, 1.0 / 6.0);
            let ax = b.ins().fmul(x, a);
            let t = b.ins().fadd(ax, half);
            let u = unit(b, t);
            b.ins().fmul(x, u)
        }
        Activation::Softplus => softplus(b, x),
        Activation::Mish => {
            let sp = softplus(b, x);
            let t = tanh(b, ty, sp);
            b.ins().fmul(x, t)
        }
    }
}

/// A binary operation two values combine with (reductions, pool windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    Add,
    Mul,
    Max,
    Min,
}

impl Combine {
    pub fn apply(self, b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
        match self {
            Combine::Add => b.ins().fadd(x, y),
            Combine::Mul => b.ins().fmul(x, y),
            Combine::Max => b.ins().fmax(x, y),
            Combine::Min => b.ins().fmin(x, y),
        }
    }

    /// The value that leaves the other unchanged.
    pub fn identity(self) -> f32 {
        match self {
            Combine::Add => 0.0,
            Combine::Mul => 1.0,
            Combine::Max => f32::NEG_INFINITY,
            Combine::Min => f32::INFINITY,
        }
    }

    /// The four lanes of `v` combined pairwise, then with the scalar `s`.
    pub fn across(self, b: &mut FunctionBuilder, v: Value, s: Value) -> Value {
        let lanes: Vec<Value> = (0..4).map(|i| b.ins().extractlane(v, i)).collect();
        let lo = self.apply(b, lanes[0], lanes[1]);
        let hi = self.apply(b, lanes[2], lanes[3]);
        let all = self.apply(b, lo, hi);
        self.apply(b, all, s)
    }
}
