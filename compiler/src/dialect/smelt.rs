//! The `smelt` dialect: tensor operations with ONNX semantics, plus `smelt.kernel`.
//!
//! Conventions: ops follow the newest ONNX opset, so values ONNX passes as inputs (reshape
//! targets, reduction axes, clip bounds, slice bounds) are operands here too, and the importer
//! turns older opsets' attributes into constant operands. Attribute names are ONNX's in
//! snake_case; integer lists are `array<i64: ...>`; pads are `[begin..., end...]`.

use super::fold::*;
use super::infer::*;
use super::*;

const PURE: Traits =
    Traits { pure: true, commutative: false, elementwise: false, terminator: false, isolated_from_above: false };
const ELEMENTWISE: Traits = Traits { elementwise: true, ..PURE };
const COMMUTATIVE: Traits = Traits { elementwise: true, commutative: true, ..PURE };

const X: &[SlotDef] = &[one("x")];
const XY: &[SlotDef] = &[one("x"), one("y")];
const OUT: &[SlotDef] = &[one("output")];

macro_rules! unary {
    ($name:literal, $summary:literal) => {
        OpDef::new($name, $summary).operands(X).results(OUT).traits(ELEMENTWISE).infer(same_as_first)
    };
    ($name:literal, $summary:literal, $attrs:expr) => {
        unary!($name, $summary).attrs($attrs)
    };
}

macro_rules! binary {
    ($name:literal, $summary:literal, $traits:expr, $infer:expr) => {
        OpDef::new($name, $summary).operands(XY).results(OUT).traits($traits).infer($infer)
    };
}

const WINDOW_ATTRS: &[AttrDef] = &[
    attr("kernel_shape", AttrKind::I64Array),
    attr_opt("strides", AttrKind::I64Array),
    attr_opt("pads", AttrKind::I64Array),
    attr_opt("dilations", AttrKind::I64Array),
    attr_opt("ceil_mode", AttrKind::Bool),
    attr_opt("count_include_pad", AttrKind::Bool),
];

const REDUCE_ATTRS: &[AttrDef] =
    &[attr_opt("keepdims", AttrKind::Bool), attr_opt("noop_with_empty_axes", AttrKind::Bool)];
const REDUCE_OPERANDS: &[SlotDef] = &[one("data"), opt("axes")];

