//! Result-type inference for smelt ops. Shapes follow ONNX semantics (numpy broadcasting,
//! explicit pads `[begin..., end...]`, negative axes counted from the back). Unknown extents
//! propagate as `?`; an operand of unknown rank makes the result unranked.

use super::OpView;
use crate::types::{Dim, ElementType, TensorType, Type};

type Result<T> = std::result::Result<T, String>;

fn tensor(shape: Option<Vec<Dim>>, element: ElementType) -> Type {
    Type::Tensor(TensorType { shape, element })
}

/// Resolves a possibly negative axis against `rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// Whether a tensor of static shape `from` broadcasts (numpy rules, right-aligned) to `to`
/// without `to` changing: the one-directional form ONNX calls unidirectional broadcasting.
pub fn broadcasts_to(from: &[u64], to: &[u64]) -> bool {
    from.len() <= to.len() && from.iter().rev().zip(to.iter().rev()).all(|(&f, &t)| f == t || f == 1)
}

/// Numpy-style broadcast of several shapes.
pub fn broadcast(shapes: &[Option<&[Dim]>]) -> Result<Option<Vec<Dim>>> {
    let mut ranked = Vec::new();
    for s in shapes {
        match s {
            Some(s) => ranked.push(*s),
            None => return Ok(None),
        }
    }
    let rank = ranked.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![Dim::Known(1); rank];
    for s in &ranked {
        let offset = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[offset + i];
            *o = match (*o, d) {
                (Dim::Known(1), d) | (d, Dim::Known(1)) => d,
                (Dim::Known(a), Dim::Known(b)) if a == b => Dim::Known(a),
                (Dim::Known(a), Dim::Known(b)) => {
                    return Err(format!("shapes do not broadcast: dimension {} is {a} and {b}", offset + i))
                }
                (Dim::Known(a), Dim::Dynamic) | (Dim::Dynamic, Dim::Known(a)) => Dim::Known(a),
                (Dim::Dynamic, Dim::Dynamic) => Dim::Dynamic,
            };
        }
    }
    Ok(Some(out))
}

/// The length of a 1-D shape-like operand (a reshape target, an expand shape) when static.
fn shape_operand_len(v: &OpView, i: usize) -> Result<Option<usize>> {
    let t = v.tensor(i)?;
    match t.shape.as_deref() {
        None => Ok(None),
        Some([n]) => match n.known() {
            Some(n) if n > 64 => Err(format!("a shape operand of {n} entries is not supported (at most 64)")),
            n => Ok(n.map(|n| n as usize)),
        },
        Some(_) => Err(format!("shape operand #{i} must be a 1-D tensor, got {t}")),
    }
}

pub fn same_as_first(v: &OpView) -> Result<Vec<Type>> {
    Ok(vec![Type::Tensor(v.tensor(0)?.clone())])
}

/// Elementwise over broadcast operands; the element type of the first operand.
pub fn broadcast_all(v: &OpView) -> Result<Vec<Type>> {
    let tensors = (0..v.operands().len()).map(|i| v.tensor(i)).collect::<Result<Vec<_>>>()?;
    let element = tensors[0].element;
    if let Some(other) = tensors.iter().find(|t| t.element != element) {
        return Err(format!("operand element types differ: {element} and {}", other.element));
    }
    let shapes: Vec<_> = tensors.iter().map(|t| t.shape.as_deref()).collect();
    Ok(vec![tensor(broadcast(&shapes)?, element)])
}

/// Comparisons: broadcast operands, `i1` result.
pub fn compare(v: &OpView) -> Result<Vec<Type>> {
    let t = broadcast_all(v)?.remove(0);
    Ok(vec![Type::Tensor(t.as_tensor().unwrap().with_element(ElementType::I1))])
}

/// `where(condition, x, y)`: broadcast of all three, element type of `x`.
pub fn select(v: &OpView) -> Result<Vec<Type>> {
    let (c, x, y) = (v.tensor(0)?, v.tensor(1)?, v.tensor(2)?);
    if c.element != ElementType::I1 {
        return Err(format!("condition must be a tensor of i1, got {}", c.element));
    }
    if x.element != y.element {
        return Err(format!("branches have different element types: {} and {}", x.element, y.element));
    }
    let shape = broadcast(&[c.shape.as_deref(), x.shape.as_deref(), y.shape.as_deref()])?;
    Ok(vec![tensor(shape, x.element)])
}

/// Spatial output extent of a convolution or pooling window.
fn window_out(input: Dim, kernel: u64, stride: i64, dilation: i64, pads: (i64, i64), ceil: bool) -> Result<Dim> {
    if pads.0 < 0 || pads.1 < 0 {
        return Err("pads must not be negative".into());
    }
    let pad = pads.0.checked_add(pads.1).ok_or("pads are out of range")?;
    let Dim::Known(input) = input else { return Ok(Dim::Dynamic) };
    if stride <= 0 || dilation <= 0 {
        return Err("strides and dilations must be positive".into());
    }
    let span = i64::try_from(kernel).ok().and_then(|k| dilation.checked_mul(k - 1)).and_then(|s| s.checked_add(1));
    let avail = span.and_then(|s| (input as i64).checked_add(pad)?.checked_sub(s));
    let (Some(span), Some(avail)) = (span, avail) else {
        return Err("window extents, dilations and padding are out of range".into());
    };
    if avail < 0 {
        return Err(format!("window of extent {span} does not fit input extent {input} with padding {pad}"));
    }
    let mut out = if ceil { (avail + stride - 1) / stride + 1 } else { avail / stride + 1 };
    if ceil && (out - 1) * stride >= input as i64 + pads.0 && out > 1 {
        // The last window would start in the end padding only; ONNX drops it.
        out -= 1;
    }
    Ok(Dim::Known(out as u64))
}

/// A per-axis attribute with `n` values, or the op table's default for each axis.
fn spatial_attrs(v: &OpView, name: &str, n: usize) -> Result<Vec<i64>> {
    match v.ints(name) {
        None => Ok(v.each(name, n)),
        Some(vals) if vals.len() == n => Ok(vals.to_vec()),
        Some(vals) => Err(format!("`{name}` has {} values, expected {n}", vals.len())),
    }
}

/// A convolution's input and weight shapes and its group count.
type ConvOperands<'a> = (&'a [Dim], &'a [Dim], i64);

