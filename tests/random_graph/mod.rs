//! Random small ONNX graphs (random operators, attributes, weights and run-time shape
//! inputs) and the three-way check that runs them: the reference interpreter, unfused and
//! fused agree, or every failure is a clean error. Shared by `tests/differential.rs` (seeded
//! graphs in every test run) and the `run_graph` cargo-fuzz target (graphs steered by the
//! fuzzer's bytes).

use prost::Message;
use smelt_compiler::literal::{Data, Literal};
use smelt_compiler::onnx::proto::{
    self, tensor_shape_proto::dimension, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use smelt_compiler::onnx::{import_bytes, ImportOptions};
use smelt_compiler::types::ElementType;
use smelt_runtime::exec::Executable;

const FLOAT: i32 = 1;
const INT64: i32 = 7;

/// Where the generator's choices come from: bytes first (a fuzzer's input, so that its
/// mutations steer the graph's structure), then a linear congruential sequence.
pub struct Rng {
    state: u64,
    bytes: Vec<u8>,
    at: usize,
}

impl Rng {
    /// Choices from `seed` alone.
    pub fn seeded(seed: u64) -> Rng {
        Rng { state: seed, bytes: Vec::new(), at: 0 }
    }

    /// Choices read from `data`, then from a sequence seeded by its length.
    pub fn from_bytes(data: &[u8]) -> Rng {
        Rng { state: data.len() as u64, bytes: data.to_vec(), at: 0 }
    }

    /// A choice in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        let wide = n > 256;
        let take = if wide { 2 } else { 1 };
        if self.at + take <= self.bytes.len() {
            let b = &self.bytes[self.at..self.at + take];
            self.at += take;
            let v = if wide { u16::from_le_bytes([b[0], b[1]]) as usize } else { b[0] as usize };
            return v % n;
        }
        self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.state >> 33) % n as u64) as usize
    }

    fn float(&mut self) -> f32 {
        self.below(2001) as f32 / 1000.0 - 1.0
    }
}

fn info(name: &str, element: i32, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| proto::tensor_shape_proto::Dimension {
            value: Some(dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor { elem_type: Some(element), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

fn ints_attr(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(7), ints: values.to_vec(), ..Default::default() }
}

fn int_attr(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(2), i: Some(value), ..Default::default() }
}

fn float_attr(name: &str, value: f32) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(1), f: Some(value), ..Default::default() }
}

/// A random graph and inputs for it. Values are f32 tensors of rank 4 (`[1, c, h, w]`).
pub fn random_graph(rng: &mut Rng) -> (ModelProto, Vec<Literal>) {
    let mut nodes: Vec<NodeProto> = Vec::new();
    let mut inits: Vec<TensorProto> = Vec::new();
    let mut values: Vec<(String, [i64; 4])> = Vec::new();
    let shape = [1, 1 + rng.below(4) as i64, 1 + rng.below(6) as i64, 1 + rng.below(6) as i64];
    let mut inputs = vec![info("x", FLOAT, &shape)];
    let n: usize = shape.iter().product::<i64>() as usize;
    let mut literals = vec![Literal {
        shape: shape.iter().map(|&d| d as u64).collect(),
        element: ElementType::F32,
        data: Data::F((0..n).map(|_| rng.float() as f64 * 3.0).collect()),
    }];
    values.push(("x".into(), shape));
    let weight = |rng: &mut Rng, inits: &mut Vec<TensorProto>, dims: &[i64]| {
        let name = format!("w{}", inits.len());
        let n = dims.iter().product::<i64>() as usize;
        inits.push(TensorProto {
            name: Some(name.clone()),
            dims: dims.to_vec(),
            data_type: Some(FLOAT),
            float_data: (0..n).map(|_| rng.float()).collect(),
            ..Default::default()
        });
        name
    };
    for step in 0..3 + rng.below(8) {
        let (a, s) = values[rng.below(values.len())].clone();
        let out = format!("v{step}");
        let node = |op: &str, ins: Vec<String>, attrs: Vec<AttributeProto>| NodeProto {
            op_type: Some(op.into()),
            input: ins,
            output: vec![out.clone()],
            name: Some(format!("{op}_{step}")),
            attribute: attrs,
            ..Default::default()
        };
        let (node, shape) = match rng.below(12) {
            0 => {
                let op = ["Relu", "Sigmoid", "Tanh", "Neg", "Abs", "Softplus", "Erf", "Exp"][rng.below(8)];
                (node(op, vec![a], vec![]), s)
            }
            1 => {
                let (op, attr) = [("LeakyRelu", "alpha"), ("Elu", "alpha"), ("HardSigmoid", "beta")][rng.below(3)];
                (node(op, vec![a], vec![float_attr(attr, rng.float())]), s)
            }
            2 | 3 => {
                let op = ["Add", "Sub", "Mul", "Max", "Min", "Div"][rng.below(6)];
                let same: Vec<&(String, [i64; 4])> = values.iter().filter(|v| v.1 == s).collect();
                let b = match rng.below(3) {
                    // A divisor computed in the graph may cancel to 0 in f32 and not in f64.
                    _ if op == "Div" => {
                        let w = weight(rng, &mut inits, &[1, s[1], 1, 1]);
                        let divisor = inits.last_mut().unwrap();
                        divisor.float_data.iter_mut().for_each(|d| *d = d.signum() * (0.5 + d.abs()));
                        w
                    }
                    0 => same[rng.below(same.len())].0.clone(),
                    1 => weight(rng, &mut inits, &[1, s[1], 1, 1]),
                    _ => weight(rng, &mut inits, &[s[3]]),
                };
                (node(op, vec![a, b], vec![]), s)
            }
            4 => {
                let (k, stride) = ([1, 3][rng.below(2)], 1 + rng.below(2) as i64);
                let depthwise = rng.below(2) == 0;
                let cout = if depthwise { s[1] } else { 1 + rng.below(5) as i64 };
                let w = weight(rng, &mut inits, &[cout, if depthwise { 1 } else { s[1] }, k, k]);
                let b = weight(rng, &mut inits, &[cout]);
                let p = k / 2;
                let attrs = vec![
                    ints_attr("pads", &[p, p, p, p]),
                    ints_attr("strides", &[stride, stride]),
                    int_attr("group", if depthwise { s[1] } else { 1 }),
                ];
                let o = |d: i64| (d + 2 * p - k) / stride + 1;
                (node("Conv", vec![a, w, b], attrs), [1, cout, o(s[2]), o(s[3])])
            }
            5 if s[2] >= 2 && s[3] >= 2 => {
                let op = ["MaxPool", "AveragePool"][rng.below(2)];
                let attrs = vec![ints_attr("kernel_shape", &[2, 2]), ints_attr("strides", &[2, 2])];
                (node(op, vec![a], attrs), [1, s[1], s[2] / 2, s[3] / 2])
            }
            6 => (node("GlobalAveragePool", vec![a], vec![]), [1, s[1], 1, 1]),
            7 => (node("Softmax", vec![a], vec![int_attr("axis", -1)]), s),
            8 => (node("Transpose", vec![a], vec![ints_attr("perm", &[0, 1, 3, 2])]), [1, s[1], s[3], s[2]]),
            9 => {
                let k = 1 + rng.below(5) as i64;
                let w = weight(rng, &mut inits, &[s[3], k]);
                (node("MatMul", vec![a, w], vec![]), [1, s[1], s[2], k])
            }
            10 => {
                // Repeats arrive at run time, sometimes negative.
                let name = format!("r{step}");
                let choices = if rng.below(8) == 0 { 4 } else { 3 };
                let reps: Vec<i64> = (0..4).map(|_| [1, 1, 2, -1][rng.below(choices)]).collect();
                inputs.push(info(&name, INT64, &[4]));
                literals.push(Literal::from_i64(vec![4], ElementType::I64, reps.clone()));
                let t = |i: usize| s[i] * reps[i].max(0);
                (node("Tile", vec![a, name], vec![]), [t(0), t(1), t(2), t(3)])
            }
            _ => {
                let axes = weight(rng, &mut inits, &[1]);
                inits.last_mut().unwrap().data_type = Some(INT64);
                inits.last_mut().unwrap().float_data.clear();
                inits.last_mut().unwrap().int64_data = vec![-1];
                (node("ReduceSum", vec![a, axes], vec![int_attr("keepdims", 1)]), [s[0], s[1], s[2], 1])
            }
        };
        nodes.push(node);
        values.push((out, shape));
    }
    let (last, shape) = values.last().unwrap().clone();
    let graph = GraphProto {
        name: Some("random".into()),
        node: nodes,
        initializer: inits,
        input: inputs,
        output: vec![info(&last, FLOAT, &shape)],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { version: Some(17), ..Default::default() }],
        graph: Some(graph),
        ..Default::default()
    };
    (model, literals)
}