pub static OPS: &[OpDef] = &[
    // ---- elementwise binary (numpy broadcasting) ----
    binary!("smelt.add", "x + y", COMMUTATIVE, broadcast_all),
    binary!("smelt.sub", "x - y", ELEMENTWISE, broadcast_all),
    binary!("smelt.mul", "x * y", COMMUTATIVE, broadcast_all),
    binary!("smelt.div", "x / y (integers truncate toward zero)", ELEMENTWISE, broadcast_all),
    binary!("smelt.pow", "x ^ y", ELEMENTWISE, pow_types),
    binary!("smelt.max", "elementwise maximum", COMMUTATIVE, broadcast_all),
    binary!("smelt.min", "elementwise minimum", COMMUTATIVE, broadcast_all),
    binary!("smelt.equal", "x == y as i1", COMMUTATIVE, compare),
    binary!("smelt.less", "x < y as i1", ELEMENTWISE, compare),
    binary!("smelt.greater", "x > y as i1", ELEMENTWISE, compare),
    OpDef::new("smelt.prelu", "x < 0 ? slope * x : x, slope broadcast to x")
        .operands(&[one("x"), one("slope")])
        .results(OUT)
        .traits(ELEMENTWISE)
        .infer(broadcast_all),
    OpDef::new("smelt.where", "condition ? x : y")
        .operands(&[one("condition"), one("x"), one("y")])
        .results(OUT)
        .traits(ELEMENTWISE)
        .infer(select),
    // ---- elementwise unary ----
    unary!("smelt.neg", "-x"),
    unary!("smelt.abs", "|x|"),
    unary!("smelt.exp", "e^x"),
    unary!("smelt.log", "natural logarithm"),
    unary!("smelt.sqrt", "square root"),
    unary!("smelt.reciprocal", "1 / x"),
    unary!("smelt.relu", "max(x, 0)"),
    unary!("smelt.sigmoid", "1 / (1 + e^-x)"),
    unary!("smelt.tanh", "hyperbolic tangent"),
    unary!("smelt.erf", "Gauss error function"),
    unary!("smelt.not", "logical not of i1"),
    unary!("smelt.silu", "x * sigmoid(x)"),
    unary!("smelt.softplus", "log(1 + e^x)"),
    unary!("smelt.softsign", "x / (1 + |x|)"),
    unary!(
        "smelt.gelu",
        "x * Phi(x); approximate = \"none\" (erf) or \"tanh\"",
        &[attr_opt("approximate", AttrKind::String)]
    ),
    unary!("smelt.hardswish", "x * max(0, min(1, x / 6 + 1 / 2))"),
    unary!(
        "smelt.hardsigmoid",
        "max(0, min(1, alpha * x + beta)); alpha 0.2, beta 0.5",
        &[attr_opt("alpha", AttrKind::Float), attr_opt("beta", AttrKind::Float)]
    ),
    unary!("smelt.leaky_relu", "x < 0 ? alpha * x : x; alpha 0.01", &[attr_opt("alpha", AttrKind::Float)]),
    unary!("smelt.elu", "x < 0 ? alpha * (e^x - 1) : x; alpha 1", &[attr_opt("alpha", AttrKind::Float)]),
    unary!(
        "smelt.selu",
        "gamma * (x < 0 ? alpha * (e^x - 1) : x)",
        &[attr_opt("alpha", AttrKind::Float), attr_opt("gamma", AttrKind::Float)]
    ),
    OpDef::new("smelt.clip", "min(max(x, min), max); absent bounds do not clip")
        .operands(&[one("x"), opt("min"), opt("max")])
        .results(OUT)
        .traits(ELEMENTWISE)
        .infer(same_as_first)
        .verify(verify_clip),
    OpDef::new("smelt.cast", "converts elements to the type `to`")
        .operands(X)
        .results(OUT)
        .attrs(&[attr("to", AttrKind::Type)])
        .traits(ELEMENTWISE)
        .infer(cast)
        .fold(fold_to_input),
    OpDef::new("smelt.identity", "returns its input").operands(X).results(OUT).infer(same_as_first).fold(fold_to_input),
    OpDef::new("smelt.dropout", "inference-mode dropout: returns its input (and an all-true mask)")
        .operands(&[one("data"), opt("ratio"), opt("training_mode")])
        .results(&[one("output"), opt("mask")])
        .attrs(&[attr_opt("seed", AttrKind::Int)])
        .infer(dropout)
        .fold(fold_to_input),
    // ---- neural network ----
    OpDef::new("smelt.conv2d", "2-D convolution, NCHW input and OIHW weight, optional bias")
        .operands(&[one("x"), one("weight"), opt("bias")])
        .results(OUT)
        .attrs(&[
            attr_opt("strides", AttrKind::I64Array),
            attr_opt("pads", AttrKind::I64Array),
            attr_opt("dilations", AttrKind::I64Array),
            attr_opt("group", AttrKind::Int),
        ])
        .infer(conv2d),
    OpDef::new("smelt.batch_norm", "inference batch normalization over channel axis 1")
        .operands(&[one("x"), one("scale"), one("bias"), one("mean"), one("var")])
        .results(OUT)
        .attrs(&[attr_opt("epsilon", AttrKind::Float)])
        .infer(batch_norm),
    OpDef::new("smelt.matmul", "numpy matrix product with broadcast batch dimensions")
        .operands(&[one("a"), one("b")])
        .results(OUT)
        .infer(matmul),
    OpDef::new("smelt.gemm", "alpha * op(a) @ op(b) + beta * c; op transposes when trans_* is set")
        .operands(&[one("a"), one("b"), opt("c")])
        .results(OUT)
        .attrs(&[
            attr_opt("alpha", AttrKind::Float),
            attr_opt("beta", AttrKind::Float),
            attr_opt("trans_a", AttrKind::Bool),
            attr_opt("trans_b", AttrKind::Bool),
        ])
        .infer(gemm),
    OpDef::new(
        "smelt.attention",
        "softmax(scale * (q @ k_t) + mask) @ v, softmax over the last axis (scaled-dot-product attention)",
    )
    .operands(&[one("q"), one("k_t"), one("v"), opt("mask")])
    .results(OUT)
    .attrs(&[attr_opt("scale", AttrKind::Float)])
    .infer(super::infer::attention),
    OpDef::new("smelt.max_pool", "2-D max pooling").operands(X).results(OUT).attrs(WINDOW_ATTRS).infer(pool),
    OpDef::new("smelt.avg_pool", "2-D average pooling").operands(X).results(OUT).attrs(WINDOW_ATTRS).infer(pool),
    OpDef::new("smelt.global_avg_pool", "mean over all spatial dimensions").operands(X).results(OUT).infer(global_pool),
    OpDef::new("smelt.global_max_pool", "maximum over all spatial dimensions")
        .operands(X)
        .results(OUT)
        .infer(global_pool),
    OpDef::new("smelt.softmax", "e^x / sum(e^x) along `axis` (default -1)")
        .operands(X)
        .results(OUT)
        .attrs(&[attr_opt("axis", AttrKind::Int)])
        .infer(axis_in_range),
    OpDef::new("smelt.log_softmax", "log(softmax(x)) along `axis` (default -1)")
        .operands(X)
        .results(OUT)
        .attrs(&[attr_opt("axis", AttrKind::Int)])
        .infer(axis_in_range),
    OpDef::new("smelt.layer_norm", "normalizes over the axes from `axis` (default -1) to the end")
        .operands(&[one("x"), one("scale"), opt("bias")])
        .results(OUT)
        .attrs(&[attr_opt("axis", AttrKind::Int), attr_opt("epsilon", AttrKind::Float)])
        .infer(axis_in_range),
    // ---- reductions ----
    OpDef::new("smelt.reduce_mean", "mean over `axes` (all when absent)")
        .operands(REDUCE_OPERANDS)
        .results(OUT)
        .attrs(REDUCE_ATTRS)
        .infer(reduce),
    OpDef::new("smelt.reduce_sum", "sum over `axes` (all when absent)")
        .operands(REDUCE_OPERANDS)
        .results(OUT)
        .attrs(REDUCE_ATTRS)
        .infer(reduce),
    OpDef::new("smelt.reduce_max", "maximum over `axes` (all when absent)")
        .operands(REDUCE_OPERANDS)
        .results(OUT)
        .attrs(REDUCE_ATTRS)
        .infer(reduce),
    OpDef::new("smelt.reduce_min", "minimum over `axes` (all when absent)")
        .operands(REDUCE_OPERANDS)
        .results(OUT)
        .attrs(REDUCE_ATTRS)
        .infer(reduce),
    OpDef::new("smelt.reduce_prod", "product over `axes` (all when absent)")
        .operands(REDUCE_OPERANDS)
        .results(OUT)
        .attrs(REDUCE_ATTRS)
        .infer(reduce),
    // ---- data movement and shapes ----
    OpDef::new("smelt.transpose", "permutes dimensions by `perm` (default: reverse)")
        .operands(X)
        .results(OUT)
        .attrs(&[attr_opt("perm", AttrKind::I64Array)])
        .infer(transpose)
        .fold(fold_to_input),
    OpDef::new("smelt.reshape", "reinterprets the shape; target 0 copies, -1 infers")
        .operands(&[one("data"), one("shape")])
        .results(OUT)
        .attrs(&[attr_opt("allowzero", AttrKind::Bool)])
        .infer(reshape)
        .fold(fold_to_input),
    OpDef::new("smelt.flatten", "collapses to 2-D around `axis` (default 1)")
        .operands(X)
        .results(OUT)
        .attrs(&[attr_opt("axis", AttrKind::Int)])
        .infer(flatten)
        .fold(fold_to_input),
    OpDef::new("smelt.squeeze", "removes extent-1 dimensions (`axes`, or all)")
        .operands(&[one("data"), opt("axes")])
        .results(OUT)
        .infer(squeeze)
        .fold(fold_to_input),
    OpDef::new("smelt.unsqueeze", "inserts extent-1 dimensions at `axes`")
        .operands(&[one("data"), one("axes")])
        .results(OUT)
        .infer(unsqueeze)
        .fold(fold_to_input),
    OpDef::new("smelt.concat", "joins along `axis`")
        .operands(&[many("inputs")])
        .results(OUT)
        .attrs(&[attr("axis", AttrKind::Int)])
        .infer(concat),
    OpDef::new("smelt.split", "cuts along `axis` into the results (`split` sizes, or equal parts)")
        .operands(&[one("input"), opt("split")])
        .results(&[many("outputs")])
        .attrs(&[attr_opt("axis", AttrKind::Int)])
        .infer(split),
    OpDef::new("smelt.slice", "strided slice with ONNX clamping")
        .operands(&[one("data"), one("starts"), one("ends"), opt("axes"), opt("steps")])
        .results(OUT)
        .infer(slice),
    OpDef::new("smelt.gather", "picks entries of `axis` (default 0) by index")
        .operands(&[one("data"), one("indices")])
        .results(OUT)
        .attrs(&[attr_opt("axis", AttrKind::Int)])
        .infer(gather),
    OpDef::new(
        "smelt.gather_elements",
        "picks elements along `axis` (default 0) by an index tensor of the output's shape",
    )
    .operands(&[one("data"), one("indices")])
    .results(OUT)
    .attrs(&[attr_opt("axis", AttrKind::Int)])
    .infer(gather_elements),
    OpDef::new("smelt.expand", "broadcasts to `shape`")
        .operands(&[one("input"), one("shape")])
        .results(OUT)
        .infer(expand)
        .fold(fold_to_input),
    OpDef::new(
        "smelt.resize",
        "resamples `axes` (default all) to `sizes` or by `scales`; ONNX Resize without antialiasing",
    )
    .operands(&[one("x"), opt("roi"), opt("scales"), opt("sizes")])
    .results(OUT)
    .attrs(&[
        attr_opt("mode", AttrKind::String),
        attr_opt("coordinate_transformation_mode", AttrKind::String),
        attr_opt("nearest_mode", AttrKind::String),
        attr_opt("cubic_coeff_a", AttrKind::Float),
        attr_opt("exclude_outside", AttrKind::Bool),
        attr_opt("extrapolation_value", AttrKind::Float),
        attr_opt("keep_aspect_ratio_policy", AttrKind::String),
        attr_opt("axes", AttrKind::I64Array),
    ])
    .infer(resize),
    OpDef::new("smelt.tile", "repeats along each dimension")
        .operands(&[one("input"), one("repeats")])
        .results(OUT)
        .infer(tile),
    OpDef::new("smelt.pad", "pads with `mode` constant (default), reflect, edge or wrap")
        .operands(&[one("data"), one("pads"), opt("constant_value"), opt("axes")])
        .results(OUT)
        .attrs(&[attr_opt("mode", AttrKind::String)])
        .infer(pad),
    OpDef::new("smelt.shape", "the extents of the input as a 1-D i64 tensor")
        .operands(&[one("data")])
        .results(OUT)
        .attrs(&[attr_opt("start", AttrKind::Int), attr_opt("end", AttrKind::Int)])
        .infer(shape_of)
        .fold(fold_shape),
    OpDef::new("smelt.range", "start, start + delta, ... up to limit")
        .operands(&[one("start"), one("limit"), one("delta")])
        .results(OUT)
        .infer(range),
    OpDef::new("smelt.constant_of_shape", "a tensor of the given shape filled with `value`")
        .operands(&[one("shape")])
        .results(OUT)
        .attrs(&[attr_opt("value", AttrKind::Dense)])
        .infer(constant_of_shape),
    OpDef::new("smelt.constant", "a constant tensor; weights are held by resource handle")
        .results(OUT)
        .attrs(&[attr("value", AttrKind::Dense)])
        .infer(super::infer::constant),
    // ---- kernels ----
    OpDef::new("smelt.kernel", "a fused kernel: its body computes the results from the block arguments")
        .operands(&[many("inputs")])
        .results(&[many("outputs")])
        .attrs(&[
            attr("pattern", AttrKind::String),
            attr_opt("predicted_latency_us", AttrKind::Float),
            attr_opt("flops", AttrKind::Int),
            attr_opt("bytes", AttrKind::Int),
        ])
        .regions(1)
        .traits(Traits { isolated_from_above: true, ..PURE })
        .infer(declared)
        .verify(verify_kernel),
    OpDef::new("smelt.yield", "returns the results of a `smelt.kernel` body")
        .operands(&[many("values")])
        .traits(Traits { terminator: true, pure: false, ..PURE })
        .infer(none)
        .verify(verify_yield),
];