/// A convolution's 4-D input and weight shapes (`layout` names them for messages) and its
/// positive group count; `None` when either is unranked.
fn conv_operands<'a>(v: &OpView<'a>, layout: &str) -> Result<Option<ConvOperands<'a>>> {
    let (x, w) = (v.tensor(0)?, v.tensor(1)?);
    let (Some(xs), Some(ws)) = (&x.shape, &w.shape) else { return Ok(None) };
    if xs.len() != 4 || ws.len() != 4 {
        return Err(format!("expects 4-D input and weight ({layout}), got ranks {} and {}", xs.len(), ws.len()));
    }
    let groups = v.int("group");
    if groups < 1 {
        return Err(format!("group must be positive, got {groups}"));
    }
    Ok(Some((xs, ws, groups)))
}

/// The optional `bias` must hold one value per output channel.
fn check_bias(v: &OpView, out_channels: Dim) -> Result<()> {
    let Some(b) = v.operand("bias") else { return Ok(()) };
    let bt = v.module.value_type(b).as_tensor().ok_or("bias must be a tensor")?;
    if let Some(bs) = &bt.shape {
        if bs.len() != 1 || matches!((bs[0], out_channels), (Dim::Known(n), Dim::Known(o)) if n != o) {
            return Err(format!("bias must have shape [{out_channels}], got {bt}"));
        }
    }
    Ok(())
}

pub fn conv2d(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some((xs, ws, groups)) = conv_operands(v, "NCHW, OIHW")? else {
        return Ok(vec![tensor(None, x.element)]);
    };
    if let (Dim::Known(c), Dim::Known(wc)) = (xs[1], ws[1]) {
        if Some(c) != wc.checked_mul(groups as u64) {
            return Err(format!("input has {c} channels but weight expects {wc} x {groups} groups"));
        }
    }
    if let Dim::Known(o) = ws[0] {
        if o % groups as u64 != 0 {
            return Err(format!("{o} output channels do not divide into {groups} groups"));
        }
    }
    check_bias(v, ws[0])?;
    let strides = spatial_attrs(v, "strides", 2)?;
    let dilations = spatial_attrs(v, "dilations", 2)?;
    let pads = spatial_attrs(v, "pads", 4)?;
    let mut out = vec![xs[0], ws[0]];
    for i in 0..2 {
        let Dim::Known(k) = ws[2 + i] else {
            out.push(Dim::Dynamic);
            continue;
        };
        out.push(window_out(xs[2 + i], k, strides[i], dilations[i], (pads[i], pads[i + 2]), false)?);
    }
    Ok(vec![tensor(Some(out), x.element)])
}

/// A conv2d's shape with an 8-bit input grid (scalar `x_scale` and `x_zero_point`, u8 or i8),
/// int8 weights and one f32 weight scale per output channel (or one for all).
pub fn quantized_conv2d(v: &OpView) -> Result<Vec<Type>> {
    let (x, w, xs, xz, ws) = (v.tensor(0)?, v.tensor(1)?, v.tensor(2)?, v.tensor(3)?, v.tensor(4)?);
    if x.element != ElementType::F32 || xs.element != ElementType::F32 || ws.element != ElementType::F32 {
        return Err(format!(
            "x, x_scale and w_scale must be f32, got {}, {} and {}",
            x.element, xs.element, ws.element
        ));
    }
    if w.element != ElementType::I8 || !matches!(xz.element, ElementType::U8 | ElementType::I8) {
        return Err(format!("weight must be i8 and x_zero_point u8 or i8, got {} and {}", w.element, xz.element));
    }
    let scalar = |t: &TensorType| t.shape.as_ref().is_some_and(|s| s.iter().all(|d| *d == Dim::Known(1)));
    if !scalar(xs) || !scalar(xz) {
        return Err("x_scale and x_zero_point must hold one value".into());
    }
    let out_channels = w.shape.as_ref().and_then(|s| s.first().copied()).unwrap_or(Dim::Dynamic);
    let per_channel =
        ws.shape.as_ref().is_some_and(|s| s.len() == 1 && (s[0] == out_channels || s[0] == Dim::Known(1)));
    if !scalar(ws) && !per_channel {
        return Err(format!("w_scale must hold one value or one per output channel ({out_channels}), got {ws}"));
    }
    let mut ty = conv2d(v)?;
    if let Some(t) = ty[0].as_tensor().cloned() {
        ty[0] = Type::Tensor(t.with_element(ElementType::F32));
    }
    Ok(ty)
}

/// A matmul's shape for an f32 `a` on an 8-bit grid (scalar scale and zero point) by an int8
/// matrix `b` [K, N] with one f32 scale per column (or one for all).
pub fn quantized_matmul(v: &OpView) -> Result<Vec<Type>> {
    let (a, b, s, z, bs) = (v.tensor(0)?, v.tensor(1)?, v.tensor(2)?, v.tensor(3)?, v.tensor(4)?);
    if a.element != ElementType::F32 || s.element != ElementType::F32 || bs.element != ElementType::F32 {
        return Err(format!("a, a_scale and b_scale must be f32, got {}, {} and {}", a.element, s.element, bs.element));
    }
    if b.element != ElementType::I8 || !matches!(z.element, ElementType::U8 | ElementType::I8) {
        return Err(format!("b must be i8 and a_zero_point u8 or i8, got {} and {}", b.element, z.element));
    }
    let scalar = |t: &TensorType| t.shape.as_ref().is_some_and(|s| s.iter().all(|d| *d == Dim::Known(1)));
    if !scalar(s) || !scalar(z) {
        return Err("a_scale and a_zero_point must hold one value".into());
    }
    if b.shape.as_ref().is_some_and(|s| s.len() != 2) {
        return Err(format!("b must be a matrix [K, N], got {b}"));
    }
    let columns = b.shape.as_ref().and_then(|s| s.get(1).copied()).unwrap_or(Dim::Dynamic);
    let per_column = bs.shape.as_ref().is_some_and(|s| s.len() == 1 && (s[0] == columns || s[0] == Dim::Known(1)));
    if !scalar(bs) && !per_column {
        return Err(format!("b_scale must hold one value or one per column ({columns}), got {bs}"));
    }
    Ok(vec![tensor(matmul_shape(a.shape.as_deref(), b.shape.as_deref())?, ElementType::F32)])
}

