//! Reference semantics of every smelt op, on materialized tensors (`Literal`): plain loops,
//! f64 arithmetic for floats (accumulation included), i64 for integers. The one definition of
//! what an op computes: fold hooks call it on constants, the runtime's reference interpreter
//! calls it on values, and tests use it as the oracle for kernels and rewrites.

use super::infer::{normalize_axis, reshape_target, resize_plan, slice_bounds};
use super::{names, OpView};
use crate::attributes::Attribute;
use crate::ir::{Module, OpId};
use crate::literal::{Data, Literal};
use crate::types::{Dim, ElementType};

type R<T> = Result<T, String>;

/// Row-major strides of `shape`.
pub fn strides(shape: &[u64]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1] as usize;
    }
    s
}

fn count(shape: &[u64]) -> usize {
    shape.iter().product::<u64>() as usize
}

/// A literal of `shape` whose elements are `x`'s elements at `sources`, in order (data movement).
fn pick(x: &Literal, shape: Vec<u64>, sources: impl Iterator<Item = usize>) -> Literal {
    let data = match &x.data {
        Data::F(v) => Data::F(sources.map(|i| v[i]).collect()),
        Data::I(v) => Data::I(sources.map(|i| v[i]).collect()),
    };
    let picked = Literal { shape, element: x.element, data };
    debug_assert_eq!(picked.len(), count(&picked.shape));
    picked
}

fn floats(shape: Vec<u64>, element: ElementType, values: Vec<f64>) -> Literal {
    let data =
        if element.is_float() { Data::F(values) } else { Data::I(values.into_iter().map(|v| v as i64).collect()) };
    Literal { shape, element, data }
}

/// Rounds floats to what the element type can hold, as a real kernel's output would be.
fn round_to(mut l: Literal) -> Literal {
    if let Data::F(v) = &mut l.data {
        match l.element {
            ElementType::F32 => v.iter_mut().for_each(|x| *x = *x as f32 as f64),
            ElementType::F16 => v.iter_mut().for_each(|x| *x = half::f16::from_f64(*x).to_f64()),
            ElementType::BF16 => v.iter_mut().for_each(|x| *x = half::bf16::from_f64(*x).to_f64()),
            e => {
                if let Some(f) = crate::minifloat::format(e) {
                    v.iter_mut().for_each(|x| *x = f.decode(f.encode(*x, true)));
                }
            }
        }
    }
    l
}

/// Evaluates `op` on `inputs` (one literal per operand) by its table entry's semantics.
/// `smelt.kernel` has none: interpreters evaluate its body.
pub fn evaluate(m: &Module, id: OpId, inputs: &[&Literal]) -> R<Vec<Literal>> {
    let v = OpView::new(m, id);
    let name = v.def().name;
    let f = v.def().eval.ok_or_else(|| format!("'{name}' has no reference semantics"))?;
    if inputs.len() != v.operands().len() {
        return Err(format!("'{name}' takes {} operands, {} given", v.operands().len(), inputs.len()));
    }
    f(&v, inputs)
}

/// The element type of result `i`.
fn element(v: &OpView, i: usize) -> ElementType {
    v.result_type(i).element().unwrap_or(ElementType::F32)
}

/// The literal in operand slot `name`, if that slot is filled.
fn slot<'l>(v: &OpView, x: &[&'l Literal], name: &str) -> Option<&'l Literal> {
    v.slot(name).map(|i| x[i])
}

/// A float map of one operand, rounded to the result type (integers are mapped as floats).
pub fn map(v: &OpView, x: &[&Literal], f: fn(f64) -> f64) -> R<Vec<Literal>> {
    map_with(v, x, f)
}

/// A map with separate float and integer functions (integers stay exact).
pub fn map_int(v: &OpView, x: &[&Literal], f: fn(f64) -> f64, g: fn(i64) -> i64) -> R<Vec<Literal>> {
    match &x[0].data {
        Data::I(values) => Ok(vec![Literal {
            shape: x[0].shape.clone(),
            element: element(v, 0),
            data: Data::I(values.iter().map(|&a| g(a)).collect()),
        }]),
        _ => map(v, x, f),
    }
}

fn map_with(v: &OpView, x: &[&Literal], f: impl Fn(f64) -> f64) -> R<Vec<Literal>> {
    let a = x[0];
    Ok(vec![round_to(floats(a.shape.clone(), element(v, 0), a.to_f64().iter().map(|&e| f(e)).collect()))])
}

/// A broadcast binary op, rounded to the result type; integer functions refuse with `None`.
fn bin(v: &OpView, x: &[&Literal], f: fn(f64, f64) -> f64, g: fn(i64, i64) -> Option<i64>) -> R<Vec<Literal>> {
    let r = binary(x[0], x[1], element(v, 0), f, g)
        .ok_or_else(|| format!("'{}': integer overflow or division by zero", v.def().name))?;
    Ok(vec![round_to(r)])
}

pub(super) fn add(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    bin(v, x, |a, b| a + b, i64::checked_add)
}

pub(super) fn sub(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    bin(v, x, |a, b| a - b, i64::checked_sub)
}

/// ONNX Mod: `fmod = 1` is C's fmod (the sign of the dividend; floats must use it);
/// `fmod = 0` takes the sign of the divisor, as Python's `%`. Division by zero is refused.
pub(super) fn modulo(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    if v.int("fmod") != 0 {
        bin(v, x, |a, b| a % b, |a, b| (b != 0).then(|| a.wrapping_rem(b)))
    } else {
        let python = |a: f64, b: f64| {
            let r = a % b;
            if r != 0.0 && (r < 0.0) != (b < 0.0) {
                r + b
            } else {
                r
            }
        };
        bin(v, x, python, |a, b| {
            let r = a.checked_rem(b).or((b == -1).then_some(0))?;
            Some(if r != 0 && (r < 0) != (b < 0) { r + b } else { r })
        })
    }
}

/// Local response normalization across channels (axis 1): `x / (bias + alpha / size * sum of
/// x^2 over the channels c - (size - 1) / 2 ..= c + size / 2)^beta`.
pub(super) fn lrn(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let size = v.int("size");
    let (alpha, beta, bias) = (v.float("alpha"), v.float("beta"), v.float("bias"));
    let (n, c) = (a.shape[0] as usize, a.shape[1] as usize);
    let plane: usize = a.shape[2..].iter().map(|&d| d as usize).product();
    let data = a.to_f64();
    let (before, after) = ((size as usize - 1) / 2, size as usize / 2);
    let mut out = vec![0.0; data.len()];
    for b in 0..n {
        for ch in 0..c {
            let window = ch.saturating_sub(before)..(ch + after + 1).min(c);
            for p in 0..plane {
                let at = |k: usize| data[(b * c + k) * plane + p];
                let sum: f64 = window.clone().map(|k| at(k) * at(k)).sum();
                out[(b * c + ch) * plane + p] = at(ch) / (bias + alpha / size as f64 * sum).powf(beta);
            }
        }
    }
    Ok(vec![round_to(floats(a.shape.clone(), element(v, 0), out))])
}

/// For each element of `x`, the index of its scale and zero point: 0 for per-tensor
/// parameters (one element), its coordinate along `axis` for per-axis ones.
fn quantization_channels(v: &OpView, x: &Literal, params: &Literal) -> R<Vec<usize>> {
    if params.len() <= 1 {
        return Ok(vec![0; x.len()]);
    }
    let axis = normalize_axis(v.int("axis"), x.shape.len())?;
    let inner: usize = x.shape[axis + 1..].iter().product::<u64>() as usize;
    let extent = x.shape[axis] as usize;
    Ok((0..x.len()).map(|i| i / inner.max(1) % extent.max(1)).collect())
}

/// ONNX QuantizeLinear: `saturate(round_half_even(x / scale) + zero_point)`, the division in
/// the input's precision (f32), as ONNX Runtime computes it.
pub(super) fn quantize_linear(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (a, scale, zero) = (x[0], x[1].to_f64(), x[2].to_f64());
    let out = element(v, 0);
    let (lo, hi) = (out.lowest(), out.highest());
    let channels = quantization_channels(v, a, x[1])?;
    let values = a.to_f64();
    let data = values
        .iter()
        .zip(&channels)
        .map(|(&e, &k)| {
            let q = ((e as f32) / (scale[k] as f32)).round_ties_even() as f64 + zero[k];
            q.clamp(lo, hi) as i64
        })
        .collect();
    Ok(vec![Literal { shape: a.shape.clone(), element: out, data: Data::I(data) }])
}

