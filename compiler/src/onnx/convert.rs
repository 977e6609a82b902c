//! ONNX node -> smelt ops. One arm per ONNX operator; opset differences are normalized to the
//! newest form here, so the dialect has one spelling for each operation.

use super::proto::{self, attribute_proto::AttributeType, NodeProto};
use super::{tensor_to_dense, Importer};
use crate::attributes::{Attribute, DenseElements, DenseStorage};
use crate::builder::Builder;
use crate::dialect::{self, names, Arity, AttrDefault, AttrKind, OpDef};
use crate::ir::{BlockId, OpSpec, ValueId};
use crate::location::Location;
use crate::types::{ElementType, TensorType, Type};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Operators with an arm below: those whose forms differ from the dialect's op (older opsets'
/// attributes, several ops, other operand orders). Operators that map one to one are named by
/// their op's table entry (`OpDef::onnx`) and converted by [`convert_direct`].
const CONVERTED: &[&str] = &[
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "CastLike",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "DepthToSpace",
    "DequantizeLinear",
    "Dropout",
    "Einsum",
    "Flatten",
    "Gemm",
    "GroupNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "LogSoftmax",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Pad",
    "QuantizeLinear",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "Reshape",
    "Resize",
    "Shape",
    "Slice",
    "Softmax",
    "SpaceToDepth",
    "Split",
    "Squeeze",
    "Sum",
    "Transpose",
    "Unsqueeze",
];

pub fn is_supported(op_type: &str) -> bool {
    CONVERTED.contains(&op_type) || direct(op_type).is_some()
}

/// The op that imports `op_type` one to one, by the op table.
fn direct(op_type: &str) -> Option<&'static OpDef> {
    static TABLE: OnceLock<HashMap<&'static str, &'static OpDef>> = OnceLock::new();
    TABLE.get_or_init(|| dialect::all_ops().filter_map(|d| Some((d.onnx?, d))).collect()).get(op_type).copied()
}

/// ONNX's attribute spelling in the dialect's: `transA` -> `trans_a`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Converts a node to `def` one to one: its inputs as the operands in order (an empty name is
/// an absent optional input, only after the present ones), its attributes by name, and the
/// table's default for each attribute the node leaves out, so printed IR states every value.
fn convert_direct(c: &mut Ctx, def: &'static OpDef) -> R<Vec<ValueId>> {
    let mut operands = Vec::new();
    for i in 0..c.node.input.len() {
        match c.input(i)? {
            Some(v) if operands.len() == i => operands.push(v),
            Some(_) => return Err(format!("input #{i} is given after an absent optional input").into()),
            None => {}
        }
    }
    for a in &c.node.attribute {
        if def.attr_def(&snake_case(a.name())).is_none() {
            return Err(format!("'{}' has no attribute '{}'", c.node.op_type(), a.name()).into());
        }
    }
    let mut attrs = Vec::new();
    for d in def.attributes {
        let onnx_name = c.node.attribute.iter().find(|a| snake_case(a.name()) == d.name);
        let value = match (onnx_name, d.default) {
            (Some(a), _) => Some(match d.kind {
                AttrKind::Int => Attribute::Int(a.i(), ElementType::I64),
                AttrKind::Float => Attribute::Float(a.f() as f64, ElementType::F32),
                AttrKind::Bool => Attribute::Bool(a.i() != 0),
                AttrKind::String => Attribute::String(String::from_utf8_lossy(a.s()).into_owned()),
                AttrKind::I64Array => Attribute::I64Array(a.ints.clone()),
                other => return Err(format!("attribute '{}' of kind {other:?} is not importable", a.name()).into()),
            }),
            (None, AttrDefault::Int(v)) => Some(Attribute::Int(v, ElementType::I64)),
            (None, AttrDefault::Float(v)) => Some(Attribute::Float(v, ElementType::F32)),
            (None, AttrDefault::Bool(v)) => Some(Attribute::Bool(v)),
            (None, AttrDefault::String(v)) => Some(Attribute::String(v.to_string())),
            (None, AttrDefault::Each(_) | AttrDefault::None) => None,
        };
        if let Some(v) = value {
            attrs.push((d.name, v));
        }
    }
    let results = if def.results.len() == 1 && def.results[0].arity == Arity::One { 1 } else { c.node.output.len() };
    c.build_n(def.name, &operands, &attrs, results)
}

/// Why a node could not be converted: Smelt does not support what it asks for, or it is wrong.
#[derive(Debug)]
pub enum ConvError {
    Unsupported(String),
    Invalid(String),
}

impl From<String> for ConvError {
    fn from(message: String) -> Self {
        ConvError::Invalid(message)
    }
}

impl From<&str> for ConvError {
    fn from(message: &str) -> Self {
        ConvError::Invalid(message.to_string())
    }
}

fn unsupported<T>(message: impl Into<String>) -> Result<T, ConvError> {
    Err(ConvError::Unsupported(message.into()))
}

type R<T> = Result<T, ConvError>;

struct Ctx<'i, 'o> {
    imp: &'i mut Importer<'o>,
    block: BlockId,
    node: &'i NodeProto,
    loc: Location,
}