/// Transposed convolution: x [N, Cin, H, W], weight [Cin, Cout / group, kh, kw]; each
/// output extent is `stride (in - 1) + output_padding + dilation (k - 1) + 1 - pads`.
pub fn conv_transpose(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some((xs, ws, groups)) = conv_operands(v, "NCHW, IOHW")? else {
        return Ok(vec![tensor(None, x.element)]);
    };
    if let (Dim::Known(c), Dim::Known(wc)) = (xs[1], ws[0]) {
        if c != wc || c % groups as u64 != 0 {
            return Err(format!("input has {c} channels but the weight has {wc} input channels in {groups} groups"));
        }
    }
    let out_channels = ws[1].known().map_or(Dim::Dynamic, |o| Dim::Known(o * groups as u64));
    check_bias(v, out_channels)?;
    let strides = spatial_attrs(v, "strides", 2)?;
    let dilations = spatial_attrs(v, "dilations", 2)?;
    let pads = spatial_attrs(v, "pads", 4)?;
    let extra = spatial_attrs(v, "output_padding", 2)?;
    if strides.iter().chain(&dilations).any(|&s| s < 1) || extra.iter().any(|&e| e < 0) {
        return Err(format!(
            "strides {strides:?} and dilations {dilations:?} must be positive, output_padding {extra:?} not negative"
        ));
    }
    let mut out = vec![xs[0], out_channels];
    for i in 0..2 {
        let (Dim::Known(n), Dim::Known(k)) = (xs[2 + i], ws[2 + i]) else {
            out.push(Dim::Dynamic);
            continue;
        };
        let size = strides[i] as i128 * (n as i128 - 1) + extra[i] as i128 + dilations[i] as i128 * (k as i128 - 1) + 1
            - pads[i] as i128
            - pads[i + 2] as i128;
        if size < 1 || size > u32::MAX as i128 {
            return Err(format!("spatial dimension {i} would have extent {size}"));
        }
        out.push(Dim::Known(size as u64));
    }
    Ok(vec![tensor(Some(out), x.element)])
}

pub fn pool(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some(xs) = &x.shape else { return Ok(vec![tensor(None, x.element)]) };
    if xs.len() != 4 {
        return Err(format!("expects a 4-D NCHW input, got rank {}", xs.len()));
    }
    let kernel = v.ints("kernel_shape").ok_or("missing `kernel_shape`")?;
    if kernel.len() != 2 || kernel.iter().any(|&k| k < 1) {
        return Err("`kernel_shape` must hold two positive extents".into());
    }
    let strides = spatial_attrs(v, "strides", 2)?;
    let dilations = spatial_attrs(v, "dilations", 2)?;
    let pads = spatial_attrs(v, "pads", 4)?;
    let ceil = v.bool("ceil_mode");
    let mut out = vec![xs[0], xs[1]];
    for i in 0..2 {
        out.push(window_out(xs[2 + i], kernel[i] as u64, strides[i], dilations[i], (pads[i], pads[i + 2]), ceil)?);
    }
    Ok(vec![tensor(Some(out), x.element)])
}

/// [`pool`]'s shape, of i64 indices.
pub fn pool_indices(v: &OpView) -> Result<Vec<Type>> {
    let mut types = pool(v)?;
    if let Some(Type::Tensor(t)) = types.first_mut() {
        t.element = ElementType::I64;
    }
    Ok(types)
}

pub fn global_pool(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let shape = match &x.shape {
        Some(s) if s.len() >= 3 => {
            let mut out = s[..2].to_vec();
            out.extend(std::iter::repeat_n(Dim::Known(1), s.len() - 2));
            Some(out)
        }
        Some(s) => return Err(format!("expects at least 3 dimensions (N, C, spatial...), got {}", s.len())),
        None => None,
    };
    Ok(vec![tensor(shape, x.element)])
}

pub fn batch_norm(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let channels = x.shape.as_ref().and_then(|s| s.get(1).copied());
    for i in 1..5 {
        let p = v.tensor(i)?;
        if let (Some(ps), Some(Dim::Known(c))) = (&p.shape, channels) {
            if ps.len() != 1 || matches!(ps[0], Dim::Known(n) if n != c) {
                return Err(format!("parameter #{i} must have shape [{c}], got {p}"));
            }
        }
    }
    same_as_first(v)
}

/// Group normalization: rank >= 3, `num_groups` divides the channels, and the scale and bias
/// hold one value per channel.
pub fn group_norm(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    if let Some(s) = &x.shape {
        if s.len() < 3 {
            return Err(format!("expects an input of rank 3 or more (N, C, spatial...), got rank {}", s.len()));
        }
    }
    let groups = v.int("num_groups");
    let channels = x.shape.as_ref().and_then(|s| s[1].known());
    if groups < 1 || channels.is_some_and(|c| c % groups as u64 != 0) {
        return Err(format!(
            "`num_groups` {groups} must be positive and divide the {} channels",
            channels.unwrap_or(0)
        ));
    }
    for i in 1..3 {
        let p = v.tensor(i)?;
        if let (Some(ps), Some(c)) = (&p.shape, channels) {
            if ps.len() != 1 || matches!(ps[0], Dim::Known(n) if n != c) {
                return Err(format!("{} must have shape [{c}], got {p}", ["scale", "bias"][i - 1]));
            }
        }
    }
    same_as_first(v)
}

/// Quantization parameters: float scales, zero points of the integer type, each one value
/// (per tensor) or one per entry of `axis` (per axis).
fn quantization_params(v: &OpView, integer: ElementType) -> Result<()> {
    let x = v.tensor(0)?;
    let (scale, zero) = (v.tensor(1)?, v.tensor(2)?);
    if !scale.element.is_float() {
        return Err(format!("scale must be floating-point, got {}", scale.element));
    }
    if zero.element != integer || !integer.is_integer() {
        return Err(format!("zero point must be of the quantized integer type, got {} for {integer}", zero.element));
    }
    let (Some(n), Some(shape)) = (scale.num_elements(), &x.shape) else { return Ok(()) };
    if n != 1 {
        let axis = normalize_axis(v.int("axis"), shape.len())?;
        if scale.shape.as_ref().is_some_and(|s| s.len() != 1) || shape[axis].known().is_some_and(|d| d != n) {
            return Err(format!("per-axis scale {scale} must hold one value for each of axis {axis}'s extents in {x}"));
        }
    }
    if zero.num_elements().is_some_and(|z| z != n) {
        return Err(format!("zero point {zero} must match scale {scale}"));
    }
    Ok(())
}