/// ONNX DequantizeLinear: `(x - zero_point) * scale`.
pub(super) fn dequantize_linear(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (a, scale, zero) = (x[0], x[1].to_f64(), x[2].to_f64());
    let channels = quantization_channels(v, a, x[1])?;
    let values = a.to_f64();
    let out = values.iter().zip(&channels).map(|(&e, &k)| (e - zero[k]) * scale[k]).collect();
    Ok(vec![round_to(floats(a.shape.clone(), element(v, 0), out))])
}

pub(super) fn mul(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    bin(v, x, |a, b| a * b, i64::checked_mul)
}

pub(super) fn div(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let out = bin(v, x, |a, b| a / b, i64::checked_div)?;
    // MIN / -1 of a narrower type leaves its range (ONNX Runtime traps on it): an error, not
    // a wrapped or out-of-range value.
    let e = element(v, 0);
    if let (Data::I(values), true) = (&out[0].data, e.is_integer() && e.byte_size() < 8) {
        let bits = e.byte_size() as u32 * 8;
        let signed = !matches!(e, ElementType::U8 | ElementType::U16 | ElementType::U32);
        let (lo, hi) = if signed { (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1) } else { (0, (1i64 << bits) - 1) };
        if let Some(bad) = values.iter().find(|&&q| q < lo || q > hi) {
            return Err(format!("'{}': the quotient {bad} overflows {e}", v.def().name));
        }
    }
    Ok(out)
}

pub(super) fn max(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    bin(v, x, nan_max, |a, b| Some(a.max(b)))
}

pub(super) fn min(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    bin(v, x, nan_min, |a, b| Some(a.min(b)))
}

pub(super) fn pow(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let r = binary(x[0], x[1], element(v, 0), f64::powf, |a, b| u32::try_from(b).ok().and_then(|b| a.checked_pow(b)))
        .ok_or("'smelt.pow': integer overflow")?;
    Ok(vec![round_to(r)])
}

pub(super) fn prelu(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    bin(v, x, |a, s| if a < 0.0 { s * a } else { a }, |a, s| Some(if a < 0 { s * a } else { a }))
}

/// `equal`, `less` and `greater`, compared in the operands' own domain: i64 beyond 2^53 must
/// not round.
pub(super) fn compare(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    type Compare<T> = fn(T, T) -> bool;
    let (f, g): (Compare<f64>, Compare<i64>) = match v.def().name {
        names::EQUAL => (|a, b| a == b, |a, b| a == b),
        names::LESS => (|a, b| a < b, |a, b| a < b),
        _ => (|a, b| a > b, |a, b| a > b),
    };
    let (a, b) = (x[0], x[1]);
    let r = match (&a.data, &b.data) {
        (Data::I(_), Data::I(_)) => binary(a, b, ElementType::I1, |_, _| 0.0, |p, q| Some(i64::from(g(p, q)))),
        _ => binary(a, b, ElementType::I1, |p, q| f64::from(u8::from(f(p, q))), |_, _| None),
    };
    Ok(vec![r.ok_or("comparison failed")?])
}

pub(super) fn select(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (c, a, b) = (x[0], x[1], x[2]);
    let shape = broadcast_shape(&[&c.shape, &a.shape, &b.shape])?;
    let ci = c.to_i64();
    let walk = || {
        let [ci, ai, bi] = [&c.shape, &a.shape, &b.shape].map(|s| broadcast_offsets(s, &shape));
        ci.zip(ai).zip(bi)
    };
    let data = match (&a.data, &b.data) {
        (Data::I(av), Data::I(bv)) => {
            Data::I(walk().map(|((c, i), j)| if ci[c] != 0 { av[i] } else { bv[j] }).collect())
        }
        _ => {
            let (av, bv) = (a.to_f64(), b.to_f64());
            Data::F(walk().map(|((c, i), j)| if ci[c] != 0 { av[i] } else { bv[j] }).collect())
        }
    };
    Ok(vec![Literal { shape: shape.clone(), element: element(v, 0), data }])
}

/// The larger of `a` and `b`, NaN where either is (IEEE maximum, as ONNX Runtime computes;
/// `f64::max` would drop the NaN).
pub(super) fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The smaller of `a` and `b`, NaN where either is.
pub(super) fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

pub(super) fn relu(a: f64) -> f64 {
    nan_max(a, 0.0)
}

/// log(1 + e^x), exact where e^x would overflow.
pub(super) fn softplus(a: f64) -> f64 {
    if a > 30.0 {
        a
    } else {
        a.exp().ln_1p()
    }
}

pub(super) fn sigmoid(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

pub(super) fn gelu(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    if v.string_attr("approximate") == "tanh" {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        map_with(v, x, move |a| 0.5 * a * (1.0 + (c * (a + 0.044715 * a * a * a)).tanh()))
    } else {
        map(v, x, |a| 0.5 * a * (1.0 + libm::erf(a / std::f64::consts::SQRT_2)))
    }
}

pub(super) fn hardsigmoid(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (alpha, beta) = (v.float("alpha"), v.float("beta"));
    map_with(v, x, move |a| (alpha * a + beta).clamp(0.0, 1.0))
}

pub(super) fn leaky_relu(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let alpha = v.float("alpha");
    map_with(v, x, move |a| if a < 0.0 { alpha * a } else { a })
}

pub(super) fn elu(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let alpha = v.float("alpha");
    map_with(v, x, move |a| if a < 0.0 { alpha * (a.exp() - 1.0) } else { a })
}

pub(super) fn selu(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (alpha, gamma) = (v.float("alpha"), v.float("gamma"));
    map_with(v, x, move |a| gamma * if a <= 0.0 { alpha * (a.exp() - 1.0) } else { a })
}

pub(super) fn clip(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let lo = slot(v, x, "min").map_or(f64::NEG_INFINITY, |l| l.to_f64()[0]);
    let hi = slot(v, x, "max").map_or(f64::INFINITY, |l| l.to_f64()[0]);
    match &x[0].data {
        Data::I(values) => Ok(vec![Literal {
            shape: x[0].shape.clone(),
            element: element(v, 0),
            data: Data::I(values.iter().map(|&a| (a as f64).max(lo).min(hi) as i64).collect()),
        }]),
        _ => map_with(v, x, move |a| nan_min(nan_max(a, lo), hi)),
    }
}

pub(super) fn cast(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (a, out) = (x[0], element(v, 0));
    let data = match (out.is_float(), &a.data) {
        (true, _) => Data::F(a.to_f64().into_owned()),
        (false, Data::I(values)) if out == ElementType::I1 => {
            Data::I(values.iter().map(|&e| i64::from(e != 0)).collect())
        }
        (false, Data::I(values)) => Data::I(values.iter().map(|&e| wrap_int(e, out)).collect()),
        (false, Data::F(values)) if out == ElementType::I1 => {
            Data::I(values.iter().map(|&e| i64::from(e != 0.0)).collect())
        }
        (false, Data::F(values)) => Data::I(values.iter().map(|&e| wrap_int(e as i64, out)).collect()),
    };
    if let (Some(format), Data::F(values)) = (crate::minifloat::format(out), &data) {
        let mode = v.string("round_mode").unwrap_or("up");
        let mode = crate::minifloat::RoundMode::parse(mode).ok_or_else(|| format!("unknown round_mode '{mode}'"))?;
        let saturate = v.bool("saturate");
        let rounded = values.iter().map(|&e| format.decode(format.encode_rounded(e, saturate, mode))).collect();
        return Ok(vec![Literal { shape: a.shape.clone(), element: out, data: Data::F(rounded) }]);
    }
    Ok(vec![round_to(Literal { shape: a.shape.clone(), element: out, data })])
}

pub(super) fn identity(_: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    Ok(vec![x[0].clone()])
}

pub(super) fn dropout(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let mut out = vec![a.clone()];
    if v.module.op(v.id).results().len() == 2 {
        out.push(Literal { shape: a.shape.clone(), element: ElementType::I1, data: Data::I(vec![1; a.len()]) });
    }
    Ok(out)
}

pub(super) fn batch_norm(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (a, scale, bias, mean, var) = (x[0], x[1], x[2], x[3], x[4]);
    let eps = v.float("epsilon");
    let (s, b, mu, var) = (scale.to_f64(), bias.to_f64(), mean.to_f64(), var.to_f64());
    let c = a.shape.get(1).copied().unwrap_or(1) as usize;
    let inner: usize = a.shape.iter().skip(2).product::<u64>() as usize;
    let values: Vec<f64> = a
        .to_f64()
        .iter()
        .enumerate()
        .map(|(i, &xv)| {
            let ch = (i / inner.max(1)) % c.max(1);
            (xv - mu[ch]) / (var[ch] + eps).sqrt() * s[ch] + b[ch]
        })
        .collect();
    Ok(vec![round_to(floats(a.shape.clone(), element(v, 0), values))])
}

pub(super) fn matmul(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    Ok(vec![round_to(matmul_of(x[0], x[1], element(v, 0))?)])
}

pub(super) fn attention(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let out = element(v, 0);
    let scores = matmul_of(x[0], x[1], out)?;
    let scale = floats(vec![], out, vec![v.float("scale")]);
    let mut scores = binary(&scores, &scale, out, |a, b| a * b, |_, _| None).ok_or("bad scores")?;
    if let Some(mask) = slot(v, x, "mask") {
        scores =
            binary(&scores, mask, out, |a, b| a + b, |_, _| None).ok_or("mask does not broadcast to the scores")?;
    }
    let axis = scores.shape.len() - 1;
    Ok(vec![round_to(matmul_of(&softmax_of(&scores, axis, false, out), x[2], out)?)])
}

pub(super) fn global_pool(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let axes: Vec<usize> = (2..a.shape.len()).collect();
    let kind = if v.def().name == names::GLOBAL_MAX_POOL { Reduce::Max } else { Reduce::Mean };
    Ok(vec![round_to(reduce_of(a, &axes, true, kind)?)])
}

pub(super) fn reduce(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let axes: Vec<i64> = slot(v, x, "axes").map(Literal::to_i64).unwrap_or_default();
    if axes.is_empty() && v.bool("noop_with_empty_axes") {
        return Ok(vec![a.clone()]);
    }
    let axes: Vec<usize> = if axes.is_empty() {
        (0..a.shape.len()).collect()
    } else {
        axes.iter().map(|&ax| normalize_axis(ax, a.shape.len())).collect::<R<_>>()?
    };
    let kind = match v.def().name {
        names::REDUCE_MEAN => Reduce::Mean,
        names::REDUCE_SUM => Reduce::Sum,
        names::REDUCE_MAX => Reduce::Max,
        names::REDUCE_MIN => Reduce::Min,
        _ => Reduce::Prod,
    };
    Ok(vec![round_to(reduce_of(a, &axes, v.bool("keepdims"), kind)?)])
}

/// `softmax` and `log_softmax`.
pub(super) fn softmax(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let axis = normalize_axis(v.int("axis"), a.shape.len())?;
    Ok(vec![round_to(softmax_of(a, axis, v.def().name == names::LOG_SOFTMAX, element(v, 0)))])
}

/// The mean of `values` and 1 / sqrt(variance + eps): what normalizations subtract and scale by.
fn standardizer(values: &[f64], eps: f64) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|e| (e - mean) * (e - mean)).sum::<f64>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

