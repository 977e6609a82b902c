//! ONNX Runtime's QOperator form (QLinearConv, QLinearMatMul, and its `com.microsoft`
//! QLinearAdd, QLinearMul, QGemm, QLinearGlobalAveragePool, QLinearAveragePool,
//! QLinearConcat, QLinearSigmoid, QLinearLeakyRelu) rewritten node by node into the QDQ form:
//! DequantizeLinear on each quantized input, the float operator, QuantizeLinear on the output.
//! The integer operators of dynamic quantization (MatMulInteger, ConvInteger) become the float
//! product of the zero-point-shifted operands cast to int32 (exact while a sum stays below
//! 2^24), and DynamicQuantizeLinear its defining formula over reductions.
//! That is the equivalence ONNX Runtime's quantization tool is built on; the importer then
//! takes the QDQ path (weights dequantized at compile time, Q -> DQ pairs fused into kernels).

use super::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};

const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT32: i32 = 6;
const INT64: i32 = 7;

/// The QOperator op types this module rewrites, as `domain.op` keys.
pub(super) fn is_qoperator(domain: &str, op: &str) -> bool {
    matches!(
        (domain, op),
        ("" | "ai.onnx", "QLinearConv" | "QLinearMatMul" | "MatMulInteger" | "ConvInteger" | "DynamicQuantizeLinear")
            | (
                "com.microsoft",
                "QLinearAdd"
                    | "QLinearMul"
                    | "QGemm"
                    | "QLinearGlobalAveragePool"
                    | "QLinearAveragePool"
                    | "QLinearConcat"
                    | "QLinearSigmoid"
                    | "QLinearLeakyRelu"
                    | "QuantizeLinear"
                    | "DequantizeLinear"
            )
    )
}

/// `graph` with every QOperator node replaced by its QDQ equivalent; `None` where it has none.
/// The error names the node.
pub(super) fn expand(graph: &GraphProto) -> Result<Option<GraphProto>, String> {
    if !graph.node.iter().any(|n| is_qoperator(n.domain(), n.op_type())) {
        return Ok(None);
    }
    let mut nodes = Vec::with_capacity(graph.node.len());
    for (i, node) in graph.node.iter().enumerate() {
        if !is_qoperator(node.domain(), node.op_type()) {
            nodes.push(node.clone());
            continue;
        }
        let name = node.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| format!("#{}", i + 1));
        let mut rewrite = Rewrite { node, nodes: &mut nodes, fresh: 0 };
        let op = match node.domain() {
            "" => node.op_type().to_string(),
            domain => format!("{domain}.{}", node.op_type()),
        };
        rewrite.run().map_err(|e| format!("'{op}' node '{name}': {e}"))?;
    }
    Ok(Some(GraphProto { node: nodes, ..graph.clone() }))
}

struct Rewrite<'a> {
    node: &'a NodeProto,
    nodes: &'a mut Vec<NodeProto>,
    fresh: usize,
}