/// The input's shape in the zero point's integer type.
pub fn quantize(v: &OpView) -> Result<Vec<Type>> {
    let integer = v.tensor(2)?.element;
    quantization_params(v, integer)?;
    Ok(vec![Type::Tensor(v.tensor(0)?.with_element(integer))])
}

/// The input's shape in the scale's float type.
pub fn dequantize(v: &OpView) -> Result<Vec<Type>> {
    quantization_params(v, v.tensor(0)?.element)?;
    Ok(vec![Type::Tensor(v.tensor(0)?.with_element(v.tensor(1)?.element))])
}

pub fn matmul(v: &OpView) -> Result<Vec<Type>> {
    let (a, b) = (v.tensor(0)?, v.tensor(1)?);
    if a.element != b.element {
        return Err(format!("operand element types differ: {} and {}", a.element, b.element));
    }
    Ok(vec![tensor(matmul_shape(a.shape.as_deref(), b.shape.as_deref())?, a.element)])
}

/// The numpy matmul result shape (None when either operand is unranked).
fn matmul_shape(sa: Option<&[Dim]>, sb: Option<&[Dim]>) -> Result<Option<Vec<Dim>>> {
    let (Some(sa), Some(sb)) = (sa, sb) else {
        return Ok(None);
    };
    if sa.is_empty() || sb.is_empty() {
        return Err("matmul operands must have rank >= 1".into());
    }
    // Rank-1 operands are promoted (prepend / append a 1) and the extra dim dropped after.
    let a2: Vec<Dim> = if sa.len() == 1 { vec![Dim::Known(1), sa[0]] } else { sa.to_vec() };
    let b2: Vec<Dim> = if sb.len() == 1 { vec![sb[0], Dim::Known(1)] } else { sb.to_vec() };
    let (k1, k2) = (a2[a2.len() - 1], b2[b2.len() - 2]);
    if let (Dim::Known(x), Dim::Known(y)) = (k1, k2) {
        if x != y {
            return Err(format!("contraction dimensions differ: {x} and {y}"));
        }
    }
    let mut out = broadcast(&[Some(&a2[..a2.len() - 2]), Some(&b2[..b2.len() - 2])])?.unwrap();
    if sa.len() > 1 {
        out.push(a2[a2.len() - 2]);
    }
    if sb.len() > 1 {
        out.push(b2[b2.len() - 1]);
    }
    Ok(Some(out))
}

/// `attention(q, k_t, v, mask?)`: the shape of `softmax(q @ k_t + mask) @ v`; the mask must
/// broadcast to the scores without growing them.
pub fn attention(v: &OpView) -> Result<Vec<Type>> {
    let (q, k, val) = (v.tensor(0)?, v.tensor(1)?, v.tensor(2)?);
    if q.element != k.element || q.element != val.element {
        return Err(format!("q, k_t and v element types differ: {}, {}, {}", q.element, k.element, val.element));
    }
    if [q, k, val].iter().any(|t| t.shape.as_ref().is_some_and(|s| s.len() < 2)) {
        return Err("q, k_t and v must have rank >= 2".into());
    }
    let scores = matmul_shape(q.shape.as_deref(), k.shape.as_deref())?;
    if let Some(mask) = v.operand("mask") {
        let m = v.module.value_type(mask).as_tensor().ok_or("`mask` must be a tensor")?;
        if m.element != q.element {
            return Err(format!("mask element type {} differs from {}", m.element, q.element));
        }
        if let (Some(s), Some(_)) = (&scores, &m.shape) {
            let b = broadcast(&[Some(s), m.shape.as_deref()])?;
            if b.as_deref() != Some(&s[..]) {
                return Err("mask must broadcast to the attention scores".into());
            }
        }
    }
    Ok(vec![tensor(matmul_shape(scores.as_deref(), val.shape.as_deref())?, q.element)])
}