pub(super) fn layer_norm(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let axis = normalize_axis(v.int("axis"), a.shape.len())?;
    let eps = v.float("epsilon");
    let inner: usize = a.shape[axis..].iter().product::<u64>() as usize;
    let (values, s) = (a.to_f64(), x[1].to_f64());
    let b = slot(v, x, "bias").map(Literal::to_f64);
    let mut out = vec![0.0; values.len()];
    for (row, chunk) in values.chunks(inner.max(1)).enumerate() {
        let (mean, inv) = standardizer(chunk, eps);
        for (j, &xv) in chunk.iter().enumerate() {
            let y = (xv - mean) * inv * s[j % s.len()];
            out[row * inner + j] = y + b.as_ref().map_or(0.0, |b| b[j % b.len()]);
        }
    }
    Ok(vec![round_to(floats(a.shape.clone(), element(v, 0), out))])
}

pub(super) fn group_norm(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let (groups, eps) = (v.int("num_groups") as usize, v.float("epsilon"));
    let (channels, plane) = (a.shape[1] as usize, a.shape[2..].iter().product::<u64>() as usize);
    let (values, scale, bias) = (a.to_f64(), x[1].to_f64(), x[2].to_f64());
    let per_group = channels / groups * plane;
    let mut out = vec![0.0; values.len()];
    for (row, chunk) in values.chunks(per_group.max(1)).enumerate() {
        let (mean, inv) = standardizer(chunk, eps);
        for (j, &xv) in chunk.iter().enumerate() {
            let c = (row % groups) * (channels / groups) + j / plane;
            out[row * per_group + j] = (xv - mean) * inv * scale[c] + bias[c];
        }
    }
    Ok(vec![round_to(floats(a.shape.clone(), element(v, 0), out))])
}