/// Runs one graph three ways; an error is fine where it is an error (no panic, no crash),
/// and outputs that exist agree. Says whether any outputs were compared, and why not.
pub fn check(model: &ModelProto, inputs: &[Literal]) -> Result<Option<String>, String> {
    let bytes = bytes::Bytes::from(model.encode_to_vec());
    let mut module = match import_bytes(bytes, "random.onnx", None, &ImportOptions::default()) {
        Ok(m) => m,
        Err(e) => return Ok(Some(format!("import: {}", e.diagnostic.message))),
    };
    if let Err(d) = smelt_passes::run_pipeline(&mut module, smelt_passes::CLEANUP_PIPELINE) {
        return Ok(Some(format!("cleanup: {}", d[0].message)));
    }
    let module = match smelt_passes::specialize::specialize_to_inputs(&module, inputs) {
        Ok((m, _)) => m,
        Err(e) => return Ok(Some(format!("specialize: {e}"))),
    };
    let reference = smelt_runtime::reference::run(&module, inputs);
    let unfused = Executable::compile(module.clone()).and_then(|mut e| e.run(inputs)).map_err(|e| e.to_string());
    let mut fused_module = module.clone();
    let fused = smelt_passes::run_pipeline(&mut fused_module, "builtin.module(fuse)")
        .map_err(|d| format!("{d:?}"))
        .and_then(|()| Executable::compile(fused_module).and_then(|mut e| e.run(inputs)).map_err(|e| e.to_string()));
    let Ok(expected) = reference else {
        return match (&unfused, &fused) {
            (Err(_), Err(_)) => Ok(Some(format!("every mode: {}", reference.unwrap_err()))),
            _ => Err(format!("the reference failed ({}) where the executor ran", reference.unwrap_err())),
        };
    };
    for (how, out) in [("unfused", unfused), ("fused", fused)] {
        let out = out.map_err(|e| format!("{how} failed where the reference ran: {e}"))?;
        let (a, e) = (out[0].to_f64(), expected[0].to_f64());
        if out[0].shape != expected[0].shape {
            return Err(format!("{how}: shape {:?}, the reference {:?}", out[0].shape, expected[0].shape));
        }
        for (i, (x, y)) in a.iter().zip(e.iter()).enumerate() {
            let close = x == y || (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 + 1e-3 * y.abs();
            if !close {
                return Err(format!("{how}: element {i} is {x}, the reference gives {y}"));
            }
        }
    }
    Ok(None)
}