pub fn gemm(v: &OpView) -> Result<Vec<Type>> {
    let (a, b) = (v.tensor(0)?, v.tensor(1)?);
    let (Some(sa), Some(sb)) = (&a.shape, &b.shape) else {
        return Ok(vec![tensor(None, a.element)]);
    };
    if sa.len() != 2 || sb.len() != 2 {
        return Err(format!("gemm expects 2-D operands, got ranks {} and {}", sa.len(), sb.len()));
    }
    let (m, ka) = if v.bool("trans_a") { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
    let (kb, n) = if v.bool("trans_b") { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
    if let (Dim::Known(x), Dim::Known(y)) = (ka, kb) {
        if x != y {
            return Err(format!("contraction dimensions differ: {x} and {y}"));
        }
    }
    let out = vec![m, n];
    if let Some(c) = v.operand("c") {
        let ct = v.module.value_type(c).as_tensor().ok_or("c must be a tensor")?;
        let b = broadcast(&[ct.shape.as_deref(), Some(&out)])?;
        if b.as_deref().is_some_and(|b| b != out.as_slice() && out.iter().all(|d| d.known().is_some())) {
            return Err(format!("c of type {ct} does not broadcast to [{}, {}]", out[0], out[1]));
        }
    }
    Ok(vec![tensor(Some(out), a.element)])
}

pub fn reduce(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let keep = v.bool("keepdims");
    let Some(xs) = &x.shape else { return Ok(vec![tensor(None, x.element)]) };
    let axes = match v.operand("axes") {
        Some(a) => match v.const_ints(a) {
            Some(axes) => axes,
            None => return Ok(vec![tensor(if keep { Some(vec![Dim::Dynamic; xs.len()]) } else { None }, x.element)]),
        },
        None => Vec::new(),
    };
    let axes: Vec<usize> = if axes.is_empty() {
        if v.bool("noop_with_empty_axes") {
            return same_as_first(v);
        }
        (0..xs.len()).collect()
    } else {
        axes.iter().map(|&a| normalize_axis(a, xs.len())).collect::<Result<_>>()?
    };
    let mut out = Vec::new();
    for (i, &d) in xs.iter().enumerate() {
        if axes.contains(&i) {
            if keep {
                out.push(Dim::Known(1));
            }
        } else {
            out.push(d);
        }
    }
    Ok(vec![tensor(Some(out), x.element)])
}

pub fn axis_in_range(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    if let Some(rank) = x.rank() {
        normalize_axis(v.int("axis"), rank)?;
    }
    same_as_first(v)
}

pub fn transpose(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some(xs) = &x.shape else { return Ok(vec![tensor(None, x.element)]) };
    let perm: Vec<i64> = match v.ints("perm") {
        Some(p) => p.to_vec(),
        None => (0..xs.len() as i64).rev().collect(),
    };
    let mut seen = vec![false; xs.len()];
    if perm.len() != xs.len()
        || perm.iter().any(|&p| p < 0 || p as usize >= xs.len() || std::mem::replace(&mut seen[p as usize], true))
    {
        return Err(format!("`perm` {perm:?} is not a permutation of 0..{}", xs.len()));
    }
    Ok(vec![tensor(Some(perm.iter().map(|&p| xs[p as usize]).collect()), x.element)])
}

/// Resolves an ONNX reshape target (`0` copies, `-1` infers) against the input shape.
pub fn reshape_target(input: &[Dim], target: &[i64], allow_zero: bool) -> Result<Vec<Dim>> {
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        out.push(match t {
            -1 => {
                if infer_at.replace(i).is_some() {
                    return Err("reshape target has more than one -1".into());
                }
                Dim::Dynamic
            }
            0 if !allow_zero => *input.get(i).ok_or("reshape target copies a dimension the input lacks")?,
            t if t >= 0 => Dim::Known(t as u64),
            t => return Err(format!("invalid reshape extent {t}")),
        });
    }
    let total: Option<u64> = input.iter().map(|d| d.known()).product();
    if let Some(i) = infer_at {
        let rest: Option<u64> = out.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, d)| d.known()).product();
        if let (Some(total), Some(rest)) = (total, rest) {
            if rest == 0 || total % rest != 0 {
                return Err(format!("cannot reshape {total} elements with the other extents multiplying to {rest}"));
            }
            out[i] = Dim::Known(total / rest);
        }
    } else if let (Some(total), Some(new)) = (total, out.iter().map(|d| d.known()).product::<Option<u64>>()) {
        if total != new {
            return Err(format!("cannot reshape {total} elements into {new}"));
        }
    }
    Ok(out)
}

pub fn reshape(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    if let Some(target) = v.const_ints(v.operands()[1]) {
        let input = x.shape.clone().unwrap_or_default();
        if x.shape.is_none() && target.iter().any(|&t| t == 0 || t == -1) {
            return Ok(vec![tensor(Some(vec![Dim::Dynamic; target.len()]), x.element)]);
        }
        return Ok(vec![tensor(Some(reshape_target(&input, &target, v.bool("allowzero"))?), x.element)]);
    }
    let rank = shape_operand_len(v, 1)?;
    Ok(vec![tensor(rank.map(|r| vec![Dim::Dynamic; r]), x.element)])
}

pub fn flatten(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some(xs) = &x.shape else { return Ok(vec![tensor(Some(vec![Dim::Dynamic; 2]), x.element)]) };
    let axis = v.int("axis");
    let axis = if axis < 0 { axis + xs.len() as i64 } else { axis };
    if axis < 0 || axis as usize > xs.len() {
        return Err(format!("axis {axis} is out of range for rank {}", xs.len()));
    }
    let prod = |d: &[Dim]| {
        d.iter().try_fold(1u64, |a, d| d.known().and_then(|d| a.checked_mul(d))).map_or(Dim::Dynamic, Dim::Known)
    };
    Ok(vec![tensor(Some(vec![prod(&xs[..axis as usize]), prod(&xs[axis as usize..])]), x.element)])
}

pub fn concat(v: &OpView) -> Result<Vec<Type>> {
    let first = v.tensor(0)?;
    let mut out: Option<Vec<Dim>> = None;
    let mut axis = 0;
    for i in 0..v.operands().len() {
        let t = v.tensor(i)?;
        if t.element != first.element {
            return Err(format!("inputs have different element types: {} and {}", first.element, t.element));
        }
        let Some(s) = &t.shape else { return Ok(vec![tensor(None, first.element)]) };
        match &mut out {
            None => {
                axis = normalize_axis(v.int("axis"), s.len())?;
                out = Some(s.clone());
            }
            Some(o) => {
                if o.len() != s.len() {
                    return Err(format!("inputs have different ranks: {} and {}", o.len(), s.len()));
                }
                for (j, (a, b)) in o.iter_mut().zip(s).enumerate() {
                    if j == axis {
                        *a = match (*a, *b) {
                            (Dim::Known(x), Dim::Known(y)) => Dim::Known(x + y),
                            _ => Dim::Dynamic,
                        };
                    } else if let (Dim::Known(x), Dim::Known(y)) = (*a, *b) {
                        if x != y {
                            return Err(format!("inputs differ in dimension {j}: {x} and {y}"));
                        }
                    }
                }
            }
        }
    }
    Ok(vec![tensor(out, first.element)])
}

pub fn split(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let n = v.module.op(v.id).results().len();
    let Some(xs) = &x.shape else { return Ok(vec![tensor(None, x.element); n]) };
    let axis = normalize_axis(v.int("axis"), xs.len())?;
    let sizes: Option<Vec<i64>> = match v.operand("split") {
        Some(s) => v.const_ints(s),
        None => xs[axis].known().map(|total| {
            let chunk = total.div_ceil(n as u64) as i64;
            (0..n as i64).map(|i| chunk.min(total as i64 - i * chunk).max(0)).collect()
        }),
    };
    let Some(sizes) = sizes else {
        let mut d = xs.clone();
        d[axis] = Dim::Dynamic;
        return Ok(vec![tensor(Some(d), x.element); n]);
    };
    if sizes.len() != n {
        return Err(format!("split into {} pieces but the op has {n} results", sizes.len()));
    }
    if let Dim::Known(total) = xs[axis] {
        if sizes.iter().sum::<i64>() != total as i64 {
            return Err(format!("split sizes {sizes:?} do not add up to {total}"));
        }
    }
    Ok(sizes
        .iter()
        .map(|&s| {
            let mut d = xs.clone();
            d[axis] = Dim::Known(s as u64);
            tensor(Some(d), x.element)
        })
        .collect())
}