/// Transposed convolution by scattering: input pixel (i, j) of channel ci adds
/// `x * w[ci, co, ki, kj]` at output (i s - pad + ki d, j s - pad + kj d) of each channel co of
/// its group.
pub(super) fn conv_transpose(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (a, w) = (x[0], x[1]);
    let out_shape = v.result_type(0).as_tensor().and_then(|t| t.static_shape()).ok_or("needs a static result")?;
    let [n, cin, h, wd] = a.shape[..] else { return Err("expects a 4-D input".into()) };
    let [_, cog, kh, kw] = w.shape[..] else { return Err("expects a 4-D weight".into()) };
    let (oh, ow) = (out_shape[2] as i64, out_shape[3] as i64);
    let group = v.int("group") as u64;
    let (s, d, p) = (v.each("strides", 2), v.each("dilations", 2), v.each("pads", 4));
    let (xv, wv) = (a.to_f64(), w.to_f64());
    let cout = cog * group;
    let mut out = vec![0.0; (n * cout) as usize * (oh * ow) as usize];
    let cig = cin / group;
    for b in 0..n {
        for ci in 0..cin {
            let g = ci / cig;
            for i in 0..h {
                for j in 0..wd {
                    let xval = xv[(((b * cin + ci) * h + i) * wd + j) as usize];
                    for col in 0..cog {
                        let co = g * cog + col;
                        for ki in 0..kh {
                            let y = i as i64 * s[0] - p[0] + ki as i64 * d[0];
                            if y < 0 || y >= oh {
                                continue;
                            }
                            for kj in 0..kw {
                                let xo = j as i64 * s[1] - p[1] + kj as i64 * d[1];
                                if xo < 0 || xo >= ow {
                                    continue;
                                }
                                let wval = wv[(((ci * cog + col) * kh + ki) * kw + kj) as usize];
                                out[(((b * cout + co) as i64 * oh + y) * ow + xo) as usize] += xval * wval;
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(bias) = slot(v, x, "bias").map(Literal::to_f64) {
        for (k, e) in out.iter_mut().enumerate() {
            *e += bias[k / (oh * ow) as usize % cout as usize];
        }
    }
    Ok(vec![round_to(floats(out_shape, element(v, 0), out))])
}

pub(super) fn transpose(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let rank = a.shape.len();
    let perm: Vec<usize> = match v.ints("perm") {
        Some(p) => p.iter().map(|&p| p as usize).collect(),
        None => (0..rank).rev().collect(),
    };
    let out: Vec<u64> = perm.iter().map(|&p| a.shape[p]).collect();
    let src = strides(&a.shape);
    let walk = StridedWalk::new(0, &out, perm.iter().map(|&p| src[p] as isize).collect());
    Ok(vec![pick(a, out, walk)])
}

/// `reshape`, `flatten`, `squeeze` and `unsqueeze`: the same elements under another shape.
pub(super) fn reshape(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let name = v.def().name;
    let shape: Vec<u64> = match name {
        names::RESHAPE => {
            let dims: Vec<Dim> = a.shape.iter().map(|&d| Dim::Known(d)).collect();
            reshape_target(&dims, &x[1].to_i64(), v.bool("allowzero"))?.iter().map(|d| d.known().unwrap_or(0)).collect()
        }
        names::FLATTEN => {
            let axis = v.int("axis");
            let axis = if axis < 0 { axis + a.shape.len() as i64 } else { axis } as usize;
            vec![a.shape[..axis].iter().product(), a.shape[axis..].iter().product()]
        }
        names::SQUEEZE => {
            let axes: Vec<usize> = match slot(v, x, "axes") {
                Some(l) => l.to_i64().iter().map(|&ax| normalize_axis(ax, a.shape.len())).collect::<R<_>>()?,
                None => (0..a.shape.len()).filter(|&i| a.shape[i] == 1).collect(),
            };
            a.shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| *d).collect()
        }
        _ => {
            let rank = a.shape.len() + x[1].len();
            let axes: Vec<usize> = x[1].to_i64().iter().map(|&ax| normalize_axis(ax, rank)).collect::<R<_>>()?;
            let mut rest = a.shape.iter();
            (0..rank).map(|i| if axes.contains(&i) { 1 } else { *rest.next().unwrap_or(&1) }).collect()
        }
    };
    if count(&shape) != a.len() {
        return Err(format!("'{name}' cannot give {} elements the shape {shape:?}", a.len()));
    }
    Ok(vec![Literal { shape, element: a.element, data: a.data.clone() }])
}

pub(super) fn concat(v: &OpView, parts: &[&Literal]) -> R<Vec<Literal>> {
    let axis = normalize_axis(v.int("axis"), parts[0].shape.len())?;
    let mut shape = parts[0].shape.clone();
    shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
    let outer: usize = shape[..axis].iter().product::<u64>() as usize;
    let mut out = Vec::new();
    for o in 0..outer {
        for (i, p) in parts.iter().enumerate() {
            let inner: usize = p.shape[axis..].iter().product::<u64>() as usize;
            out.push((i, o * inner..(o + 1) * inner));
        }
    }
    let data = if parts[0].element.is_float() {
        let values: Vec<_> = parts.iter().map(|p| p.to_f64()).collect();
        Data::F(out.iter().flat_map(|(i, r)| values[*i][r.clone()].to_vec()).collect())
    } else {
        let values: Vec<Vec<i64>> = parts.iter().map(|p| p.to_i64()).collect();
        Data::I(out.iter().flat_map(|(i, r)| values[*i][r.clone()].to_vec()).collect())
    };
    Ok(vec![Literal { shape, element: parts[0].element, data }])
}

pub(super) fn split(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let axis = normalize_axis(v.int("axis"), a.shape.len())?;
    let n = v.module.op(v.id).results().len();
    let total = a.shape[axis] as i64;
    let sizes: Vec<i64> = match slot(v, x, "split") {
        Some(l) => l.to_i64(),
        None => {
            let chunk = (total + n as i64 - 1) / n as i64;
            (0..n as i64).map(|i| chunk.min(total - i * chunk).max(0)).collect()
        }
    };
    let mut start = 0;
    let mut outs = Vec::new();
    for s in sizes {
        let mut shape = a.shape.clone();
        shape[axis] = s as u64;
        let src = strides(&a.shape);
        let walk = StridedWalk::new(start as usize * src[axis], &shape, src.iter().map(|&s| s as isize).collect());
        outs.push(pick(a, shape, walk));
        start += s;
    }
    Ok(outs)
}

pub(super) fn slice(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let (starts, ends) = (x[1].to_i64(), x[2].to_i64());
    let axes = slot(v, x, "axes").map_or_else(|| (0..starts.len() as i64).collect(), Literal::to_i64);
    let steps = slot(v, x, "steps").map_or_else(|| vec![1; starts.len()], Literal::to_i64);
    let rank = a.shape.len();
    let (mut begin, mut step, mut shape) = (vec![0i64; rank], vec![1i64; rank], a.shape.clone());
    for i in 0..starts.len() {
        let ax = normalize_axis(axes[i], rank)?;
        if steps[i] == 0 {
            return Err("slice step is zero".into());
        }
        let (s, e) = slice_bounds(starts[i], ends[i], steps[i], a.shape[ax] as i64);
        let len = if steps[i] > 0 { (e - s + steps[i] - 1) / steps[i] } else { (s - e - steps[i] - 1) / -steps[i] };
        begin[ax] = s;
        step[ax] = steps[i];
        shape[ax] = len.max(0) as u64;
    }
    let src = strides(&a.shape);
    let base = (0..rank).map(|d| begin[d] as usize * src[d]).sum();
    let walk = StridedWalk::new(base, &shape, (0..rank).map(|d| step[d] as isize * src[d] as isize).collect());
    Ok(vec![pick(a, shape, walk)])
}

pub(super) fn gather(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (a, idx) = (x[0], x[1]);
    let axis = normalize_axis(v.int("axis"), a.shape.len())?;
    let extent = a.shape[axis] as i64;
    let indices: Vec<usize> = idx
        .to_i64()
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + extent } else { i };
            (0..extent)
                .contains(&j)
                .then_some(j as usize)
                .ok_or(format!("gather index {i} is out of range for extent {extent}"))
        })
        .collect::<R<_>>()?;
    let inner: usize = a.shape[axis + 1..].iter().product::<u64>() as usize;
    let mut shape = a.shape[..axis].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&a.shape[axis + 1..]);
    let (k, e) = (indices.len(), extent as usize);
    let sources = (0..count(&shape)).map(|i| {
        let (o, rest) = (i / (k * inner), i % (k * inner));
        (o * e + indices[rest / inner]) * inner + rest % inner
    });
    Ok(vec![pick(a, shape, sources)])
}

pub(super) fn gather_elements(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (a, idx) = (x[0], x[1]);
    let axis = normalize_axis(v.int("axis"), a.shape.len())?;
    let extent = a.shape[axis] as i64;
    let iv = idx.to_i64();
    if let Some(bad) = iv.iter().find(|&&i| i < -extent || i >= extent) {
        return Err(format!("gather_elements index {bad} is out of range for extent {extent}"));
    }
    let (src, dst) = (strides(&a.shape), strides(&idx.shape));
    let rank = a.shape.len();
    let sources = (0..iv.len()).map(|i| {
        (0..rank)
            .map(|d| {
                let c =
                    if d == axis { iv[i].rem_euclid(extent) as usize } else { (i / dst[d]) % idx.shape[d] as usize };
                c * src[d]
            })
            .sum()
    });
    Ok(vec![pick(a, idx.shape.clone(), sources)])
}

/// `extents` from data as a shape: every one not negative.
fn data_shape(what: &str, extents: &[i64]) -> R<Vec<u64>> {
    match extents.iter().find(|&&d| d < 0) {
        Some(d) => Err(format!("{what} {extents:?} has a negative entry ({d})")),
        None => Ok(extents.iter().map(|&d| d as u64).collect()),
    }
}

/// Checks that a result of `shape` may be allocated (the reference holds f64 elements).
fn allocatable(v: &OpView, shape: &[u64]) -> R<()> {
    crate::memory::check(&format!("the result of '{}'", v.def().name), shape, 8)
}

pub(super) fn expand(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let target = data_shape("expand shape", &x[1].to_i64())?;
    let shape = broadcast_shape(&[&a.shape, &target])?;
    allocatable(v, &shape)?;
    let sources = broadcast_offsets(&a.shape, &shape);
    Ok(vec![pick(a, shape, sources)])
}

pub(super) fn tile(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let reps = data_shape("tile repeats", &x[1].to_i64())?;
    if reps.len() != a.shape.len() {
        return Err(format!("tile repeats has {} entries for rank {}", reps.len(), a.shape.len()));
    }
    let shape: Vec<u64> = a.shape.iter().zip(&reps).map(|(&d, &r)| d.saturating_mul(r)).collect();
    allocatable(v, &shape)?;
    let (src, dst) = (strides(&a.shape), strides(&shape));
    let rank = shape.len();
    let sources = (0..count(&shape))
        .map(|i| (0..rank).map(|d| ((i / dst[d]) % shape[d] as usize % a.shape[d] as usize) * src[d]).sum());
    Ok(vec![pick(a, shape.clone(), sources)])
}

pub(super) fn shape(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let a = x[0];
    let r = a.shape.len() as i64;
    let clamp = |d: i64| if d < 0 { (d + r).max(0) } else { d.min(r) } as usize;
    let (s, e) = (clamp(v.int("start")), clamp(v.opt_int("end").unwrap_or(r)));
    let dims: Vec<i64> = a.shape[s..e.max(s)].iter().map(|&d| d as i64).collect();
    Ok(vec![Literal::from_i64(vec![dims.len() as u64], ElementType::I64, dims)])
}

pub(super) fn range(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (s, l, d) = (x[0].to_f64()[0], x[1].to_f64()[0], x[2].to_f64()[0]);
    if d == 0.0 {
        return Err("range delta is zero".into());
    }
    let n = ((l - s) / d).ceil().max(0.0);
    if !n.is_finite() {
        return Err(format!("range from {s} to {l} by {d} has no finite length"));
    }
    let n = n as u64;
    allocatable(v, &[n])?;
    let values: Vec<f64> = (0..n).map(|i| s + i as f64 * d).collect();
    Ok(vec![round_to(floats(vec![n], element(v, 0), values))])
}

pub(super) fn constant_of_shape(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let shape = data_shape("constant_of_shape shape", &x[0].to_i64())?;
    allocatable(v, &shape)?;
    let value = match v.attr("value").and_then(Attribute::as_dense) {
        Some(d) => Literal::from_dense(d, &v.module.resources).ok_or("unreadable constant_of_shape value")?.to_f64()[0],
        None => 0.0,
    };
    let n = count(&shape);
    Ok(vec![floats(shape, element(v, 0), vec![value; n])])
}

pub(super) fn constant(v: &OpView, _: &[&Literal]) -> R<Vec<Literal>> {
    let d = v.attr("value").and_then(Attribute::as_dense).ok_or("constant without value")?;
    Ok(vec![Literal::decode(d, &v.module.resources).ok_or("constant is unreadable")?])
}

/// Truncates an integer to the width of `e` (two's complement), as a cast does.
fn wrap_int(v: i64, e: ElementType) -> i64 {
    match e {
        ElementType::I8 => v as i8 as i64,
        ElementType::U8 => v as u8 as i64,
        ElementType::I16 => v as i16 as i64,
        ElementType::U16 => v as u16 as i64,
        ElementType::I32 => v as i32 as i64,
        ElementType::U32 => v as u32 as i64,
        ElementType::I4 => (v << 60) >> 60,
        ElementType::U4 => v & 0xF,
        ElementType::I2 => (v << 62) >> 62,
        ElementType::U2 => v & 0x3,
        _ => v,
    }
}

/// Applies a binary function elementwise with numpy broadcasting. Integer functions return
/// `None` to refuse (overflow, division by zero).
pub fn binary(
    a: &Literal,
    b: &Literal,
    element: ElementType,
    float: impl Fn(f64, f64) -> f64,
    int: impl Fn(i64, i64) -> Option<i64>,
) -> Option<Literal> {
    let shape = broadcast_shape(&[&a.shape, &b.shape]).ok()?;
    let walk = || broadcast_offsets(&a.shape, &shape).zip(broadcast_offsets(&b.shape, &shape));
    let data = match (&a.data, &b.data) {
        (Data::I(x), Data::I(y)) if element.is_integer() => {
            Data::I(walk().map(|(i, j)| int(x[i], y[j])).collect::<Option<_>>()?)
        }
        _ => {
            let (x, y) = (a.to_f64(), b.to_f64());
            let vals = walk().map(|(i, j)| float(x[i], y[j]));
            if element.is_float() {
                Data::F(vals.collect())
            } else {
                Data::I(vals.map(|v| v as i64).collect())
            }
        }
    };
    Some(Literal { shape: shape.clone(), element, data })
}

fn broadcast_shape(shapes: &[&[u64]]) -> R<Vec<u64>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1u64; rank];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(format!("shapes {shapes:?} do not broadcast"));
            }
        }
    }
    Ok(out)
}

