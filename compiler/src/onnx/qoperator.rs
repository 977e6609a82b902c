//! ONNX Runtime's QOperator form (QLinearConv, QLinearMatMul, and its `com.microsoft`
//! QLinearAdd, QLinearMul, QGemm, QLinearGlobalAveragePool, QLinearAveragePool,
//! QLinearConcat, QLinearSigmoid, QLinearLeakyRelu) rewritten node by node into the QDQ form:
//! DequantizeLinear on each quantized input, the float operator, QuantizeLinear on the output.
//! That is the equivalence ONNX Runtime's quantization tool is built on; the importer then
//! takes the QDQ path (weights dequantized at compile time, Q -> DQ pairs fused into kernels).

use super::proto::{AttributeProto, GraphProto, NodeProto};

/// The QOperator op types this module rewrites, as `domain.op` keys.
pub(super) fn is_qoperator(domain: &str, op: &str) -> bool {
    matches!(
        (domain, op),
        ("" | "ai.onnx", "QLinearConv" | "QLinearMatMul")
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
            other => return Err(format!("no QDQ form for {other}")),
        }
        Ok(())
    }
}

fn int_attr(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(2), i: Some(value), ..Default::default() }
}