/// Normalized `(start, end, step)` for one sliced axis of extent `dim`, ONNX clamping rules.
pub fn slice_bounds(start: i64, end: i64, step: i64, dim: i64) -> (i64, i64) {
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let start = if start < 0 { start + dim } else { start };
    let end = if end < 0 { end + dim } else { end };
    if step > 0 {
        (clamp(start, 0, dim), clamp(end, 0, dim))
    } else {
        (clamp(start, 0, dim - 1), clamp(end, -1, dim - 1))
    }
}

pub fn slice(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some(xs) = &x.shape else { return Ok(vec![tensor(None, x.element)]) };
    let get = |name: &str| v.operand(name).map(|o| v.const_ints(o));
    let (Some(Some(starts)), Some(Some(ends))) = (get("starts"), get("ends")) else {
        return Ok(vec![tensor(Some(vec![Dim::Dynamic; xs.len()]), x.element)]);
    };
    let axes = match get("axes") {
        Some(Some(a)) => a,
        Some(None) => return Ok(vec![tensor(Some(vec![Dim::Dynamic; xs.len()]), x.element)]),
        None => (0..starts.len() as i64).collect(),
    };
    let steps = match get("steps") {
        Some(Some(s)) => s,
        Some(None) => return Ok(vec![tensor(Some(vec![Dim::Dynamic; xs.len()]), x.element)]),
        None => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps must have the same length".into());
    }
    let mut out = xs.clone();
    for i in 0..starts.len() {
        let axis = normalize_axis(axes[i], xs.len())?;
        if steps[i] == 0 {
            return Err("slice step must not be zero".into());
        }
        if let Dim::Known(d) = xs[axis] {
            let (s, e) = slice_bounds(starts[i], ends[i], steps[i], d as i64);
            let len = if steps[i] > 0 { (e - s + steps[i] - 1) / steps[i] } else { (s - e - steps[i] - 1) / -steps[i] };
            out[axis] = Dim::Known(len.max(0) as u64);
        }
    }
    Ok(vec![tensor(Some(out), x.element)])
}

pub fn gather(v: &OpView) -> Result<Vec<Type>> {
    let (x, idx) = (v.tensor(0)?, v.tensor(1)?);
    if !idx.element.is_integer() {
        return Err(format!("indices must be integers, got {}", idx.element));
    }
    let (Some(xs), Some(is)) = (&x.shape, &idx.shape) else { return Ok(vec![tensor(None, x.element)]) };
    let axis = normalize_axis(v.int("axis"), xs.len())?;
    let mut out = xs[..axis].to_vec();
    out.extend_from_slice(is);
    out.extend_from_slice(&xs[axis + 1..]);
    Ok(vec![tensor(Some(out), x.element)])
}

pub fn gather_elements(v: &OpView) -> Result<Vec<Type>> {
    let (x, idx) = (v.tensor(0)?, v.tensor(1)?);
    if !idx.element.is_integer() {
        return Err(format!("indices must be integers, got {}", idx.element));
    }
    if let (Some(xr), Some(ir)) = (x.rank(), idx.rank()) {
        if xr != ir {
            return Err(format!("data and indices must have the same rank, got {xr} and {ir}"));
        }
        normalize_axis(v.int("axis"), xr)?;
    }
    Ok(vec![tensor(idx.shape.clone(), x.element)])
}

pub fn squeeze(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some(xs) = &x.shape else { return Ok(vec![tensor(None, x.element)]) };
    let axes: Vec<usize> = match v.operand("axes") {
        Some(a) => match v.const_ints(a) {
            Some(axes) => axes.iter().map(|&a| normalize_axis(a, xs.len())).collect::<Result<_>>()?,
            None => return Ok(vec![tensor(None, x.element)]),
        },
        None => {
            if xs.contains(&Dim::Dynamic) {
                return Ok(vec![tensor(None, x.element)]);
            }
            (0..xs.len()).filter(|&i| xs[i] == Dim::Known(1)).collect()
        }
    };
    for &a in &axes {
        if matches!(xs[a], Dim::Known(n) if n != 1) {
            return Err(format!("cannot squeeze dimension {a} of extent {}", xs[a]));
        }
    }
    let out = xs.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| *d).collect();
    Ok(vec![tensor(Some(out), x.element)])
}

pub fn unsqueeze(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some(axes) = v.const_ints(v.operands()[1]) else { return Ok(vec![tensor(None, x.element)]) };
    let Some(xs) = &x.shape else { return Ok(vec![tensor(None, x.element)]) };
    let rank = xs.len() + axes.len();
    let mut axes: Vec<usize> = axes.iter().map(|&a| normalize_axis(a, rank)).collect::<Result<_>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Err("unsqueeze axes repeat".into());
    }
    let mut rest = xs.iter();
    let out = (0..rank).map(|i| if axes.contains(&i) { Dim::Known(1) } else { *rest.next().unwrap() }).collect();
    Ok(vec![tensor(Some(out), x.element)])
}

pub fn expand(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some(target) = v.const_ints(v.operands()[1]) else {
        let rank = shape_operand_len(v, 1)?;
        return Ok(vec![tensor(rank.map(|r| vec![Dim::Dynamic; r]), x.element)]);
    };
    if target.iter().any(|&t| t < 0) {
        return Err(format!("expand shape {target:?} has a negative extent"));
    }
    let target: Vec<Dim> = target.iter().map(|&t| Dim::Known(t as u64)).collect();
    Ok(vec![tensor(broadcast(&[x.shape.as_deref(), Some(&target)])?, x.element)])
}