/// Walks an index space of `extents` in row-major order, yielding `base + Σ index[d] *
/// strides[d]` for each point: the source offsets of a transpose, slice, split or broadcast.
/// Stepping costs one add per element where the closed form divides once per axis (folding a
/// BatchNorm into ResNet-18's weights spent most of its time in those divisions).
struct StridedWalk {
    extents: Vec<usize>,
    strides: Vec<isize>,
    index: Vec<usize>,
    offset: isize,
    left: usize,
}

impl StridedWalk {
    fn new(base: usize, extents: &[u64], strides: Vec<isize>) -> Self {
        let extents: Vec<usize> = extents.iter().map(|&e| e as usize).collect();
        let left = extents.iter().product();
        StridedWalk { index: vec![0; extents.len()], extents, strides, offset: base as isize, left }
    }
}

impl Iterator for StridedWalk {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.left = self.left.checked_sub(1)?;
        let current = self.offset as usize;
        for d in (0..self.extents.len()).rev() {
            self.index[d] += 1;
            self.offset += self.strides[d];
            if self.index[d] < self.extents[d] {
                break;
            }
            self.offset -= self.strides[d] * self.extents[d] as isize;
            self.index[d] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for StridedWalk {}

/// The offsets in a tensor of `shape` of the elements of its broadcast to `out`, in order.
fn broadcast_offsets(shape: &[u64], out: &[u64]) -> StridedWalk {
    let src = strides(shape);
    let lead = out.len() - shape.len();
    let walk = (0..out.len()).map(|axis| match axis.checked_sub(lead) {
        Some(d) if shape[d] != 1 => src[d] as isize,
        _ => 0,
    });
    StridedWalk::new(0, out, walk.collect())
}

pub(super) fn conv2d(v: &OpView, inputs: &[&Literal]) -> R<Vec<Literal>> {
    Ok(vec![round_to(conv2d_of(v, inputs[0], inputs[1], slot(v, inputs, "bias"))?)])
}

/// `x` rounded to the 8-bit grid of `scale` and `zero` (scalars; the grid's type is the zero
/// point's) as QuantizeLinear rounds (the division in f32), in f32 as DequantizeLinear gives it.
fn on_grid(x: &Literal, scale: &Literal, zero: &Literal) -> Literal {
    let (s, z) = (scale.to_f64()[0] as f32, zero.to_f64()[0]);
    let (lo, hi) = (zero.element.lowest(), zero.element.highest());
    let grid = |e: f64| (((((e as f32) / s).round_ties_even() as f64 + z).clamp(lo, hi) - z) as f32 * s) as f64;
    floats(x.shape.clone(), ElementType::F32, x.to_f64().iter().map(|&e| grid(e)).collect())
}

/// Int8 `w` times `scale` (one value, or one per index `i / every % scale.len()`), in f32.
fn scaled(w: &Literal, scale: &Literal, every: usize) -> Literal {
    let scale = scale.to_f64();
    let at = |i: usize| scale[if scale.len() == 1 { 0 } else { i / every.max(1) % scale.len() }] as f32;
    let values = w.to_f64().iter().enumerate().map(|(i, &q)| (q as f32 * at(i)) as f64).collect();
    floats(w.shape.clone(), ElementType::F32, values)
}

/// `conv2d(dequantize(quantize(x)), weight * w_scale) + bias`: x on its 8-bit grid
/// ([`on_grid`]), then the f32 convolution of the exact values.
pub(super) fn quantized_conv2d(v: &OpView, inputs: &[&Literal]) -> R<Vec<Literal>> {
    let x = on_grid(inputs[0], inputs[2], inputs[3]);
    let per_out = inputs[1].shape.get(1..).map_or(1, |s| s.iter().product::<u64>()) as usize;
    let w = scaled(inputs[1], inputs[4], per_out);
    Ok(vec![round_to(conv2d_of(v, &x, &w, slot(v, inputs, "bias"))?)])
}

/// `matmul(dequantize(quantize(a)), b * b_scale)`, b's scale per column.
pub(super) fn quantized_matmul(_: &OpView, inputs: &[&Literal]) -> R<Vec<Literal>> {
    let a = on_grid(inputs[0], inputs[2], inputs[3]);
    let b = scaled(inputs[1], inputs[4], 1);
    Ok(vec![round_to(matmul_of(&a, &b, ElementType::F32)?)])
}

fn conv2d_of(op: &OpView, x: &Literal, w: &Literal, bias: Option<&Literal>) -> R<Literal> {
    let (xs, ws) = (&x.shape, &w.shape);
    if xs.len() != 4 || ws.len() != 4 {
        return Err("conv2d needs 4-D input and weight".into());
    }
    let g = op.int("group").max(1) as usize;
    let (s, d, p) = (op.each("strides", 2), op.each("dilations", 2), op.each("pads", 4));
    let (n, c, h, wd) = (xs[0] as usize, xs[1] as usize, xs[2] as i64, xs[3] as i64);
    let (co, ci, kh, kw) = (ws[0] as usize, ws[1] as usize, ws[2] as i64, ws[3] as i64);
    if c != ci * g || co % g != 0 {
        return Err("conv2d channels do not match the groups".into());
    }
    let ho = ((h + p[0] + p[2] - d[0] * (kh - 1) - 1) / s[0] + 1).max(0) as usize;
    let wo = ((wd + p[1] + p[3] - d[1] * (kw - 1) - 1) / s[1] + 1).max(0) as usize;
    let (xv, wv) = (x.to_f64(), w.to_f64());
    let bv = bias.map(Literal::to_f64);
    let cog = co / g;
    let mut out = vec![0.0; n * co * ho * wo];
    for b in 0..n {
        for oc in 0..co {
            let grp = oc / cog;
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = bv.as_ref().map_or(0.0, |bv| bv[oc]);
                    for ic in 0..ci {
                        let xc = grp * ci + ic;
                        for ky in 0..kh {
                            let iy = oy as i64 * s[0] - p[0] + ky * d[0];
                            if iy < 0 || iy >= h {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = ox as i64 * s[1] - p[1] + kx * d[1];
                                if ix < 0 || ix >= wd {
                                    continue;
                                }
                                let xi = ((b * c + xc) * h as usize + iy as usize) * wd as usize + ix as usize;
                                let wi = ((oc * ci + ic) * kh as usize + ky as usize) * kw as usize + kx as usize;
                                acc += xv[xi] * wv[wi];
                            }
                        }
                    }
                    out[((b * co + oc) * ho + oy) * wo + ox] = acc;
                }
            }
        }
    }
    Ok(floats(vec![n as u64, co as u64, ho as u64, wo as u64], x.element, out))
}