fn pow_types(v: &OpView) -> Result<Vec<crate::types::Type>, String> {
    // ONNX Pow allows a differently typed exponent; the result has the base's type.
    let (x, y) = (v.tensor(0)?, v.tensor(1)?);
    let shape = broadcast(&[x.shape.as_deref(), y.shape.as_deref()])?;
    Ok(vec![crate::types::Type::Tensor(crate::types::TensorType { shape, element: x.element })])
}

fn verify_clip(v: &OpView) -> Result<(), String> {
    let x = v.tensor(0)?;
    for name in ["min", "max"] {
        if let Some(b) = v.operand(name) {
            let t = v.module.value_type(b).as_tensor().ok_or(format!("`{name}` must be a tensor"))?;
            if t.element != x.element || t.num_elements().is_some_and(|n| n != 1) {
                return Err(format!("`{name}` must be a one-element tensor of {}, got {t}", x.element));
            }
        }
    }
    Ok(())
}

fn verify_kernel(v: &OpView) -> Result<(), String> {
    let m = v.module;
    let region = m.op(v.id).regions()[0];
    let [body] = m.region(region).blocks() else {
        return Err("body must be exactly one block".into());
    };
    let args = m.block(*body).args();
    if args.len() != v.operands().len() {
        return Err(format!("body has {} arguments for {} inputs", args.len(), v.operands().len()));
    }
    for (i, (a, o)) in args.iter().zip(v.operands()).enumerate() {
        if m.value_type(*a) != m.value_type(*o) {
            return Err(format!(
                "body argument #{i} has type {} but input #{i} is {}",
                m.value_type(*a),
                m.value_type(*o)
            ));
        }
    }
    match m.block_terminator(*body) {
        Some(t) if m.op(t).name() == "smelt.yield" => {
            let yielded: Vec<_> = m.op(t).operands().iter().map(|x| m.value_type(*x)).collect();
            let results: Vec<_> = m.op(v.id).results().iter().map(|x| m.value_type(*x)).collect();
            if yielded != results {
                return Err(format!(
                    "body yields {} values that do not match the {} results",
                    yielded.len(),
                    results.len()
                ));
            }
            Ok(())
        }
        _ => Err("body must end with `smelt.yield`".into()),
    }
}

fn verify_yield(v: &OpView) -> Result<(), String> {
    match v.module.parent_op(v.id) {
        Some(p) if v.module.op(p).name() == "smelt.kernel" => Ok(()),
        _ => Err("must be directly inside a `smelt.kernel`".into()),
    }
}