/// Output extents of a resize: `sizes` (with the aspect-ratio policy) or `floor(in x scale)`
/// (times the roi extent for `tf_crop_and_resize`), on `axes`. Also the scale per axis.
pub fn resize_plan(
    input: &[u64],
    axes: &[usize],
    roi: &[f64],
    scales: &[f64],
    sizes: &[i64],
    policy: &str,
    crop: bool,
) -> Result<(Vec<u64>, Vec<f64>)> {
    let mut out = input.to_vec();
    let mut scale = vec![1.0; input.len()];
    if !sizes.is_empty() {
        if sizes.len() != axes.len() {
            return Err(format!("sizes has {} entries for {} axes", sizes.len(), axes.len()));
        }
        let ratios: Vec<f64> = axes.iter().zip(sizes).map(|(&a, &s)| s as f64 / input[a].max(1) as f64).collect();
        let common = match policy {
            "stretch" => None,
            "not_larger" => Some(ratios.iter().copied().fold(f64::INFINITY, f64::min)),
            "not_smaller" => Some(ratios.iter().copied().fold(0.0, f64::max)),
            other => return Err(format!("unknown keep_aspect_ratio_policy '{other}'")),
        };
        for (i, &a) in axes.iter().enumerate() {
            match common {
                None => {
                    out[a] = sizes[i].max(0) as u64;
                    scale[a] = ratios[i];
                }
                Some(c) => {
                    out[a] = (c * input[a] as f64 + 0.5).floor() as u64;
                    scale[a] = c;
                }
            }
        }
    } else {
        if scales.len() != axes.len() {
            return Err(format!("scales has {} entries for {} axes", scales.len(), axes.len()));
        }
        for (i, &a) in axes.iter().enumerate() {
            if scales[i] <= 0.0 {
                return Err(format!("scale {} must be positive", scales[i]));
            }
            let extent = if crop { roi[i + axes.len()] - roi[i] } else { 1.0 };
            out[a] = (input[a] as f64 * extent * scales[i]).floor().max(0.0) as u64;
            scale[a] = scales[i];
        }
    }
    Ok((out, scale))
}

pub fn resize(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let Some(shape) = x.static_shape() else {
        return Ok(vec![tensor(x.shape.as_ref().map(|s| vec![Dim::Dynamic; s.len()]), x.element)]);
    };
    let axes: Vec<usize> = match v.ints("axes") {
        Some(a) => a.iter().map(|&a| normalize_axis(a, shape.len())).collect::<Result<_>>()?,
        None => (0..shape.len()).collect(),
    };
    let floats_of = |name: &str| {
        v.operand(name).map(|o| {
            v.constant_of(o)
                .and_then(|d| crate::literal::Literal::from_dense(d, &v.module.resources))
                .map(|l| l.to_f64().into_owned())
        })
    };
    let ints_of = |name: &str| v.operand(name).map(|o| v.const_ints(o));
    let (roi, scales, sizes) = (floats_of("roi"), floats_of("scales"), ints_of("sizes"));
    if matches!(roi, Some(None)) || matches!(scales, Some(None)) || matches!(sizes, Some(None)) {
        return Ok(vec![tensor(Some(vec![Dim::Dynamic; shape.len()]), x.element)]);
    }
    let (roi, scales, sizes) =
        (roi.flatten().unwrap_or_default(), scales.flatten().unwrap_or_default(), sizes.flatten().unwrap_or_default());
    let crop = v.string("coordinate_transformation_mode") == Some("tf_crop_and_resize");
    if crop && roi.len() != 2 * axes.len() {
        return Err(format!("tf_crop_and_resize needs {} roi values", 2 * axes.len()));
    }
    let policy = v.string_attr("keep_aspect_ratio_policy");
    let (out, _) = resize_plan(&shape, &axes, &roi, &scales, &sizes, policy, crop)?;
    Ok(vec![tensor(Some(out.into_iter().map(Dim::Known).collect()), x.element)])
}

pub fn tile(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let (Some(xs), Some(reps)) = (&x.shape, v.const_ints(v.operands()[1])) else {
        return Ok(vec![tensor(x.shape.as_ref().map(|s| vec![Dim::Dynamic; s.len()]), x.element)]);
    };
    if reps.len() != xs.len() {
        return Err(format!("repeats has {} entries for rank {}", reps.len(), xs.len()));
    }
    if let Some(r) = reps.iter().find(|&&r| r < 0) {
        return Err(format!("tile repeats {reps:?} has a negative entry ({r})"));
    }
    let out = xs
        .iter()
        .zip(&reps)
        .map(|(d, &r)| d.known().map_or(Some(Dim::Dynamic), |d| d.checked_mul(r as u64).map(Dim::Known)))
        .collect::<Option<Vec<Dim>>>()
        .ok_or_else(|| format!("tile repeats {reps:?} make an extent beyond 64 bits"))?;
    Ok(vec![tensor(Some(out), x.element)])
}

pub fn pad(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let (Some(xs), Some(pads)) = (&x.shape, v.const_ints(v.operands()[1])) else {
        return Ok(vec![tensor(x.shape.as_ref().map(|s| vec![Dim::Dynamic; s.len()]), x.element)]);
    };
    let axes: Vec<usize> = match v.operand("axes") {
        Some(a) => match v.const_ints(a) {
            Some(a) => a.iter().map(|&a| normalize_axis(a, xs.len())).collect::<Result<_>>()?,
            None => return Ok(vec![tensor(Some(vec![Dim::Dynamic; xs.len()]), x.element)]),
        },
        None => (0..xs.len()).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!("pads has {} entries for {} axes", pads.len(), axes.len()));
    }
    let mut out = xs.clone();
    for (i, &a) in axes.iter().enumerate() {
        if let Dim::Known(d) = xs[a] {
            let n = (d as i64).saturating_add(pads[i]).saturating_add(pads[i + axes.len()]);
            if n < 0 {
                return Err(format!("padding makes dimension {a} negative"));
            }
            out[a] = Dim::Known(n as u64);
        }
    }
    Ok(vec![tensor(Some(out), x.element)])
}

pub fn cast(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let to = v.attr("to").and_then(|a| a.as_type()).and_then(Type::element).ok_or("`to` must be a scalar type")?;
    Ok(vec![Type::Tensor(x.with_element(to))])
}