fn matmul_of(a: &Literal, b: &Literal, element: ElementType) -> R<Literal> {
    let a2: Vec<u64> = if a.shape.len() == 1 { vec![1, a.shape[0]] } else { a.shape.clone() };
    let b2: Vec<u64> = if b.shape.len() == 1 { vec![b.shape[0], 1] } else { b.shape.clone() };
    let (m, k) = (a2[a2.len() - 2] as usize, a2[a2.len() - 1] as usize);
    let (k2, n) = (b2[b2.len() - 2] as usize, b2[b2.len() - 1] as usize);
    if k != k2 {
        return Err(format!("matmul contraction {k} != {k2}"));
    }
    let (ab, bb) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let batch = broadcast_shape(&[ab, bb])?;
    let nb = count(&batch);
    let (ai, bi): (Vec<_>, Vec<_>) = broadcast_offsets(ab, &batch).zip(broadcast_offsets(bb, &batch)).unzip();
    let (av, bv) = (a.to_f64(), b.to_f64());
    let mut out = vec![0.0; nb * m * n];
    for t in 0..nb {
        let (ao, bo) = (ai[t] * m * k, bi[t] * k * n);
        for i in 0..m {
            for j in 0..n {
                out[(t * m + i) * n + j] = (0..k).map(|p| av[ao + i * k + p] * bv[bo + p * n + j]).sum();
            }
        }
    }
    let mut shape = batch.clone();
    if a.shape.len() > 1 {
        shape.push(m as u64);
    }
    if b.shape.len() > 1 {
        shape.push(n as u64);
    }
    Ok(floats(shape, element, out))
}

pub(super) fn gemm(op: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    Ok(vec![round_to(gemm_of(op, x[0], x[1], slot(op, x, "c"), element(op, 0))?)])
}

fn gemm_of(op: &OpView, a: &Literal, b: &Literal, c: Option<&Literal>, element: ElementType) -> R<Literal> {
    let (ta, tb) = (op.bool("trans_a"), op.bool("trans_b"));
    let (alpha, beta) = (op.float("alpha"), op.float("beta"));
    let (m, k) = if ta { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
    let n = if tb { b.shape[0] } else { b.shape[1] };
    let (m, k, n) = (m as usize, k as usize, n as usize);
    let (av, bv) = (a.to_f64(), b.to_f64());
    let at = |i: usize, p: usize| if ta { av[p * m + i] } else { av[i * k + p] };
    let bt = |p: usize, j: usize| if tb { bv[j * k + p] } else { bv[p * n + j] };
    let shape = vec![m as u64, n as u64];
    let cv = c.map(|c| (c.to_f64(), broadcast_offsets(&c.shape, &shape).collect::<Vec<_>>()));
    let out = (0..m * n)
        .map(|o| {
            let (i, j) = (o / n, o % n);
            let dot: f64 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            alpha * dot + cv.as_ref().map_or(0.0, |(cv, idx)| beta * cv[idx[o]])
        })
        .collect();
    Ok(floats(shape.clone(), element, out))
}

/// `max_pool` and `avg_pool`.
pub(super) fn pool(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    Ok(vec![round_to(pool_of(v, x[0], v.def().name == names::MAX_POOL)?.0)])
}

/// Where each window's maximum is: its flat index in the input, row-major (`storage_order`
/// 0) or with the two spatial axes swapped (1), as ONNX's MaxPool Indices output counts; the
/// first of equal maxima.
pub(super) fn max_pool_indices(v: &OpView, x: &[&Literal]) -> R<Vec<Literal>> {
    let (values, indices) = pool_of(v, x[0], true)?;
    Ok(vec![Literal::from_i64(values.shape, ElementType::I64, indices)])
}

/// The pooled values and, for max pooling, each window's argmax ([`max_pool_indices`]).
fn pool_of(op: &OpView, x: &Literal, max: bool) -> R<(Literal, Vec<i64>)> {
    let xs = &x.shape;
    if xs.len() != 4 {
        return Err("pooling needs a 4-D input".into());
    }
    let k = op.each("kernel_shape", 2);
    let (s, d, p) = (op.each("strides", 2), op.each("dilations", 2), op.each("pads", 4));
    let ceil = op.bool("ceil_mode");
    let include_pad = !max && op.bool("count_include_pad");
    let (nc, h, w) = ((xs[0] * xs[1]) as usize, xs[2] as i64, xs[3] as i64);
    let extent = |inp: i64, i: usize| {
        let avail = inp + p[i] + p[i + 2] - d[i] * (k[i] - 1) - 1;
        let mut o = if ceil { (avail + s[i] - 1) / s[i] + 1 } else { avail / s[i] + 1 };
        if ceil && o > 1 && (o - 1) * s[i] >= inp + p[i] {
            o -= 1;
        }
        o.max(0) as usize
    };
    let (ho, wo) = (extent(h, 0), extent(w, 1));
    let v = x.to_f64();
    let column_major = op.def().name == names::MAX_POOL_INDICES && op.int("storage_order") == 1;
    let mut out = vec![0.0; nc * ho * wo];
    let mut argmax = vec![0i64; if max { nc * ho * wo } else { 0 }];
    for plane in 0..nc {
        for oy in 0..ho {
            for ox in 0..wo {
                let (mut acc, mut n, mut padded) = (if max { f64::NEG_INFINITY } else { 0.0 }, 0usize, 0usize);
                let mut best = -1i64;
                for ky in 0..k[0] {
                    let iy = oy as i64 * s[0] - p[0] + ky * d[0];
                    for kx in 0..k[1] {
                        let ix = ox as i64 * s[1] - p[1] + kx * d[1];
                        // Windows may extend past the padded input with ceil_mode; those
                        // positions count for neither average.
                        if iy >= -p[0] && iy < h + p[2] && ix >= -p[1] && ix < w + p[3] {
                            padded += 1;
                        }
                        if iy < 0 || iy >= h || ix < 0 || ix >= w {
                            continue;
                        }
                        let xv = v[(plane * h as usize + iy as usize) * w as usize + ix as usize];
                        if max && (best < 0 || xv > acc) {
                            let within = if column_major { ix * h + iy } else { iy * w + ix };
                            best = plane as i64 * h * w + within;
                        }
                        acc = if max { acc.max(xv) } else { acc + xv };
                        n += 1;
                    }
                }
                out[(plane * ho + oy) * wo + ox] =
                    if max { acc } else { acc / (if include_pad { padded } else { n }).max(1) as f64 };
                if max {
                    argmax[(plane * ho + oy) * wo + ox] = best;
                }
            }
        }
    }
    Ok((floats(vec![xs[0], xs[1], ho as u64, wo as u64], x.element, out), argmax))
}

#[derive(Clone, Copy)]
enum Reduce {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

fn reduce_of(x: &Literal, axes: &[usize], keep: bool, kind: Reduce) -> R<Literal> {
    let out_keep: Vec<u64> = x.shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let (src, dst) = (strides(&x.shape), strides(&out_keep));
    // The identity of each reduction: what an empty reduction returns.
    let init = match kind {
        Reduce::Sum | Reduce::Mean => 0.0,
        Reduce::Prod => 1.0,
        Reduce::Max => x.element.lowest(),
        Reduce::Min => x.element.highest(),
    };
    let mut acc = vec![init; count(&out_keep)];
    let v = x.to_f64();
    for (i, &xv) in v.iter().enumerate() {
        let o: usize = (0..x.shape.len())
            .map(|d| if axes.contains(&d) { 0 } else { (i / src[d]) % x.shape[d] as usize * dst[d] })
            .sum();
        acc[o] = match kind {
            Reduce::Sum | Reduce::Mean => acc[o] + xv,
            Reduce::Prod => acc[o] * xv,
            Reduce::Max => acc[o].max(xv),
            Reduce::Min => acc[o].min(xv),
        };
    }
    if let Reduce::Mean = kind {
        let n: u64 = axes.iter().map(|&a| x.shape[a]).product();
        acc.iter_mut().for_each(|a| *a /= n.max(1) as f64);
    }
    let shape = if keep {
        out_keep
    } else {
        x.shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| *d).collect()
    };
    Ok(floats(shape, x.element, acc))
}

fn softmax_of(x: &Literal, axis: usize, log: bool, element: ElementType) -> Literal {
    let v = x.to_f64();
    let n = x.shape[axis] as usize;
    let inner: usize = x.shape[axis + 1..].iter().product::<u64>() as usize;
    let outer = v.len() / (n * inner).max(1);
    let mut out = vec![0.0; v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            let max = (0..n).map(|j| v[at(j)]).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..n).map(|j| (v[at(j)] - max).exp()).sum();
            for j in 0..n {
                out[at(j)] = if log { v[at(j)] - max - sum.ln() } else { (v[at(j)] - max).exp() / sum };
            }
        }
    }
    floats(x.shape.clone(), element, out)
}