impl Rewrite<'_> {
    fn input(&self, i: usize) -> String {
        self.node.input.get(i).cloned().unwrap_or_default()
    }

    fn required(&self, count: usize) -> Result<(), String> {
        let given = self.node.input.iter().take(count).filter(|n| !n.is_empty()).count();
        if given < count {
            return Err(format!("needs at least {count} inputs, has {given}"));
        }
        Ok(())
    }

    fn output(&self) -> Result<String, String> {
        self.node.output.first().cloned().filter(|o| !o.is_empty()).ok_or_else(|| "has no output".to_string())
    }

    /// Appends `op(inputs) {attrs}` under the original node's name; returns its output.
    fn emit(&mut self, op: &str, inputs: Vec<String>, attrs: Vec<AttributeProto>, output: Option<String>) -> String {
        let output = output.unwrap_or_else(|| {
            self.fresh += 1;
            format!("{}/qdq{}", self.node.output.first().map_or("", String::as_str), self.fresh)
        });
        self.nodes.push(NodeProto {
            op_type: Some(op.into()),
            input: inputs,
            output: vec![output.clone()],
            name: self.node.name.clone(),
            attribute: attrs,
            ..Default::default()
        });
        output
    }

    fn dequantize(&mut self, x: usize, axis: Option<i64>) -> String {
        let attrs = axis.map(|a| vec![int_attr("axis", a)]).unwrap_or_default();
        let inputs = vec![self.input(x), self.input(x + 1), self.input(x + 2)];
        self.emit("DequantizeLinear", inputs, attrs, None)
    }

    fn quantize(&mut self, y: String, scale: usize) -> Result<String, String> {
        let output = Some(self.output()?);
        Ok(self.emit("QuantizeLinear", vec![y, self.input(scale), self.input(scale + 1)], Vec::new(), output))
    }

    /// An int32 bias whose scale is the product of the input's and the weights' scales.
    fn bias(&mut self, bias: usize, x_scale: usize, w_scale: usize) -> Option<String> {
        let b = self.input(bias);
        if b.is_empty() {
            return None;
        }
        let scale = self.emit("Mul", vec![self.input(x_scale), self.input(w_scale)], Vec::new(), None);
        Some(self.emit("DequantizeLinear", vec![b, scale], vec![int_attr("axis", 0)], None))
    }

    /// Input `x` as f32 minus its zero point (input `zero`, where given); `conv_weights` marks a
    /// 2-D convolution's weights, whose per-channel zero point is reshaped to `[M, 1, 1, 1]`.
    fn shifted(&mut self, x: usize, zero: usize, conv_weights: bool) -> Result<String, String> {
        let float = self.emit("Cast", vec![self.input(x)], vec![int_attr("to", FLOAT)], None);
        let z = self.input(zero);
        if z.is_empty() {
            return Ok(float);
        }
        let mut z = self.emit("Cast", vec![z], vec![int_attr("to", FLOAT)], None);
        if conv_weights {
            let column = self.emit("Constant", Vec::new(), vec![ints_tensor_attr(&[-1, 1, 1, 1])], None);
            // A scalar zero point reshapes to [1, 1, 1, 1], which broadcasts the same way.
            z = self.emit("Reshape", vec![z, column], Vec::new(), None);
        }
        Ok(self.emit("Sub", vec![float, z], Vec::new(), None))
    }

    /// A scalar f32 constant.
    fn scalar(&mut self, value: f32) -> String {
        let tensor = TensorProto { data_type: Some(FLOAT), float_data: vec![value], ..Default::default() };
        let attr =
            AttributeProto { name: Some("value".into()), r#type: Some(4), t: Some(tensor), ..Default::default() };
        self.emit("Constant", Vec::new(), vec![attr], None)
    }

    fn attrs(&self, keep: &[&str]) -> Vec<AttributeProto> {
        self.node.attribute.iter().filter(|a| keep.contains(&a.name())).cloned().collect()
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.node.attribute.iter().find(|a| a.name() == name).map(|a| a.i())
    }

    fn run(&mut self) -> Result<(), String> {
        let op = self.node.op_type().to_string();
        match op.as_str() {
            "QuantizeLinear" | "DequantizeLinear" => {
                let attrs = self.attrs(&["axis"]);
                let output = Some(self.output()?);
                self.emit(&op, self.node.input.clone(), attrs, output);
            }
            "QLinearConv" => {
                self.required(8)?;
                let x = self.dequantize(0, None);
                let w = self.dequantize(3, Some(0));
                let mut inputs = vec![x, w];
                inputs.extend(self.bias(8, 1, 4));
                let attrs = self.node.attribute.clone();
                let y = self.emit("Conv", inputs, attrs, None);
                self.quantize(y, 6)?;
            }
            "QLinearMatMul" => {
                self.required(8)?;
                let a = self.dequantize(0, None);
                let b = self.dequantize(3, Some(-1));
                let y = self.emit("MatMul", vec![a, b], Vec::new(), None);
                self.quantize(y, 6)?;
            }
            "QLinearAdd" | "QLinearMul" => {
                self.required(7)?;
                let a = self.dequantize(0, None);
                let b = self.dequantize(3, None);
                let y = self.emit(&op["QLinear".len()..], vec![a, b], Vec::new(), None);
                self.quantize(y, 6)?;
            }
            "QGemm" => {
                self.required(6)?;
                let trans_b = self.int("transB").unwrap_or(0) != 0;
                let a = self.dequantize(0, None);
                // Per-channel weight scales run along the output columns.
                let b = self.dequantize(3, Some(if trans_b { 0 } else { 1 }));
                let mut inputs = vec![a, b];
                inputs.extend(self.bias(6, 1, 4));
                let y = self.emit("Gemm", inputs, self.attrs(&["alpha", "transA", "transB"]), None);
                if self.input(7).is_empty() {
                    // No output scale: QGemm gives floats.
                    let output = Some(self.output()?);
                    self.emit("Identity", vec![y], Vec::new(), output);
                } else {
                    self.quantize(y, 7)?;
                }
            }
            "QLinearGlobalAveragePool" | "QLinearAveragePool" | "QLinearSigmoid" | "QLinearLeakyRelu" => {
                self.required(4)?;
                if self.int("channels_last").unwrap_or(0) != 0 {
                    return Err("channels_last = 1 is not supported".into());
                }
                let x = self.dequantize(0, None);
                let float = &op["QLinear".len()..];
                let keep: &[&str] = match float {
                    "AveragePool" => &["auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"],
                    "LeakyRelu" => &["alpha"],
                    _ => &[],
                };
                let y = self.emit(float, vec![x], self.attrs(keep), None);
                self.quantize(y, 3)?;
            }
            "QLinearConcat" => {
                // Y's scale and zero point, then (tensor, scale, zero point) per input.
                if self.node.input.len() < 5 || !(self.node.input.len() - 2).is_multiple_of(3) {
                    return Err(format!("has {} inputs, not 2 + 3 per concatenated tensor", self.node.input.len()));
                }
                let parts: Vec<String> =
                    (2..self.node.input.len()).step_by(3).map(|i| self.dequantize(i, None)).collect();
                let y = self.emit("Concat", parts, self.attrs(&["axis"]), None);
                self.quantize(y, 0)?;
            }
            "MatMulInteger" | "ConvInteger" => {
                self.required(2)?;
                let conv = op == "ConvInteger";
                let a = self.shifted(0, 2, false)?;
                // A per-output-channel weight zero point lines up with the weights' first axis.
                let b = self.shifted(1, 3, conv)?;
                let (float, attrs) = if conv { ("Conv", self.node.attribute.clone()) } else { ("MatMul", Vec::new()) };
                let y = self.emit(float, vec![a, b], attrs, None);
                let output = Some(self.output()?);
                self.emit("Cast", vec![y], vec![int_attr("to", INT32)], output);
            }
            "DynamicQuantizeLinear" => {
                // scale = (max(x, 0) - min(x, 0)) / 255, zero point = round(clip(-min / scale)),
                // y = QuantizeLinear(x, scale, zero point), uint8 throughout.
                self.required(1)?;
                let outputs = self.node.output.clone();
                if outputs.len() != 3 || outputs.iter().any(String::is_empty) {
                    return Err("needs its three outputs named".into());
                }
                let x = self.input(0);
                let keep = vec![int_attr("keepdims", 0)];
                let (lo, hi) = (
                    self.emit("ReduceMin", vec![x.clone()], keep.clone(), None),
                    self.emit("ReduceMax", vec![x.clone()], keep, None),
                );
                let (zero, levels) = (self.scalar(0.0), self.scalar(255.0));
                let lo = self.emit("Min", vec![lo, zero.clone()], Vec::new(), None);
                let hi = self.emit("Max", vec![hi, zero.clone()], Vec::new(), None);
                let range = self.emit("Sub", vec![hi, lo.clone()], Vec::new(), None);
                let scale = self.emit("Div", vec![range, levels.clone()], Vec::new(), Some(outputs[1].clone()));
                let shift = self.emit("Div", vec![lo, scale.clone()], Vec::new(), None);
                let zero_point = self.emit("Sub", vec![zero.clone(), shift], Vec::new(), None);
                let zero_point = self.emit("Clip", vec![zero_point, zero, levels], Vec::new(), None);
                let zero_point = self.emit("Round", vec![zero_point], Vec::new(), None);
                let zero_point =
                    self.emit("Cast", vec![zero_point], vec![int_attr("to", UINT8)], Some(outputs[2].clone()));
                self.emit("QuantizeLinear", vec![x, scale, zero_point], Vec::new(), Some(outputs[0].clone()));
            }
            other => return Err(format!("no QDQ form for {other}")),
        }
        Ok(())
    }
}

fn int_attr(name: &str, value: impl Into<i64>) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(2), i: Some(value.into()), ..Default::default() }
}

fn ints_tensor_attr(values: &[i64]) -> AttributeProto {
    let tensor = TensorProto {
        data_type: Some(INT64),
        dims: vec![values.len() as i64],
        int64_data: values.to_vec(),
        ..Default::default()
    };
    AttributeProto { name: Some("value".into()), r#type: Some(4), t: Some(tensor), ..Default::default() }
}