pub fn constant(v: &OpView) -> Result<Vec<Type>> {
    let value = v.attr("value").and_then(|a| a.as_dense()).ok_or("`value` must be dense elements")?;
    if value.ty.static_shape().is_none() {
        return Err(format!("constant type {} must be static", value.ty));
    }
    if let Some(bytes) = value.inline_bytes() {
        let n = value.ty.num_elements().unwrap() as usize;
        let len = bytes.len() / value.ty.element.byte_size();
        if len != n && len != 1 {
            return Err(format!("constant has {len} elements but its type {} holds {n}", value.ty));
        }
    } else if let crate::attributes::DenseStorage::Resource(h) = &value.storage {
        if let Some(blob) = v.module.resources.get(h) {
            let want = value.ty.byte_size().unwrap() as usize;
            if blob.len() != want {
                return Err(format!("resource `{}` has {} bytes but {} needs {want}", h.0, blob.len(), value.ty));
            }
        }
    }
    Ok(vec![Type::Tensor(value.ty.clone())])
}

pub fn shape_of(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?;
    let len = x.rank().map(|r| {
        let r = r as i64;
        let clamp = |a: i64| if a < 0 { (a + r).max(0) } else { a.min(r) };
        let (s, e) = (clamp(v.int("start")), clamp(v.opt_int("end").unwrap_or(r)));
        Dim::Known((e - s).max(0) as u64)
    });
    Ok(vec![tensor(Some(vec![len.unwrap_or(Dim::Dynamic)]), ElementType::I64)])
}

pub fn range(v: &OpView) -> Result<Vec<Type>> {
    let start = v.tensor(0)?;
    let vals: Option<Vec<f64>> = (0..3)
        .map(|i| {
            v.constant_of(v.operands()[i])
                .and_then(|d| crate::literal::Literal::from_dense(d, &v.module.resources))
                .map(|l| l.to_f64()[0])
        })
        .collect();
    let len = vals.map(|v| {
        if v[2] == 0.0 {
            return Err("range delta must not be zero".to_string());
        }
        let len = ((v[1] - v[0]) / v[2]).ceil().max(0.0);
        if !len.is_finite() || len >= u64::MAX as f64 {
            return Err(format!("range from {} to {} by {} has no finite length", v[0], v[1], v[2]));
        }
        Ok(Dim::Known(len as u64))
    });
    let len = match len {
        Some(r) => r?,
        None => Dim::Dynamic,
    };
    Ok(vec![tensor(Some(vec![len]), start.element)])
}

pub fn constant_of_shape(v: &OpView) -> Result<Vec<Type>> {
    let element = v.attr("value").and_then(|a| a.as_dense()).map_or(ElementType::F32, |d| d.ty.element);
    let shape = match v.const_ints(v.operands()[0]) {
        Some(s) if s.iter().any(|&d| d < 0) => return Err(format!("shape {s:?} has a negative extent")),
        Some(s) => Some(s.iter().map(|&d| Dim::Known(d as u64)).collect()),
        None => shape_operand_len(v, 0)?.map(|r| vec![Dim::Dynamic; r]),
    };
    Ok(vec![tensor(shape, element)])
}

pub fn dropout(v: &OpView) -> Result<Vec<Type>> {
    let x = v.tensor(0)?.clone();
    let mut out = vec![Type::Tensor(x.clone())];
    if v.module.op(v.id).results().len() == 2 {
        out.push(Type::Tensor(x.with_element(ElementType::I1)));
    }
    Ok(out)
}

/// Ops whose results are whatever they declare (a kernel's results come from its body).
pub fn declared(v: &OpView) -> Result<Vec<Type>> {
    let op = v.module.op(v.id);
    Ok(op.results().iter().map(|r| v.module.value_type(*r).clone()).collect())
}

pub fn none(_: &OpView) -> Result<Vec<Type>> {
    Ok(Vec::new())
}

/// Whether a declared type agrees with an inferred one (`?` and unranked agree with anything).
pub fn compatible(declared: &Type, inferred: &Type) -> bool {
    match (declared, inferred) {
        (Type::Tensor(d), Type::Tensor(i)) => {
            d.element == i.element
                && match (&d.shape, &i.shape) {
                    (Some(ds), Some(is)) => {
                        ds.len() == is.len()
                            && ds.iter().zip(is).all(|(a, b)| match (a, b) {
                                (Dim::Known(x), Dim::Known(y)) => x == y,
                                _ => true,
                            })
                    }
                    _ => true,
                }
        }
        (a, b) => a == b,
    }
}

/// The more precise of two compatible types (what shape inference writes back).
pub fn refine(declared: &Type, inferred: &Type) -> Type {
    match (declared, inferred) {
        (Type::Tensor(d), Type::Tensor(i)) => match (&d.shape, &i.shape) {
            (None, _) => inferred.clone(),
            (Some(_), None) => declared.clone(),
            (Some(ds), Some(is)) => Type::Tensor(TensorType {
                shape: Some(ds.iter().zip(is).map(|(a, b)| if *a == Dim::Dynamic { *b } else { *a }).collect()),
                element: d.element,
            }),
        },
        _ => declared.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        let k = |v: &[u64]| v.iter().map(|&d| Dim::Known(d)).collect::<Vec<_>>();
        let out = broadcast(&[Some(&k(&[8, 1, 6, 1])), Some(&k(&[7, 1, 5]))]).unwrap().unwrap();
        assert_eq!(out, k(&[8, 7, 6, 5]));
        assert!(broadcast(&[Some(&k(&[3])), Some(&k(&[4]))]).is_err());
    }

    #[test]
    fn reshape_resolves_zero_and_minus_one() {
        let k = |v: &[u64]| v.iter().map(|&d| Dim::Known(d)).collect::<Vec<_>>();
        assert_eq!(reshape_target(&k(&[2, 3, 4]), &[0, -1], false).unwrap(), k(&[2, 12]));
        assert!(reshape_target(&k(&[2, 3, 4]), &[5, -1], false).is_err());
        assert!(reshape_target(&k(&[2, 3]), &[-1, -1], false).is_err());
    }

    #[test]
    fn pooling_windows_follow_onnx_ceil_mode() {
        // 112 -> 56 for ResNet's 3x3/2 max pool with padding 1.
        assert_eq!(window_out(Dim::Known(112), 3, 2, 1, (1, 1), false).unwrap(), Dim::Known(56));
        // ONNX maxpool_2d_ceil: 4x4 input, 3x3 kernel, stride 2 -> 2x2.
        assert_eq!(window_out(Dim::Known(4), 3, 2, 1, (0, 0), true).unwrap(), Dim::Known(2));
        assert_eq!(window_out(Dim::Known(4), 3, 2, 1, (0, 0), false).unwrap(), Dim::Known(1));
    }
}