pub(super) fn pad(op: &OpView, inputs: &[&Literal]) -> R<Vec<Literal>> {
    Ok(vec![pad_of(op, inputs)?])
}

fn pad_of(op: &OpView, inputs: &[&Literal]) -> R<Literal> {
    let x = inputs[0];
    let rank = x.shape.len();
    let pads = inputs[1].to_i64();
    let value = slot(op, inputs, "constant_value").map_or(0.0, |l| l.to_f64()[0]);
    let axes: Vec<usize> = match slot(op, inputs, "axes") {
        Some(l) => l.to_i64().iter().map(|&a| normalize_axis(a, rank)).collect::<R<_>>()?,
        None => (0..rank).collect(),
    };
    let (mut before, mut shape) = (vec![0i64; rank], x.shape.clone());
    for (i, &a) in axes.iter().enumerate() {
        before[a] = pads[i];
        shape[a] = (x.shape[a] as i64 + pads[i] + pads[i + axes.len()]).max(0) as u64;
    }
    let mode = op.string_attr("mode");
    let (src, dst) = (strides(&x.shape), strides(&shape));
    let v = x.to_f64();
    let out = (0..count(&shape))
        .map(|i| {
            let mut idx = 0;
            for d in 0..rank {
                let n = x.shape[d] as i64;
                let mut c = ((i / dst[d]) % shape[d] as usize) as i64 - before[d];
                if c < 0 || c >= n {
                    c = match mode {
                        "edge" => c.clamp(0, n - 1),
                        "reflect" if n > 1 => {
                            let period = 2 * (n - 1);
                            let m = c.rem_euclid(period);
                            if m < n {
                                m
                            } else {
                                period - m
                            }
                        }
                        "wrap" => c.rem_euclid(n),
                        _ => return value,
                    };
                }
                idx += c as usize * src[d];
            }
            v[idx]
        })
        .collect();
    Ok(floats(shape, x.element, out))
}

/// One output position of a resampled axis: input indices with weights, or `None` when the
/// position falls outside a `tf_crop_and_resize` box (the extrapolation value).
/// One output index's (input index, weight) pairs; `None` outside a crop.
pub type Taps = Option<Vec<(usize, f64)>>;

pub(super) fn resize(op: &OpView, inputs: &[&Literal]) -> R<Vec<Literal>> {
    Ok(vec![round_to(resize_of(op, inputs)?)])
}

/// One axis of a resize: output index `j` is the weighted sum `taps[j]` of input indices
/// along `axis` (`None`: outside the crop, it takes `fill`).
#[derive(Clone, Debug)]
pub struct ResizeAxis {
    pub axis: usize,
    pub n_in: usize,
    pub n_out: usize,
    pub taps: Vec<Taps>,
    pub fill: f64,
}

impl ResizeAxis {
    /// Whether this axis leaves its input as it is (each output the same-index input).
    pub fn is_identity(&self) -> bool {
        self.n_in == self.n_out
            && self.taps.iter().enumerate().all(|(j, t)| {
                t.as_ref().is_some_and(|t| {
                    t.iter().all(|&(i, w)| i == j || w == 0.0)
                        && t.iter().filter(|t| t.0 == j).map(|t| t.1).sum::<f64>() == 1.0
                })
            })
    }
}

fn resize_of(op: &OpView, inputs: &[&Literal]) -> R<Literal> {
    let x = inputs[0];
    let (out, axes) = resize_axes(op, inputs)?;
    let mut data = x.to_f64().into_owned();
    let mut shape = x.shape.clone();
    for ResizeAxis { axis: d, n_in, n_out, taps, fill } in axes {
        let inner: usize = shape[d + 1..].iter().product::<u64>() as usize;
        let outer: usize = shape[..d].iter().product::<u64>() as usize;
        let mut next = vec![0.0; outer * n_out * inner];
        for o in 0..outer {
            for (j, t) in taps.iter().enumerate() {
                for k in 0..inner {
                    next[(o * n_out + j) * inner + k] = match t {
                        None => fill,
                        Some(t) => t.iter().map(|&(src, w)| w * data[(o * n_in + src) * inner + k]).sum(),
                    };
                }
            }
        }
        data = next;
        shape[d] = n_out as u64;
    }
    debug_assert_eq!(shape, out);
    Ok(floats(shape, x.element, data))
}