impl Ctx<'_, '_> {
    fn input(&self, i: usize) -> R<Option<ValueId>> {
        match self.node.input.get(i).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(name) => self
                .imp
                .values
                .get(name)
                .copied()
                .map(Some)
                .ok_or_else(|| format!("input '{name}' is not defined before this node").into()),
        }
    }

    fn req(&self, i: usize) -> R<ValueId> {
        Ok(self.input(i)?.ok_or_else(|| format!("input #{i} is required"))?)
    }

    fn attr(&self, name: &str) -> Option<&proto::AttributeProto> {
        self.node.attribute.iter().find(|a| a.name() == name)
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.attr(name).map(|a| a.i())
    }

    /// Whether the import accepts files ONNX Runtime refuses (`ImportOptions::lenient`).
    fn lenient(&self) -> bool {
        self.imp.options.lenient
    }

    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    fn float(&self, name: &str) -> Option<f64> {
        self.attr(name).map(|a| a.f() as f64)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.attr(name).map(|a| String::from_utf8_lossy(a.s()).into_owned())
    }

    fn ty(&self, v: ValueId) -> &Type {
        self.imp.module.value_type(v)
    }

    fn tensor(&self, v: ValueId) -> R<TensorType> {
        Ok(self.ty(v).as_tensor().cloned().ok_or_else(|| "operands must be tensors".to_string())?)
    }

    fn element(&self, v: ValueId) -> R<ElementType> {
        Ok(self.tensor(v)?.element)
    }

    fn builder(&mut self) -> Builder<'_> {
        let mut b = Builder::at_end(&mut self.imp.module, self.block);
        b.loc = self.loc.clone();
        b
    }

    fn build(&mut self, op: &str, operands: &[ValueId], attrs: &[(&str, Attribute)]) -> R<ValueId> {
        Ok(self.builder().value(op, operands, attrs)?)
    }

    fn build_n(&mut self, op: &str, operands: &[ValueId], attrs: &[(&str, Attribute)], n: usize) -> R<Vec<ValueId>> {
        let id = self.builder().build_n(op, operands, attrs, n)?;
        Ok(self.imp.module.op(id).results().to_vec())
    }

    fn constant(&mut self, value: DenseElements) -> ValueId {
        let ty = Type::Tensor(value.ty.clone());
        let spec = OpSpec::new(names::CONSTANT).attr("value", Attribute::Dense(value)).results([ty]);
        let op = self.builder().insert(spec);
        self.imp.module.op(op).result()
    }

    fn const_i64(&mut self, values: &[i64]) -> ValueId {
        self.constant(DenseElements::from_i64(TensorType::of(&[values.len() as u64], ElementType::I64), values))
    }

    /// A one-element tensor of `element` (a scalar operand like a clip bound).
    fn scalar(&mut self, value: f64, element: ElementType) -> ValueId {
        self.constant(DenseElements::from_f64(TensorType::of(&[], element), &[value]))
    }

    /// Folds a variadic ONNX op (Max, Min, Sum) into a chain of binary smelt ops.
    fn chain(&mut self, op: &str) -> R<ValueId> {
        let inputs: Vec<ValueId> = (0..self.node.input.len()).map(|i| self.req(i)).collect::<R<_>>()?;
        let (&first, rest) = inputs.split_first().ok_or("needs at least one input")?;
        rest.iter().try_fold(first, |acc, &v| self.build(op, &[acc, v], &[]))
    }

    fn float_attr(&self, name: &str, default: f64) -> Attribute {
        Attribute::Float(self.float(name).unwrap_or(default), ElementType::F32)
    }

    /// A cast's attributes: the target type, and `saturate = false` where the node asks
    /// (8-bit float targets then overflow to infinity or NaN).
    fn cast_attrs(&self, to: ElementType) -> R<Vec<(&'static str, Attribute)>> {
        let mut attrs = vec![("to", Attribute::Type(Type::Scalar(to)))];
        if self.int("saturate") == Some(0) {
            attrs.push(("saturate", Attribute::Bool(false)));
        }
        if let Some(mode) = self.string("round_mode").filter(|m| m != "up") {
            if crate::minifloat::RoundMode::parse(&mode).is_none() {
                return Err(format!("round_mode '{mode}' is not one of up, down, nearest").into());
            }
            attrs.push(("round_mode", Attribute::String(mode)));
        }
        Ok(attrs)
    }

    /// Strides, dilations and explicit pads (`auto_pad` resolved) of a 3-D window op over
    /// `input` ([N, C, D, H, W]).
    fn window_3d(&self, input: &[u64], kernel: &[i64]) -> R<(Vec<i64>, Vec<i64>, Vec<i64>)> {
        let strides = self.ints("strides").unwrap_or_else(|| vec![1; 3]);
        let dilations = self.ints("dilations").unwrap_or_else(|| vec![1; 3]);
        if [&strides, &dilations].iter().any(|v| v.len() != 3 || v.iter().any(|&e| e < 1)) || kernel.len() != 3 {
            return Err("kernel, strides and dilations must have 3 positive entries".into());
        }
        let pads = match self.string("auto_pad").as_deref().unwrap_or("NOTSET") {
            "NOTSET" => self.ints("pads").unwrap_or_else(|| vec![0; 6]),
            "VALID" => vec![0; 6],
            mode @ ("SAME_UPPER" | "SAME_LOWER") => {
                let mut pads = vec![0; 6];
                for i in 0..3 {
                    let n = input[2 + i] as i64;
                    let total =
                        ((n + strides[i] - 1) / strides[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - n;
                    let (small, large) = (total.max(0) / 2, total.max(0) - total.max(0) / 2);
                    (pads[i], pads[i + 3]) = if mode == "SAME_UPPER" { (small, large) } else { (large, small) };
                }
                pads
            }
            other => return Err(format!("unknown auto_pad '{other}'").into()),
        };
        if pads.len() != 6 {
            return Err(format!("pads must have 6 entries, got {}", pads.len()).into());
        }
        Ok((strides, dilations, pads))
    }

    /// A per-group parameter `[groups]` repeated over each group's channels: `[channels]`.
    fn per_group_to_channels(&mut self, p: ValueId, groups: i64, channels: i64) -> R<ValueId> {
        let column = self.const_i64(&[groups, 1]);
        let p = self.build(names::RESHAPE, &[p, column], &[])?;
        let wide = self.const_i64(&[groups, channels / groups]);
        let p = self.build(names::EXPAND, &[p, wide], &[])?;
        let flat = self.const_i64(&[channels]);
        self.build(names::RESHAPE, &[p, flat], &[])
    }

    fn unsqueeze(&mut self, v: ValueId, axis: i64) -> R<ValueId> {
        let axes = self.const_i64(&[axis]);
        self.build(names::UNSQUEEZE, &[v, axes], &[])
    }

    fn squeeze(&mut self, v: ValueId, axis: i64) -> R<ValueId> {
        let axes = self.const_i64(&[axis]);
        self.build(names::SQUEEZE, &[v, axes], &[])
    }

    /// An attribute given as a list of axes, turned into the constant operand newer opsets take.
    fn axes_operand(&mut self, attr: &str, input: usize) -> R<Option<ValueId>> {
        if let Some(v) = self.input(input)? {
            return Ok(Some(v));
        }
        Ok(self.ints(attr).map(|axes| self.const_i64(&axes)))
    }

    /// Explicit pads for `auto_pad` on a 2-D window op: `[top, left, bottom, right]`.
    fn window_pads(
        &self,
        x: ValueId,
        kernel: &[i64],
        strides: &[i64],
        dilations: &[i64],
        one_d: bool,
    ) -> R<Option<Vec<i64>>> {
        let mode = self.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
        match mode.as_str() {
            "NOTSET" => Ok(lift(self.ints("pads"), one_d, true)),
            "VALID" => Ok(Some(vec![0; 4])),
            "SAME_UPPER" | "SAME_LOWER" => {
                let shape = self.tensor(x)?.static_shape().ok_or("auto_pad SAME needs a static input shape")?;
                if shape.len() != 4 || kernel.len() != 2 || strides.len() != 2 || dilations.len() != 2 {
                    return Err("auto_pad SAME needs a 4-D input and two kernel extents, strides and dilations".into());
                }
                if strides.iter().chain(dilations).chain(kernel).any(|&v| !(1..=1 << 20).contains(&v)) {
                    return Err("kernel extents, strides and dilations must be between 1 and 2^20".into());
                }
                let mut begin = [0; 2];
                let mut end = [0; 2];
                for i in 0..2 {
                    let input = i64::try_from(shape[2 + i]).map_err(|_| "input extent is out of range")?;
                    let out = (input + strides[i] - 1) / strides[i];
                    let total = ((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - input).max(0);
                    let small = total / 2;
                    (begin[i], end[i]) =
                        if mode == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                }
                Ok(Some(vec![begin[0], begin[1], end[0], end[1]]))
            }
            other => Err(format!("unknown auto_pad '{other}'").into()),
        }
    }
}

/// A 1-D window attribute as the 2-D one over a unit height: `[k]` -> `[1, k]`, pads
/// `[b, e]` -> `[0, b, 0, e]`. Unchanged for 2-D.
fn lift(values: Option<Vec<i64>>, one_d: bool, pads: bool) -> Option<Vec<i64>> {
    match (values, one_d) {
        (Some(v), true) if pads && v.len() == 2 => Some(vec![0, v[0], 0, v[1]]),
        (Some(v), true) if !pads && v.len() == 1 => Some(vec![1, v[0]]),
        (v, _) => v,
    }
}

fn i64s(v: Vec<i64>) -> Attribute {
    Attribute::I64Array(v)
}

pub(super) fn convert(imp: &mut Importer<'_>, block: BlockId, node: &NodeProto, loc: Location) -> R<Vec<ValueId>> {
    let opset = imp.opset;
    let legacy;
    let node = if opset < 7 {
        legacy = legacy_node(imp, block, node, loc.clone())?;
        &legacy
    } else {
        node
    };
    let mut c = Ctx { imp, block, node, loc };
    let op = node.op_type();
    if let Some(def) = direct(op) {
        return convert_direct(&mut c, def);
    }
    Ok(match op {
        "Max" => vec![c.chain(names::MAX)?],
        "Min" => vec![c.chain(names::MIN)?],
        "Sum" => vec![c.chain(names::ADD)?],
        "Mean" => {
            let sum = c.chain(names::ADD)?;
            let n = c.scalar(c.node.input.len() as f64, c.element(sum)?);
            vec![c.build(names::DIV, &[sum, n], &[])?]
        }
        "Clip" => {
            let x = c.req(0)?;
            let e = c.element(x)?;
            let (mut lo, hi) = if opset < 11 {
                let lo = c.float("min").map(|v| c.scalar(v, e));
                let hi = c.float("max").map(|v| c.scalar(v, e));
                (lo, hi)
            } else {
                (c.input(1)?, c.input(2)?)
            };
            // A given max with an absent min needs an explicit lowest bound: slots fill in order.
            if hi.is_some() && lo.is_none() {
                lo = Some(c.scalar(e.lowest(), e));
            }
            let operands: Vec<ValueId> = [Some(x), lo, hi].into_iter().flatten().collect();
            vec![c.build(names::CLIP, &operands, &[])?]
        }
        "Cast" => {
            let x = c.req(0)?;
            let code = c.int("to").ok_or("missing 'to'")? as i32;
            let Some(to) = super::element_type(code) else {
                return unsupported(format!(
                    "casting to element type {} is not supported",
                    super::tensor::type_name(code)
                ));
            };
            vec![c.build(names::CAST, &[x], &c.cast_attrs(to)?)?]
        }
        "CastLike" => {
            let (x, like) = (c.req(0)?, c.req(1)?);
            let to = c.element(like)?;
            vec![c.build(names::CAST, &[x], &c.cast_attrs(to)?)?]
        }
        "Constant" => vec![constant_node(&mut c)?],
        "ConstantOfShape" => {
            let shape = c.req(0)?;
            let mut attrs = Vec::new();
            if let Some(t) = c.attr("value").and_then(|a| a.t.as_ref()) {
                let (ty, data) = tensor_to_dense(t)?;
                attrs.push((
                    "value",
                    Attribute::Dense(DenseElements { ty, storage: DenseStorage::Inline(data.to_vec().into()) }),
                ));
            }
            vec![c.build(names::CONSTANT_OF_SHAPE, &[shape], &attrs)?]
        }
        "Conv" => {
            let (x, w) = (c.req(0)?, c.req(1)?);
            let spatial = c.tensor(w)?.rank().map_or(0, |r| r.saturating_sub(2));
            if spatial == 3 {
                return Ok(vec![conv_3d(&mut c, x, w)?]);
            }
            if !(1..=2).contains(&spatial) {
                return unsupported(format!(
                    "only 1-D, 2-D and 3-D convolutions are supported (this one is {spatial}-D)"
                ));
            }
            // A 1-D convolution is a 2-D one over a unit height.
            let one_d = spatial == 1;
            let (x, w) = if one_d { (c.unsqueeze(x, 2)?, c.unsqueeze(w, 2)?) } else { (x, w) };
            let wt = c.tensor(w)?;
            let from_weights = wt.static_shape().map(|s| vec![s[2] as i64, s[3] as i64]);
            let kernel = match (lift(c.ints("kernel_shape"), one_d, false), from_weights) {
                (Some(k), Some(w)) if k != w && !c.lenient() => {
                    return Err(ConvError::Invalid(format!(
                        "kernel_shape {k:?} contradicts the weights' window {w:?}"
                    )));
                }
                (_, Some(w)) => w,
                (Some(k), None) => k,
                (None, None) => vec![1, 1],
            };
            let strides = lift(c.ints("strides"), one_d, false).unwrap_or_else(|| vec![1, 1]);
            let dilations = lift(c.ints("dilations"), one_d, false).unwrap_or_else(|| vec![1, 1]);
            let pads = c.window_pads(x, &kernel, &strides, &dilations, one_d)?;
            let mut operands = vec![x, w];
            operands.extend(c.input(2)?);
            let mut attrs = vec![("strides", i64s(strides)), ("dilations", i64s(dilations))];
            if let Some(p) = pads {
                attrs.push(("pads", i64s(p)));
            }
            if let Some(g) = c.int("group") {
                attrs.push(("group", Attribute::Int(g, ElementType::I64)));
            }
            let y = c.build(names::CONV2D, &operands, &attrs)?;
            vec![if one_d { c.squeeze(y, 2)? } else { y }]
        }
        "ConvTranspose" => {
            let (x, w) = (c.req(0)?, c.req(1)?);
            let spatial = c.tensor(w)?.rank().map_or(0, |r| r.saturating_sub(2));
            if !(1..=3).contains(&spatial) {
                return unsupported(format!(
                    "only 1-D, 2-D and 3-D transposed convolutions are supported (this one is {spatial}-D)"
                ));
            }
            // A 1-D transposed convolution is a 2-D one over a unit height.
            let one_d = spatial == 1;
            let (x, w) = if one_d { (c.unsqueeze(x, 2)?, c.unsqueeze(w, 2)?) } else { (x, w) };
            let kernel: Vec<i64> = match c.tensor(w)?.static_shape() {
                Some(s) => s[2..].iter().map(|&d| d as i64).collect(),
                None => return unsupported("the weight needs a static shape"),
            };
            let k = kernel.len();
            if let Some(given) = lift(c.ints("kernel_shape"), one_d, false).filter(|g| *g != kernel) {
                return Err(format!("kernel_shape {given:?} contradicts the weights' window {kernel:?}").into());
            }
            let strides = lift(c.ints("strides"), one_d, false).unwrap_or_else(|| vec![1; k]);
            let dilations = lift(c.ints("dilations"), one_d, false).unwrap_or_else(|| vec![1; k]);
            let mut extra = lift(c.ints("output_padding"), one_d, false).unwrap_or_else(|| vec![0; k]);
            if one_d {
                extra[0] = 0;
            }
            for (name, v) in [("strides", &strides), ("dilations", &dilations), ("output_padding", &extra)] {
                if v.len() != k {
                    return Err(format!("'{name}' has {} entries for {k} spatial axes", v.len()).into());
                }
            }
            let auto_pad = c.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
            let input = c.tensor(x)?.static_shape();
            let wanted = match (lift(c.ints("output_shape"), one_d, false), auto_pad.as_str()) {
                (Some(shape), _) => Some(shape),
                (None, "SAME_UPPER" | "SAME_LOWER") => {
                    let input = input.as_ref().ok_or("auto_pad needs a static input shape")?;
                    Some((0..k).map(|i| input[2 + i] as i64 * strides[i]).collect())
                }
                _ => None,
            };
            let pads = match wanted {
                // ONNX's rule: the padding that gives the wanted extent, its odd unit at the end
                // for SAME_UPPER and at the start otherwise.
                Some(shape) => {
                    let input = input.as_ref().ok_or("output_shape needs a static input shape")?;
                    if shape.len() != k {
                        return Err(format!("output_shape has {} entries for {k} spatial axes", shape.len()).into());
                    }
                    let mut pads = vec![0; 2 * k];
                    for i in 0..k {
                        let total =
                            strides[i] * (input[2 + i] as i64 - 1) + extra[i] + (kernel[i] - 1) * dilations[i] + 1
                                - shape[i];
                        let half = total.div_euclid(2);
                        (pads[i], pads[i + k]) =
                            if auto_pad == "SAME_UPPER" { (half, total - half) } else { (total - half, half) };
                    }
                    pads
                }
                None if auto_pad == "VALID" => vec![0; 2 * k],
                None => lift(c.ints("pads"), one_d, true).unwrap_or_else(|| vec![0; 2 * k]),
            };
            if pads.len() != 2 * k {
                return Err(format!("'pads' has {} entries for {k} spatial axes", pads.len()).into());
            }
            let window = TransposedWindow { strides, dilations, extra, pads, group: c.int("group").unwrap_or(1) };
            if k == 3 {
                return Ok(vec![conv_transpose_3d(&mut c, x, w, &window)?]);
            }
            let mut operands = vec![x, w];
            operands.extend(c.input(2)?);
            let y = c.build(names::CONV_TRANSPOSE, &operands, &window.attrs(0..2))?;
            vec![if one_d { c.squeeze(y, 2)? } else { y }]
        }
        "MaxPool" | "AveragePool" => {
            let x = c.req(0)?;
            let given = c.ints("kernel_shape").ok_or("missing 'kernel_shape'")?;
            if !(1..=3).contains(&given.len()) {
                return unsupported(format!(
                    "only 1-D, 2-D and 3-D pooling is supported (kernel_shape has {} entries)",
                    given.len()
                ));
            }
            let with_indices = op == "MaxPool" && node.output.iter().skip(1).any(|o| !o.is_empty());
            if given.len() == 3 {
                if with_indices {
                    return unsupported("the Indices output of a 3-D MaxPool is not supported");
                }
                return Ok(vec![pool_3d(&mut c, x, &given)?]);
            }
            let one_d = given.len() == 1;
            let x = if one_d { c.unsqueeze(x, 2)? } else { x };
            let kernel = lift(Some(given), one_d, false).unwrap();
            let strides = lift(c.ints("strides"), one_d, false).unwrap_or_else(|| vec![1, 1]);
            let dilations = lift(c.ints("dilations"), one_d, false).unwrap_or_else(|| vec![1, 1]);
            let pads = c.window_pads(x, &kernel, &strides, &dilations, one_d)?;
            let mut attrs = vec![("kernel_shape", i64s(kernel)), ("strides", i64s(strides))];
            if c.ints("dilations").is_some() {
                attrs.push(("dilations", i64s(dilations)));
            }
            if let Some(p) = pads {
                attrs.push(("pads", i64s(p)));
            }
            if c.int("ceil_mode").unwrap_or(0) != 0 {
                attrs.push(("ceil_mode", Attribute::Bool(true)));
            }
            if op == "AveragePool" && c.int("count_include_pad").unwrap_or(0) != 0 {
                attrs.push(("count_include_pad", Attribute::Bool(true)));
            }
            let name = if op == "MaxPool" { names::MAX_POOL } else { names::AVG_POOL };
            let y = c.build(name, &[x], &attrs)?;
            let mut results = vec![if one_d { c.squeeze(y, 2)? } else { y }];
            if with_indices {
                if let Some(order) = c.int("storage_order").filter(|&o| o != 0) {
                    attrs.push(("storage_order", Attribute::Int(order, ElementType::I64)));
                }
                let indices = c.build(names::MAX_POOL_INDICES, &[x], &attrs)?;
                results.push(if one_d { c.squeeze(indices, 2)? } else { indices });
            }
            results
        }
        "BatchNormalization" if c.int("training_mode").unwrap_or(0) != 0 && opset >= 14 => batch_norm_training(&mut c)?,
        "BatchNormalization" => {
            if node.output.iter().skip(1).any(|o| !o.is_empty()) || c.int("training_mode").unwrap_or(0) != 0 {
                return unsupported("training-mode batch normalization before opset 14 is not supported");
            }
            let operands: Vec<ValueId> = (0..5).map(|i| c.req(i)).collect::<R<_>>()?;
            let eps = c.float_attr("epsilon", 1e-5);
            vec![c.build(names::BATCH_NORM, &operands, &[("epsilon", eps)])?]
        }
        "LayerNormalization" => {
            let x = c.req(0)?;
            let mut operands = vec![x, c.req(1)?];
            operands.extend(c.input(2)?);
            let axis = c.int("axis").unwrap_or(-1);
            let attrs = [("axis", Attribute::Int(axis, ElementType::I64)), ("epsilon", c.float_attr("epsilon", 1e-5))];
            let mut results = vec![c.build(names::LAYER_NORM, &operands, &attrs)?];
            if node.output.iter().skip(1).any(|o| !o.is_empty()) {
                // The statistics, as ONNX's function body computes them (in the input's type):
                // the mean and 1 / sqrt(variance + epsilon) over the normalized axes, kept.
                let rank = c.tensor(x)?.rank().ok_or("needs a ranked input")? as i64;
                let first = if axis < 0 { axis + rank } else { axis };
                let axes = c.const_i64(&(first..rank).collect::<Vec<_>>());
                let keep = [("keepdims", Attribute::Bool(true))];
                let mean = c.build(names::REDUCE_MEAN, &[x, axes], &keep)?;
                let centered = c.build(names::SUB, &[x, mean], &[])?;
                let squared = c.build(names::MUL, &[centered, centered], &[])?;
                let var = c.build(names::REDUCE_MEAN, &[squared, axes], &keep)?;
                let eps = c.scalar(c.float("epsilon").unwrap_or(1e-5), c.element(x)?);
                let shifted = c.build(names::ADD, &[var, eps], &[])?;
                let sd = c.build(names::SQRT, &[shifted], &[])?;
                let inv = c.build(names::RECIPROCAL, &[sd], &[])?;
                results.extend([mean, inv]);
            }
            results
        }
        "GroupNormalization" | "InstanceNormalization" => {
            let (x, scale, bias) = (c.req(0)?, c.req(1)?, c.req(2)?);
            let channels = c.tensor(x)?.shape.and_then(|s| s.get(1).and_then(|d| d.known()));
            let groups = match op {
                "InstanceNormalization" => channels.ok_or("needs a static channel count")? as i64,
                _ => c.int("num_groups").ok_or("missing 'num_groups'")?,
            };
            // Before opset 21 the scale and bias held one value per group: each repeats over
            // the group's channels.
            let (scale, bias) = if op == "GroupNormalization" && opset < 21 {
                let c_total = channels.ok_or("needs a static channel count")? as i64;
                if groups < 1 || c_total % groups != 0 {
                    return Err(format!("`num_groups` {groups} must divide the {c_total} channels").into());
                }
                (c.per_group_to_channels(scale, groups, c_total)?, c.per_group_to_channels(bias, groups, c_total)?)
            } else {
                (scale, bias)
            };
            let attrs =
                [("num_groups", Attribute::Int(groups, ElementType::I64)), ("epsilon", c.float_attr("epsilon", 1e-5))];
            vec![c.build(names::GROUP_NORM, &[x, scale, bias], &attrs)?]
        }
        "Einsum" => vec![einsum(&mut c)?],
        "QuantizeLinear" | "DequantizeLinear" => {
            if c.int("block_size").unwrap_or(0) != 0 {
                return unsupported("blocked quantization (block_size) is not supported");
            }
            let (x, scale) = (c.req(0)?, c.req(1)?);
            let zero = match c.input(2)? {
                Some(z) => z,
                None => {
                    // An absent zero point is 0 of the quantized type: the output's (u8 unless
                    // `output_dtype` says) for QuantizeLinear, the input's for DequantizeLinear.
                    let integer = if op == "QuantizeLinear" {
                        let code = c.int("output_dtype").filter(|&d| d != 0).unwrap_or(2) as i32;
                        super::tensor::element_type(code).ok_or_else(|| {
                            ConvError::Unsupported(format!(
                                "output type {} is not supported",
                                super::tensor::type_name(code)
                            ))
                        })?
                    } else {
                        c.element(x)?
                    };
                    let shape = c.tensor(scale)?.static_shape().ok_or("the scale needs a static shape")?;
                    c.constant(DenseElements::from_i64(TensorType::of(&shape, integer), &[0]))
                }
            };
            let name = if op == "QuantizeLinear" { names::QUANTIZE_LINEAR } else { names::DEQUANTIZE_LINEAR };
            let axis = [("axis", Attribute::Int(c.int("axis").unwrap_or(1), ElementType::I64))];
            vec![c.build(name, &[x, scale, zero], &axis)?]
        }
        "DepthToSpace" | "SpaceToDepth" => {
            // ONNX's own function bodies: a reshape exposing the blocks, a transpose, a reshape.
            let x = c.req(0)?;
            let b = c.int("blocksize").ok_or("missing 'blocksize'")?;
            let dims = c.tensor(x)?.shape.ok_or("needs a ranked input")?;
            let [_, ch, h, w] = dims[..] else {
                return Err(format!("expects a 4-D NCHW input, got rank {}", dims.len()).into());
            };
            let (Some(ch), Some(h), Some(w)) = (ch.known(), h.known(), w.known()) else {
                return unsupported("channels and spatial dimensions must be static (pin them with --shape)");
            };
            let (ch, h, w) = (ch as i64, h as i64, w as i64);
            if b < 1 {
                return Err(format!("`blocksize` must be positive, got {b}").into());
            }
            let mode = c.string("mode").unwrap_or_else(|| "DCR".into());
            if mode != "DCR" && mode != "CRD" {
                return Err(format!("unknown mode '{mode}'").into());
            }
            let (split, perm, merged) = if op == "DepthToSpace" {
                if ch % (b * b) != 0 {
                    return Err(format!("{ch} channels do not divide into blocks of {b}x{b}").into());
                }
                let (split, perm) = match mode.as_str() {
                    "DCR" => (vec![0, b, b, ch / (b * b), h, w], vec![0, 3, 4, 1, 5, 2]),
                    _ => (vec![0, ch / (b * b), b, b, h, w], vec![0, 1, 4, 2, 5, 3]),
                };
                (split, perm, vec![0, ch / (b * b), h * b, w * b])
            } else {
                if h % b != 0 || w % b != 0 {
                    return Err(format!("a {h}x{w} map does not divide into blocks of {b}x{b}").into());
                }
                // Mode (opset 28) orders the output channels as DepthToSpace reads them.
                let perm = if mode == "DCR" { vec![0, 3, 5, 1, 2, 4] } else { vec![0, 1, 3, 5, 2, 4] };
                (vec![0, ch, h / b, b, w / b, b], perm, vec![0, ch * b * b, h / b, w / b])
            };
            let split = c.const_i64(&split);
            let blocks = c.build(names::RESHAPE, &[x, split], &[])?;
            let moved = c.build(names::TRANSPOSE, &[blocks], &[("perm", i64s(perm))])?;
            let merged = c.const_i64(&merged);
            vec![c.build(names::RESHAPE, &[moved, merged], &[])?]
        }
        "Gemm" => {
            let mut operands = vec![c.req(0)?, c.req(1)?];
            operands.extend(c.input(2)?);
            let mut attrs = vec![("alpha", c.float_attr("alpha", 1.0)), ("beta", c.float_attr("beta", 1.0))];
            if c.int("transA").unwrap_or(0) != 0 {
                attrs.push(("trans_a", Attribute::Bool(true)));
            }
            if c.int("transB").unwrap_or(0) != 0 {
                attrs.push(("trans_b", Attribute::Bool(true)));
            }
            vec![c.build(names::GEMM, &operands, &attrs)?]
        }
        "Softmax" | "LogSoftmax" => {
            let x = c.req(0)?;
            let name = if op == "Softmax" { names::SOFTMAX } else { names::LOG_SOFTMAX };
            let rank = c.tensor(x)?.rank().ok_or("needs a ranked input")? as i64;
            let default_axis = if opset < 13 { 1 } else { -1 };
            let axis = c.int("axis").unwrap_or(default_axis);
            let axis = if axis < 0 { axis + rank } else { axis };
            if opset < 13 && axis != rank - 1 {
                // Before opset 13 the input is flattened to 2-D around `axis`.
                let flat = c.build(names::FLATTEN, &[x], &[("axis", Attribute::Int(axis, ElementType::I64))])?;
                let s = c.build(name, &[flat], &[("axis", Attribute::Int(-1, ElementType::I64))])?;
                let shape = c.build(names::SHAPE, &[x], &[])?;
                vec![c.build(names::RESHAPE, &[s, shape], &[])?]
            } else {
                vec![c.build(name, &[x], &[("axis", Attribute::Int(axis, ElementType::I64))])?]
            }
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" => {
            let x = c.req(0)?;
            // Axes became an input in opset 13 for ReduceSum and in opset 18 for the others.
            let input_axes_from = if op == "ReduceSum" { 13 } else { 18 };
            let axes = if opset >= input_axes_from { c.input(1)? } else { c.axes_operand("axes", usize::MAX)? };
            let mut operands = vec![x];
            operands.extend(axes);
            let mut attrs = vec![("keepdims", Attribute::Bool(c.int("keepdims").unwrap_or(1) != 0))];
            if c.int("noop_with_empty_axes").unwrap_or(0) != 0 {
                attrs.push(("noop_with_empty_axes", Attribute::Bool(true)));
            }
            let name = format!("smelt.reduce_{}", &op["Reduce".len()..].to_lowercase());
            vec![c.build(&name, &operands, &attrs)?]
        }
        "Reshape" => {
            let (x, shape) = (c.req(0)?, c.req(1)?);
            let mut attrs = Vec::new();
            if c.int("allowzero").unwrap_or(0) != 0 {
                attrs.push(("allowzero", Attribute::Bool(true)));
            }
            vec![c.build(names::RESHAPE, &[x, shape], &attrs)?]
        }
        "Flatten" => {
            let x = c.req(0)?;
            vec![c.build(
                names::FLATTEN,
                &[x],
                &[("axis", Attribute::Int(c.int("axis").unwrap_or(1), ElementType::I64))],
            )?]
        }
        "Transpose" => {
            let x = c.req(0)?;
            let attrs: Vec<(&str, Attribute)> = c.ints("perm").map(|p| ("perm", i64s(p))).into_iter().collect();
            vec![c.build(names::TRANSPOSE, &[x], &attrs)?]
        }
        "Squeeze" => {
            let x = c.req(0)?;
            let axes = if opset >= 13 { c.input(1)? } else { c.axes_operand("axes", usize::MAX)? };
            let operands: Vec<ValueId> = std::iter::once(x).chain(axes).collect();
            vec![c.build(names::SQUEEZE, &operands, &[])?]
        }
        "Unsqueeze" => {
            let x = c.req(0)?;
            let axes = if opset >= 13 { c.input(1)? } else { c.axes_operand("axes", usize::MAX)? };
            let axes = axes.ok_or("missing axes")?;
            vec![c.build(names::UNSQUEEZE, &[x, axes], &[])?]
        }
        "Concat" => {
            let inputs: Vec<ValueId> = (0..node.input.len()).map(|i| c.req(i)).collect::<R<_>>()?;
            vec![c.build(
                names::CONCAT,
                &inputs,
                &[("axis", Attribute::Int(c.int("axis").ok_or("missing 'axis'")?, ElementType::I64))],
            )?]
        }
        "Split" => {
            let x = c.req(0)?;
            let split = if opset >= 13 { c.input(1)? } else { c.ints("split").map(|s| c.const_i64(&s)) };
            let operands: Vec<ValueId> = std::iter::once(x).chain(split).collect();
            let axis = Attribute::Int(c.int("axis").unwrap_or(0), ElementType::I64);
            c.build_n(names::SPLIT, &operands, &[("axis", axis)], node.output.len())?
        }
        "Slice" => {
            let x = c.req(0)?;
            let operands = if opset >= 10 {
                let (starts, ends) = (c.req(1)?, c.req(2)?);
                let (mut axes, steps) = (c.input(3)?, c.input(4)?);
                if axes.is_none() && steps.is_some() {
                    let n = c
                        .tensor(starts)?
                        .static_shape()
                        .and_then(|s| s.first().copied())
                        .ok_or("starts must have a static length")?;
                    axes = Some(c.const_i64(&(0..n as i64).collect::<Vec<_>>()));
                }
                [Some(x), Some(starts), Some(ends), axes, steps].into_iter().flatten().collect::<Vec<_>>()
            } else {
                let starts = c.ints("starts").ok_or("missing 'starts'")?;
                let ends = c.ints("ends").ok_or("missing 'ends'")?;
                let (s, e) = (c.const_i64(&starts), c.const_i64(&ends));
                let axes = c.ints("axes").map(|a| c.const_i64(&a));
                [Some(x), Some(s), Some(e), axes].into_iter().flatten().collect()
            };
            vec![c.build(names::SLICE, &operands, &[])?]
        }
        "Shape" => {
            let x = c.req(0)?;
            let mut attrs = Vec::new();
            if let Some(s) = c.int("start") {
                attrs.push(("start", Attribute::Int(s, ElementType::I64)));
            }
            if let Some(e) = c.int("end") {
                attrs.push(("end", Attribute::Int(e, ElementType::I64)));
            }
            vec![c.build(names::SHAPE, &[x], &attrs)?]
        }
        "Pad" => {
            let x = c.req(0)?;
            let mode = c.string("mode").unwrap_or_else(|| "constant".into());
            let operands = if opset >= 11 {
                let pads = c.req(1)?;
                let (value, axes) = (c.input(2)?, c.input(3)?);
                let value = match (value, axes) {
                    (None, Some(_)) => Some(c.scalar(0.0, c.element(x)?)),
                    (v, _) => v,
                };
                [Some(x), Some(pads), value, axes].into_iter().flatten().collect::<Vec<_>>()
            } else {
                let pads = c.ints("pads").ok_or("missing 'pads'")?;
                let p = c.const_i64(&pads);
                let v = c.scalar(c.float("value").unwrap_or(0.0), c.element(x)?);
                vec![x, p, v]
            };
            vec![c.build(names::PAD, &operands, &[("mode", Attribute::String(mode))])?]
        }
        "Resize" => {
            let x = c.req(0)?;
            let (roi, scales, sizes) =
                if opset < 11 { (None, Some(c.req(1)?), None) } else { (c.input(1)?, c.input(2)?, c.input(3)?) };
            let empty = |c: &mut Ctx| c.constant(DenseElements::from_f64(TensorType::of(&[0], ElementType::F32), &[]));
            // Slots fill in order: later operands need explicit empty earlier ones.
            let scales = match (scales, sizes) {
                (None, Some(_)) => Some(empty(&mut c)),
                (s, _) => s,
            };
            let roi = match (roi, scales) {
                (None, Some(_)) => Some(empty(&mut c)),
                (r, _) => r,
            };
            let operands: Vec<ValueId> = [Some(x), roi, scales, sizes].into_iter().flatten().collect();
            let mut attrs: Vec<(&str, Attribute)> = Vec::new();
            for name in ["mode", "coordinate_transformation_mode", "nearest_mode", "keep_aspect_ratio_policy"] {
                if let Some(v) = c.string(name) {
                    attrs.push((name, Attribute::String(v)));
                }
            }
            for name in ["cubic_coeff_a", "extrapolation_value"] {
                if c.attr(name).is_some() {
                    attrs.push((name, c.float_attr(name, 0.0)));
                }
            }
            for name in ["exclude_outside", "antialias"] {
                if c.int(name).unwrap_or(0) != 0 {
                    attrs.push((name, Attribute::Bool(true)));
                }
            }
            if let Some(axes) = c.ints("axes") {
                attrs.push(("axes", i64s(axes)));
            }
            vec![c.build(names::RESIZE, &operands, &attrs)?]
        }
        "Dropout" => {
            let x = c.req(0)?;
            // Training mode drops at random: only inference mode (absent or constant false) is
            // supported.
            if let Some(mode) = c.input(2)? {
                let off = c.imp.module.defining_op(mode).and_then(|d| {
                    let dense = c.imp.module.op(d).attr("value")?.as_dense()?;
                    Some(
                        crate::literal::Literal::from_dense(dense, &c.imp.module.resources)?
                            .to_i64()
                            .iter()
                            .all(|&v| v == 0),
                    )
                });
                if off != Some(true) {
                    return unsupported("training-mode dropout is not supported");
                }
            }
            let outputs = node.output.iter().filter(|o| !o.is_empty()).count().max(1);
            c.build_n(names::DROPOUT, &[x], &[], outputs)?
        }
        other => return unsupported(format!("operator '{other}' is not supported")),
    })
}

/// `Constant`: one of `value`, `value_float(s)`, `value_int(s)`.
/// A 3-D pool as two 2-D pools: over (H, W) with depth folded into the channels, then over
/// depth with the pooled plane as the width. A window's maximum, its sum and its count of
/// counted positions all factor by axis, so both pools keep MaxPool's and AveragePool's
/// padding, `ceil_mode` and `count_include_pad` semantics exactly.
fn pool_3d(c: &mut Ctx, x: ValueId, kernel: &[i64]) -> R<ValueId> {
    let input = c
        .tensor(x)?
        .static_shape()
        .ok_or_else(|| ConvError::Unsupported("3-D pooling needs a static input shape".into()))?;
    let [_, channels, depth, _, _] = input[..] else {
        return Err(format!("expects a 5-D input, got rank {}", input.len()).into());
    };
    let (strides, dilations, pads) = c.window_3d(&input, kernel)?;
    let mut common = Vec::new();
    if c.int("ceil_mode").unwrap_or(0) != 0 {
        common.push(("ceil_mode", Attribute::Bool(true)));
    }
    if c.node.op_type() == "AveragePool" && c.int("count_include_pad").unwrap_or(0) != 0 {
        common.push(("count_include_pad", Attribute::Bool(true)));
    }
    let name = if c.node.op_type() == "MaxPool" { names::MAX_POOL } else { names::AVG_POOL };
    let (c64, d64) = (channels as i64, depth as i64);
    let planes = c.const_i64(&[0, c64 * d64, input[3] as i64, input[4] as i64]);
    let planes = c.build(names::RESHAPE, &[x, planes], &[])?;
    let mut attrs = vec![
        ("kernel_shape", i64s(vec![kernel[1], kernel[2]])),
        ("strides", i64s(vec![strides[1], strides[2]])),
        ("dilations", i64s(vec![dilations[1], dilations[2]])),
        ("pads", i64s(vec![pads[1], pads[2], pads[4], pads[5]])),
    ];
    attrs.extend(common.iter().cloned());
    let pooled = c.build(name, &[planes], &attrs)?;
    let hw = c.tensor(pooled)?.static_shape().ok_or("the pooled planes need a static shape")?;
    let (ho, wo) = (hw[2] as i64, hw[3] as i64);
    let columns = c.const_i64(&[0, c64, d64, ho * wo]);
    let columns = c.build(names::RESHAPE, &[pooled, columns], &[])?;
    let mut attrs = vec![
        ("kernel_shape", i64s(vec![kernel[0], 1])),
        ("strides", i64s(vec![strides[0], 1])),
        ("dilations", i64s(vec![dilations[0], 1])),
        ("pads", i64s(vec![pads[0], 0, pads[3], 0])),
    ];
    attrs.extend(common);
    let pooled = c.build(name, &[columns], &attrs)?;
    let out_depth = c.tensor(pooled)?.static_shape().ok_or("the pooled depth needs a static shape")?[2] as i64;
    let volume = c.const_i64(&[0, c64, out_depth, ho, wo]);
    c.build(names::RESHAPE, &[pooled, volume], &[])
}

/// A transposed convolution's window, per spatial axis (`pads`: every start, then every end).
struct TransposedWindow {
    strides: Vec<i64>,
    dilations: Vec<i64>,
    extra: Vec<i64>,
    pads: Vec<i64>,
    group: i64,
}

impl TransposedWindow {
    /// The attributes of `smelt.conv_transpose` over the spatial axes `axes` (two of them).
    fn attrs(&self, axes: std::ops::Range<usize>) -> [(&'static str, Attribute); 5] {
        let k = self.strides.len();
        let pick = |v: &[i64]| v[axes.clone()].to_vec();
        let pads = [&self.pads[axes.clone()], &self.pads[k + axes.start..k + axes.end]].concat();
        [
            ("strides", i64s(pick(&self.strides))),
            ("pads", i64s(pads)),
            ("dilations", i64s(pick(&self.dilations))),
            ("output_padding", i64s(pick(&self.extra))),
            ("group", Attribute::Int(self.group, ElementType::I64)),
        ]
    }
}

/// A 3-D transposed convolution as `kd` 2-D ones with the input depths folded into the batch:
/// tap `k`'s 2-D result for input depth `i` lands on output depth `i * stride + k * dilation -
/// pad`, so each result is spread by the depth stride (zeros between), shifted to its tap's
/// offset and cropped to the output depth; the taps' results are summed, then the bias added.
fn conv_transpose_3d(c: &mut Ctx, x: ValueId, w: ValueId, window: &TransposedWindow) -> R<ValueId> {
    let need_static =
        || ConvError::Unsupported("3-D transposed convolution needs static input and weight shapes".into());
    let input = c.tensor(x)?.static_shape().ok_or_else(need_static)?;
    let weights = c.tensor(w)?.static_shape().ok_or_else(need_static)?;
    let (&[n, channels, depth, h, wd], &[w_in, out_group, kd, kh, kw]) = (&input[..], &weights[..]) else {
        return Err("expects a 5-D input and weight".into());
    };
    let i = |v: u64| v as i64;
    if w_in != channels {
        return Err(format!("the weights take {w_in} input channels, the input has {channels}").into());
    }
    let (stride, dilation) = (window.strides[0], window.dilations[0]);
    let (front, back) = (window.pads[0], window.pads[3]);
    let out_depth = stride * (i(depth) - 1) + window.extra[0] + (i(kd) - 1) * dilation + 1 - front - back;
    if out_depth < 1 || stride < 1 || dilation < 1 {
        return Err(format!("the output depth would be {out_depth}").into());
    }
    let depth_major = c.build(names::TRANSPOSE, &[x], &[("perm", i64s(vec![0, 2, 1, 3, 4]))])?;
    let flat = c.const_i64(&[i(n) * i(depth), i(channels), i(h), i(wd)]);
    let slabs = c.build(names::RESHAPE, &[depth_major, flat], &[])?;
    let tap_shape = c.const_i64(&[i(channels), i(out_group), i(kh), i(kw)]);
    let mut sum = None;
    for k in 0..i(kd) {
        let (from, to, axis) = (c.const_i64(&[k]), c.const_i64(&[k + 1]), c.const_i64(&[2]));
        let tap = c.build(names::SLICE, &[w, from, to, axis], &[])?;
        let tap = c.build(names::RESHAPE, &[tap, tap_shape], &[])?;
        let y = c.build(names::CONV_TRANSPOSE, &[slabs, tap], &window.attrs(1..3))?;
        let planes = c.tensor(y)?.static_shape().ok_or("the 2-D results need a static shape")?;
        let (out_channels, ho, wo) = (i(planes[1]), i(planes[2]), i(planes[3]));
        // [n, depth, 1, ...] padded to [n, depth, stride, ...]: input depth i at i * stride.
        let unit = c.const_i64(&[i(n), i(depth), 1, out_channels, ho, wo]);
        let mut spread = c.build(names::RESHAPE, &[y, unit], &[])?;
        if stride > 1 {
            let p = c.const_i64(&[0, 0, 0, 0, 0, 0, 0, 0, stride - 1, 0, 0, 0]);
            spread = c.build(names::PAD, &[spread, p], &[])?;
        }
        let long = c.const_i64(&[i(n), i(depth) * stride, out_channels, ho, wo]);
        let spread = c.build(names::RESHAPE, &[spread, long], &[])?;
        // Output depth o holds spread position o + front - k * dilation.
        let (shift, len) = (k * dilation - front, i(depth) * stride);
        let (lo, hi) = ((-shift).max(0), (out_depth - shift).min(len));
        let placed = if lo >= hi {
            None
        } else {
            let (from, to, axis) = (c.const_i64(&[lo]), c.const_i64(&[hi]), c.const_i64(&[1]));
            let kept = c.build(names::SLICE, &[spread, from, to, axis], &[])?;
            let (before, after) = (shift + lo, out_depth - (shift + hi));
            Some(if before > 0 || after > 0 {
                let p = c.const_i64(&[0, before, 0, 0, 0, 0, after, 0, 0, 0]);
                c.build(names::PAD, &[kept, p], &[])?
            } else {
                kept
            })
        };
        if let Some(placed) = placed {
            sum = Some(match sum {
                None => placed,
                Some(acc) => c.build(names::ADD, &[acc, placed], &[])?,
            });
        }
    }
    let Some(sum) = sum else { return Err("no weight tap reaches the output depth".into()) };
    let y = c.build(names::TRANSPOSE, &[sum], &[("perm", i64s(vec![0, 2, 1, 3, 4]))])?;
    match c.input(2)? {
        Some(bias) => {
            let column = c.const_i64(&[-1, 1, 1, 1]);
            let bias = c.build(names::RESHAPE, &[bias, column], &[])?;
            c.build(names::ADD, &[y, bias], &[])
        }
        None => Ok(y),
    }
}

/// Training-mode batch normalization (opset 14 and later), as ONNX defines it: the batch's
/// own mean and (population) variance per channel normalize `x`; the running statistics come
/// out as `input * momentum + batch * (1 - momentum)`.
fn batch_norm_training(c: &mut Ctx) -> R<Vec<ValueId>> {
    let (x, scale, bias, running_mean, running_var) = (c.req(0)?, c.req(1)?, c.req(2)?, c.req(3)?, c.req(4)?);
    let rank = c.tensor(x)?.rank().ok_or("needs a ranked input")? as i64;
    if rank < 2 {
        return Err(format!("expects an input of rank 2 or more, got {rank}").into());
    }
    let element = c.element(x)?;
    let axes: Vec<i64> = std::iter::once(0).chain(2..rank).collect();
    let axes = c.const_i64(&axes);
    let keep = [("keepdims", Attribute::Bool(true))];
    let mean = c.build(names::REDUCE_MEAN, &[x, axes], &keep)?;
    let centered = c.build(names::SUB, &[x, mean], &[])?;
    let squared = c.build(names::MUL, &[centered, centered], &[])?;
    let var = c.build(names::REDUCE_MEAN, &[squared, axes], &keep)?;
    let eps = c.scalar(c.float("epsilon").unwrap_or(1e-5), element);
    let shifted = c.build(names::ADD, &[var, eps], &[])?;
    let sd = c.build(names::SQRT, &[shifted], &[])?;
    let normalized = c.build(names::DIV, &[centered, sd], &[])?;
    // Per-channel vectors against [N, C, ...]: C, then a unit for each spatial axis.
    let column: Vec<i64> = std::iter::once(-1).chain((2..rank).map(|_| 1)).collect();
    let column = c.const_i64(&column);
    let scale = c.build(names::RESHAPE, &[scale, column], &[])?;
    let bias = c.build(names::RESHAPE, &[bias, column], &[])?;
    let scaled = c.build(names::MUL, &[normalized, scale], &[])?;
    let y = c.build(names::ADD, &[scaled, bias], &[])?;
    let momentum = c.float("momentum").unwrap_or(0.9);
    let (kept, taken) = (c.scalar(momentum, element), c.scalar(1.0 - momentum, element));
    let flat = c.const_i64(&[-1]);
    let mut running = Vec::new();
    for (old, batch) in [(running_mean, mean), (running_var, var)] {
        let batch = c.build(names::RESHAPE, &[batch, flat], &[])?;
        let old = c.build(names::MUL, &[old, kept], &[])?;
        let new = c.build(names::MUL, &[batch, taken], &[])?;
        running.push(c.build(names::ADD, &[old, new], &[])?);
    }
    Ok([vec![y], running].concat())
}

/// A 3-D convolution as `kd` 2-D ones with the output depths folded into the batch: the
/// depth-padded input, depth-major, is sliced once per depth tap (at the tap's dilated offset,
/// every stride-th depth), each slice convolved over (H, W) with that tap's weights, the
/// results summed and the depth moved back behind the channels.
fn conv_3d(c: &mut Ctx, x: ValueId, w: ValueId) -> R<ValueId> {
    let need_static = || ConvError::Unsupported("3-D convolution needs static input and weight shapes".into());
    let input = c.tensor(x)?.static_shape().ok_or_else(need_static)?;
    let weights = c.tensor(w)?.static_shape().ok_or_else(need_static)?;
    let (&[n, channels, depth, h, wd], &[out_channels, cin_group, kd, kh, kw]) = (&input[..], &weights[..]) else {
        return Err("expects a 5-D input and weight".into());
    };
    let kernel = [kd as i64, kh as i64, kw as i64];
    let (strides, dilations, pads) = c.window_3d(&input, &kernel)?;
    let group = c.int("group").unwrap_or(1);
    let i = |v: u64| v as i64;
    // Depth padding, then depth in front of the channels.
    let padded = if pads[0] != 0 || pads[3] != 0 {
        let p = c.const_i64(&[0, 0, pads[0], 0, 0, 0, 0, pads[3], 0, 0]);
        c.build(names::PAD, &[x, p], &[])?
    } else {
        x
    };
    let padded_depth = i(depth) + pads[0] + pads[3];
    let out_depth = (padded_depth - (i(kd) - 1) * dilations[0] - 1) / strides[0] + 1;
    if out_depth < 1 {
        return Err(format!("the window does not fit the padded depth {padded_depth}").into());
    }
    let depth_major = c.build(names::TRANSPOSE, &[padded], &[("perm", i64s(vec![0, 2, 1, 3, 4]))])?;
    let axis = c.const_i64(&[1]);
    let step = c.const_i64(&[strides[0]]);
    let flat = c.const_i64(&[i(n) * out_depth, i(channels), i(h), i(wd)]);
    let tap_shape = c.const_i64(&[i(out_channels), i(cin_group), i(kh), i(kw)]);
    let mut sum = None;
    for k in 0..i(kd) {
        let start = k * dilations[0];
        let (from, to) = (c.const_i64(&[start]), c.const_i64(&[start + (out_depth - 1) * strides[0] + 1]));
        let slab = c.build(names::SLICE, &[depth_major, from, to, axis, step], &[])?;
        let slab = c.build(names::RESHAPE, &[slab, flat], &[])?;
        let (wk0, wk1, waxis) = (c.const_i64(&[k]), c.const_i64(&[k + 1]), c.const_i64(&[2]));
        let tap = c.build(names::SLICE, &[w, wk0, wk1, waxis], &[])?;
        let tap = c.build(names::RESHAPE, &[tap, tap_shape], &[])?;
        let mut operands = vec![slab, tap];
        if k == 0 {
            operands.extend(c.input(2)?);
        }
        let attrs = [
            ("strides", i64s(vec![strides[1], strides[2]])),
            ("dilations", i64s(vec![dilations[1], dilations[2]])),
            ("pads", i64s(vec![pads[1], pads[2], pads[4], pads[5]])),
            ("group", Attribute::Int(group, ElementType::I64)),
        ];
        let y = c.build(names::CONV2D, &operands, &attrs)?;
        sum = Some(match sum {
            None => y,
            Some(acc) => c.build(names::ADD, &[acc, y], &[])?,
        });
    }
    let sum = sum.ok_or("the kernel has no depth")?;
    let planes = c.tensor(sum)?.static_shape().ok_or("the convolved planes need a static shape")?;
    let volume = c.const_i64(&[i(n), out_depth, i(out_channels), i(planes[2]), i(planes[3])]);
    let volume = c.build(names::RESHAPE, &[sum, volume], &[])?;
    c.build(names::TRANSPOSE, &[volume], &[("perm", i64s(vec![0, 2, 1, 3, 4]))])
}

/// Einsum of one or two operands as transposes, reshapes, sums and one batched product: the
/// labels only one operand has (and the output lacks) are summed first; then batch labels
/// (both operands and the output), the left operand's, the contracted ones and the right
/// operand's become the three dimensions of a `matmul`, reshaped and transposed into the
/// output's order. A label repeated within an operand first takes that operand's diagonal.
fn einsum(c: &mut Ctx) -> R<ValueId> {
    let equation: String =
        c.string("equation").ok_or("missing 'equation'")?.chars().filter(|ch| !ch.is_whitespace()).collect();
    let inputs: Vec<ValueId> = (0..c.node.input.len()).map(|i| c.req(i)).collect::<R<_>>()?;
    if !(1..=2).contains(&inputs.len()) {
        return unsupported(format!("Einsum of {} operands is not supported (one or two are)", inputs.len()));
    }
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (equation.clone(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != inputs.len() {
        return Err(format!("equation '{equation}' has {} terms for {} inputs", terms.len(), inputs.len()).into());
    }
    let mut shapes = Vec::new();
    for &v in &inputs {
        shapes.push(
            c.tensor(v)?
                .static_shape()
                .ok_or_else(|| ConvError::Unsupported("Einsum needs static input shapes".into()))?,
        );
    }
    // Labels: letters, and the dimensions an ellipsis stands for as 0, 1, ... counted from the
    // right so that they align across operands.
    let ellipsis_rank =
        shapes.iter().zip(&terms).map(|(s, t)| s.len().saturating_sub(t.replace("...", "").len())).max().unwrap_or(0);
    let labels_of = |term: &str, rank: usize| -> R<Vec<u32>> {
        let letters = term.replace("...", "").len();
        let mut out = Vec::new();
        let mut rest = term;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("...") {
                let n = rank.checked_sub(letters).ok_or("the term has more labels than its operand has dimensions")?;
                out.extend((0..n).map(|k| (ellipsis_rank - n + k) as u32));
                rest = after;
            } else {
                let ch = rest.chars().next().unwrap();
                if !ch.is_ascii_alphabetic() {
                    return Err(format!("'{ch}' is not a label").into());
                }
                out.push(1000 + ch as u32);
                rest = &rest[ch.len_utf8()..];
            }
        }
        if out.len() != rank {
            return Err(format!("term '{term}' has {} labels for rank {rank}", out.len()).into());
        }
        Ok(out)
    };
    let (mut operands, mut written): (Vec<Vec<u32>>, Vec<u32>) = (Vec::new(), Vec::new());
    let mut inputs = inputs;
    for (i, t) in terms.iter().enumerate() {
        let mut labels = labels_of(t, shapes[i].len())?;
        written.extend(&labels);
        // A label twice in one operand takes the diagonal: both axes moved last, flattened,
        // and every (n + 1)-th element kept; the label then names one trailing axis.
        while let Some((p, q)) =
            (0..labels.len()).find_map(|p| labels[p + 1..].iter().position(|l| *l == labels[p]).map(|d| (p, p + 1 + d)))
        {
            let n = shapes[i][p];
            if shapes[i][q] != n {
                return Err(format!("label repeated in term '{t}' spans dimensions {n} and {}", shapes[i][q]).into());
            }
            let rest: Vec<usize> = (0..labels.len()).filter(|&k| k != p && k != q).collect();
            let perm: Vec<i64> = rest.iter().chain([&p, &q]).map(|&k| k as i64).collect();
            let moved = c.build(names::TRANSPOSE, &[inputs[i]], &[("perm", i64s(perm))])?;
            let mut dims: Vec<i64> = rest.iter().map(|&k| shapes[i][k] as i64).collect();
            dims.push((n * n) as i64);
            let flat = c.const_i64(&dims);
            let flat = c.build(names::RESHAPE, &[moved, flat], &[])?;
            let (from, to, axis, step) =
                (c.const_i64(&[0]), c.const_i64(&[(n * n) as i64]), c.const_i64(&[-1]), c.const_i64(&[n as i64 + 1]));
            inputs[i] = c.build(names::SLICE, &[flat, from, to, axis, step], &[])?;
            let label = labels[p];
            labels = rest.iter().map(|&k| labels[k]).chain([label]).collect();
            shapes[i] = rest.iter().map(|&k| shapes[i][k]).chain([n]).collect();
        }
        operands.push(labels);
    }
    let output: Vec<u32> = match rhs {
        Some(r) => labels_of(&r, r.replace("...", "").len() + if r.contains("...") { ellipsis_rank } else { 0 })?,
        None => {
            // Implicit output: the ellipsis, then the labels written once, alphabetically.
            let mut once: Vec<u32> = written
                .iter()
                .copied()
                .filter(|l| *l >= 1000 && written.iter().filter(|m| *m == l).count() == 1)
                .collect();
            once.sort_unstable();
            (0..ellipsis_rank as u32).chain(once).collect()
        }
    };
    let mut extent = std::collections::HashMap::new();
    for (labels, shape) in operands.iter().zip(&shapes) {
        for (l, &d) in labels.iter().zip(shape) {
            if *extent.entry(*l).or_insert(d) != d {
                return unsupported("Einsum operands that broadcast a label are not supported");
            }
        }
    }
    // Sum away what only one operand has and the output lacks.
    let mut values = inputs.clone();
    for i in 0..operands.len() {
        let others: Vec<u32> =
            operands.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, o)| o.clone()).collect();
        let summed: Vec<i64> = (0..operands[i].len())
            .filter(|&k| !output.contains(&operands[i][k]) && !others.contains(&operands[i][k]))
            .map(|k| k as i64)
            .collect();
        if !summed.is_empty() {
            let axes = c.const_i64(&summed);
            values[i] = c.build(names::REDUCE_SUM, &[values[i], axes], &[("keepdims", Attribute::Bool(false))])?;
            let keep: Vec<u32> = operands[i]
                .iter()
                .enumerate()
                .filter(|(k, _)| !summed.contains(&(*k as i64)))
                .map(|(_, l)| *l)
                .collect();
            operands[i] = keep;
        }
    }
    let size = |labels: &[u32]| labels.iter().map(|l| extent[l] as i64).product::<i64>();
    let permute = |c: &mut Ctx, v: ValueId, from: &[u32], to: &[u32]| -> R<ValueId> {
        let perm: Vec<i64> = to.iter().map(|l| from.iter().position(|f| f == l).unwrap() as i64).collect();
        if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
            return Ok(v);
        }
        c.build(names::TRANSPOSE, &[v], &[("perm", i64s(perm))])
    };
    let reshape = |c: &mut Ctx, v: ValueId, dims: &[i64]| -> R<ValueId> {
        let shape = c.const_i64(dims);
        c.build(names::RESHAPE, &[v, shape], &[])
    };
    if operands.len() == 1 {
        return permute(c, values[0], &operands[0], &output);
    }
    let (a, b) = (&operands[0], &operands[1]);
    let batch: Vec<u32> = output.iter().copied().filter(|l| a.contains(l) && b.contains(l)).collect();
    let left: Vec<u32> = a.iter().copied().filter(|l| output.contains(l) && !b.contains(l)).collect();
    let right: Vec<u32> = b.iter().copied().filter(|l| output.contains(l) && !a.contains(l)).collect();
    let contracted: Vec<u32> = a.iter().copied().filter(|l| b.contains(l) && !output.contains(l)).collect();
    let a_order = [batch.clone(), left.clone(), contracted.clone()].concat();
    let b_order = [batch.clone(), contracted.clone(), right.clone()].concat();
    let av = permute(c, values[0], a, &a_order)?;
    let av = reshape(c, av, &[size(&batch), size(&left), size(&contracted)])?;
    let bv = permute(c, values[1], b, &b_order)?;
    let bv = reshape(c, bv, &[size(&batch), size(&contracted), size(&right)])?;
    let product = c.build(names::MATMUL, &[av, bv], &[])?;
    let produced = [batch, left, right].concat();
    let dims: Vec<i64> = produced.iter().map(|l| extent[l] as i64).collect();
    let product = reshape(c, product, &dims)?;
    permute(c, product, &produced, &output)
}

/// A node of opsets 1 to 6 in the form opset 7 gives it: `consumed_inputs` (an optimizer
/// hint) dropped; `is_test` and BatchNormalization's `spatial` checked and dropped (only
/// inference, over the channel axis, is supported); Pad's `paddings` renamed `pads`; and the
/// explicit `broadcast` of binary ops and Gemm dropped, the second operand first aligned at
/// `axis` (unit dimensions appended) where one is given, as a many-valued PRelu slope is at
/// the channel axis, so that numpy rules give the same result.
fn legacy_node(imp: &mut Importer<'_>, block: BlockId, node: &NodeProto, loc: Location) -> R<NodeProto> {
    let mut n = node.clone();
    let op = node.op_type().to_string();
    let int = |name: &str| node.attribute.iter().find(|a| a.name() == name).map(|a| a.i());
    if int("is_test") == Some(0) {
        return unsupported(format!("training-mode {} (is_test = 0) is not supported", op.to_lowercase()));
    }
    if op == "BatchNormalization" && int("spatial").is_some_and(|s| s != 1) {
        return unsupported("per-activation batch normalization (spatial = 0) is not supported");
    }
    let binary = ["Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less"];
    // A many-valued PRelu slope of these opsets holds one value per channel (axis 1).
    let per_channel_slope = op == "PRelu"
        && node.input.get(1).and_then(|s| imp.values.get(s)).is_some_and(|&v| {
            imp.module
                .value_type(v)
                .as_tensor()
                .and_then(|t| t.static_shape())
                .is_some_and(|s| s.len() == 1 && s[0] > 1)
        });
    let align_at = match (binary.contains(&op.as_str()), int("broadcast"), int("axis")) {
        (true, Some(1), Some(axis)) => Some(axis),
        _ if per_channel_slope => Some(1),
        _ => None,
    };
    if let Some(axis) = align_at {
        let (a, b) = (node.input.first().cloned().unwrap_or_default(), node.input.get(1).cloned().unwrap_or_default());
        let (Some(&av), Some(&bv)) = (imp.values.get(&a), imp.values.get(&b)) else {
            return Err(format!("inputs '{a}' and '{b}' must be defined before this node").into());
        };
        let rank = |v: ValueId| imp.module.value_type(v).as_tensor().and_then(|t| t.rank());
        let (Some(ra), Some(rb)) = (rank(av), rank(bv)) else { return unsupported("broadcast needs ranked inputs") };
        let axis = if axis < 0 { axis + ra as i64 } else { axis };
        let trailing = ra as i64 - axis - rb as i64;
        if axis < 0 || trailing < 0 {
            return Err(format!("broadcast axis {axis} does not fit ranks {ra} and {rb}").into());
        }
        if trailing > 0 {
            let axes: Vec<i64> = (rb as i64..rb as i64 + trailing).collect();
            let mut c = Ctx { imp, block, node, loc };
            let axes = c.const_i64(&axes);
            let aligned = c.build(names::UNSQUEEZE, &[bv, axes], &[])?;
            let name = format!("{b}::aligned_at_{axis}");
            c.imp.values.insert(name.clone(), aligned);
            n.input[1] = name;
        }
    }
    let dropped = ["consumed_inputs", "is_test", "spatial", "broadcast"];
    let legacy_axis = |a: &proto::AttributeProto| binary.contains(&op.as_str()) && a.name() == "axis";
    n.attribute.retain(|a| !(dropped.contains(&a.name()) || legacy_axis(a)));
    for a in &mut n.attribute {
        if op == "Pad" && a.name() == "paddings" {
            a.name = Some("pads".into());
        }
    }
    Ok(n)
}

fn constant_node(c: &mut Ctx) -> R<ValueId> {
    let attr = c.node.attribute.first().ok_or("has no value attribute")?;
    let dense = match (attr.name(), attr.r#type()) {
        ("value", AttributeType::Tensor) => {
            let t = attr.t.as_ref().ok_or("value has no tensor")?;
            let (ty, data) = tensor_to_dense(t)?;
            let name = c.node.output.first().cloned().unwrap_or_default();
            c.imp.store(name, ty, data)
        }
        ("value_float", _) => DenseElements::from_f64(TensorType::of(&[], ElementType::F32), &[attr.f() as f64]),
        ("value_floats", _) => {
            let v: Vec<f64> = attr.floats.iter().map(|&f| f as f64).collect();
            DenseElements::from_f64(TensorType::of(&[v.len() as u64], ElementType::F32), &v)
        }
        ("value_int", _) => DenseElements::from_i64(TensorType::of(&[], ElementType::I64), &[attr.i()]),
        ("value_ints", _) => {
            DenseElements::from_i64(TensorType::of(&[attr.ints.len() as u64], ElementType::I64), &attr.ints)
        }
        (name, _) => return unsupported(format!("constant attribute '{name}' is not supported")),
    };
    Ok(c.constant(dense))
}