/// A resize as separable passes, innermost axis first as ONNX's reference interpolates, and
/// the output shape. Only `inputs[0]`'s shape is read; roi, scales and sizes are the values.
pub fn resize_axes(op: &OpView, inputs: &[&Literal]) -> R<(Vec<u64>, Vec<ResizeAxis>)> {
    let x = inputs[0];
    let rank = x.shape.len();
    let axes: Vec<usize> = match op.ints("axes") {
        Some(a) => a.iter().map(|&a| normalize_axis(a, rank)).collect::<R<_>>()?,
        None => (0..rank).collect(),
    };
    let get = |name: &str| slot(op, inputs, name).cloned();
    let roi = get("roi").map(|l| l.to_f64().into_owned()).unwrap_or_default();
    let scales = get("scales").map(|l| l.to_f64().into_owned()).unwrap_or_default();
    let sizes = get("sizes").map(|l| l.to_i64()).unwrap_or_default();
    let text = |name: &str| op.string_attr(name).to_string();
    let (mode, ctm, nearest) = (text("mode"), text("coordinate_transformation_mode"), text("nearest_mode"));
    let crop = ctm == "tf_crop_and_resize";
    let (out, scale) = resize_plan(&x.shape, &axes, &roi, &scales, &sizes, &text("keep_aspect_ratio_policy"), crop)?;
    let (a, exclude, extrapolation) =
        (op.float("cubic_coeff_a"), op.bool("exclude_outside"), op.float("extrapolation_value"));
    let antialias = op.bool("antialias");
    let mut passes = Vec::new();
    for (i, &d) in axes.iter().enumerate().rev() {
        let (n_in, n_out, s) = (x.shape[d] as usize, out[d] as usize, scale[d]);
        let taps: Vec<Taps> = (0..n_out)
            .map(|o| {
                let o = o as f64;
                // ONNX measures the resized length unrounded (scale x input), as given.
                let (inf, outf) = (n_in as f64, s * n_in as f64);
                let xo = match ctm.as_str() {
                    "half_pixel" => (o + 0.5) / s - 0.5,
                    "half_pixel_symmetric" => {
                        let adjustment = n_out as f64 / outf;
                        inf / 2.0 * (1.0 - adjustment) + (o + 0.5) / s - 0.5
                    }
                    "pytorch_half_pixel" => {
                        if outf > 1.0 {
                            (o + 0.5) / s - 0.5
                        } else {
                            0.0
                        }
                    }
                    "align_corners" => {
                        if outf > 1.0 {
                            o * (inf - 1.0) / (outf - 1.0)
                        } else {
                            0.0
                        }
                    }
                    "asymmetric" => o / s,
                    "tf_crop_and_resize" => {
                        let (start, end) = (roi[i], roi[i + axes.len()]);
                        let xo = if n_out > 1 {
                            start * (inf - 1.0) + o * (end - start) * (inf - 1.0) / (n_out as f64 - 1.0)
                        } else {
                            0.5 * (start + end) * (inf - 1.0)
                        };
                        if xo < 0.0 || xo > inf - 1.0 {
                            return Ok(None);
                        }
                        xo
                    }
                    other => return Err(format!("unknown coordinate_transformation_mode '{other}'")),
                };
                let clamp = |p: f64| p.clamp(0.0, inf - 1.0) as usize;
                if antialias && s < 1.0 && mode != "nearest" {
                    return antialiased_taps(xo, s, n_in, mode == "cubic", a, exclude).map(Some);
                }
                let floor = xo.floor();
                let r = xo - floor;
                Ok(Some(match mode.as_str() {
                    "nearest" => {
                        let pick = match nearest.as_str() {
                            "round_prefer_floor" => {
                                if r <= 0.5 {
                                    floor
                                } else {
                                    floor + 1.0
                                }
                            }
                            "round_prefer_ceil" => {
                                if r < 0.5 {
                                    floor
                                } else {
                                    floor + 1.0
                                }
                            }
                            "floor" => floor,
                            "ceil" => xo.ceil(),
                            other => return Err(format!("unknown nearest_mode '{other}'")),
                        };
                        vec![(clamp(pick), 1.0)]
                    }
                    "linear" => vec![(clamp(floor), 1.0 - r), (clamp(floor + 1.0), r)],
                    "cubic" => {
                        let w = |t: f64| {
                            let t = t.abs();
                            if t <= 1.0 {
                                (a + 2.0) * t * t * t - (a + 3.0) * t * t + 1.0
                            } else if t < 2.0 {
                                a * t * t * t - 5.0 * a * t * t + 8.0 * a * t - 4.0 * a
                            } else {
                                0.0
                            }
                        };
                        let mut taps: Vec<(f64, f64)> = [(-1.0, 1.0 + r), (0.0, r), (1.0, 1.0 - r), (2.0, 2.0 - r)]
                            .iter()
                            .map(|&(k, dist)| (floor + k, w(dist)))
                            .collect();
                        if exclude {
                            taps.iter_mut().filter(|(p, _)| *p < 0.0 || *p > inf - 1.0).for_each(|t| t.1 = 0.0);
                            let total: f64 = taps.iter().map(|t| t.1).sum();
                            taps.iter_mut().for_each(|t| t.1 /= total);
                        }
                        taps.into_iter().map(|(p, w)| (clamp(p), w)).collect()
                    }
                    other => return Err(format!("unknown resize mode '{other}'")),
                }))
            })
            .collect::<R<_>>()?;
        passes.push(ResizeAxis { axis: d, n_in, n_out, taps, fill: extrapolation });
    }
    Ok((out, passes))
}

/// The taps of an antialiased linear or cubic downsampling by `scale` (< 1) at source
/// position `xo`, as ONNX's reference computes them: the kernel stretched by `1 / scale`, so
/// every source sample under an output sample counts, weights normalized to sum to 1. The
/// window is the `n` samples nearest `xo` (the left one where `xo` is a whole number) within
/// the input padded by `ceil(n / 2)` edge samples.
fn antialiased_taps(
    xo: f64,
    scale: f64,
    n_in: usize,
    cubic: bool,
    a: f64,
    exclude_outside: bool,
) -> R<Vec<(usize, f64)>> {
    let support = if cubic { 2.0 } else { 1.0 };
    let start = (-support / scale).floor() as i64 + 1;
    let n = (2 - 2 * start) as usize;
    if n > 1 << 20 {
        return Err(format!("an antialiased resize by {scale} needs {n} taps per sample"));
    }
    let kernel = |t: f64| {
        let t = t.abs();
        if !cubic {
            (1.0 - t).max(0.0)
        } else if t <= 1.0 {
            (a + 2.0) * t * t * t - (a + 3.0) * t * t + 1.0
        } else if t < 2.0 {
            a * t * t * t - 5.0 * a * t * t + 8.0 * a * t - 4.0 * a
        } else {
            0.0
        }
    };
    let left = if xo.fract() == 0.0 { xo - 1.0 } else { xo.floor() };
    let ratio = xo - left;
    let pad = n.div_ceil(2) as i64;
    // The window of `n` in the padded input, moved inside it where it would stick out.
    let padded_len = n_in as i64 + 2 * pad;
    let first = (left as i64 + start + pad).clamp(0, (padded_len - n as i64).max(0)) - pad;
    let mut taps: Vec<(i64, f64)> =
        (0..n as i64).map(|k| (first + k, kernel(scale * ((start + k) as f64 - ratio)))).collect();
    if exclude_outside {
        taps.iter_mut().filter(|(i, _)| *i < 0 || *i >= n_in as i64).for_each(|t| t.1 = 0.0);
    }
    let total: f64 = taps.iter().map(|t| t.1).sum();
    Ok(taps.into_iter().map(|(i, w)| (i.clamp(0, n_in as i64 - 1) as usize, w / total)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_broadcasts_and_refuses_division_by_zero() {
        let a = Literal::from_i64(vec![2, 1], ElementType::I64, vec![1, 2]);
        let b = Literal::from_i64(vec![3], ElementType::I64, vec![10, 20, 30]);
        let sum = binary(&a, &b, ElementType::I64, |x, y| x + y, |x, y| x.checked_add(y)).unwrap();
        assert_eq!(sum.shape, vec![2, 3]);
        assert_eq!(sum.data, Data::I(vec![11, 21, 31, 12, 22, 32]));
        let zero = Literal::from_i64(vec![1], ElementType::I64, vec![0]);
        assert!(binary(&a, &zero, ElementType::I64, |x, y| x / y, |x, y| x.checked_div(y)).is_none());
    }

    #[test]
    fn strided_walk_visits_the_closed_form_offsets() {
        // A reversed middle axis (negative stride) from a base, as a slice with step -1 walks.
        let (extents, strides, base) = ([2u64, 3, 4], [12isize, -4, 1], 8usize);
        let closed: Vec<usize> = (0..24)
            .map(|i| (base as isize + (i / 12) * strides[0] + (i / 4 % 3) * strides[1] + (i % 4) * strides[2]) as usize)
            .collect();
        assert_eq!(StridedWalk::new(base, &extents, strides.to_vec()).collect::<Vec<_>>(), closed);
        assert_eq!(broadcast_offsets(&[3, 1], &[2, 3, 2]).collect::<Vec<_>>(), [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
        assert_eq!(StridedWalk::new(5, &[], vec![]).collect::<Vec<_>>(), [5], "a scalar is one element");
        assert_eq!(broadcast_offsets(&[4], &[0, 4]).count(), 0);
    }
}
