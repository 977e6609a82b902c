//! The `smelt` dialect: tensor operations with ONNX semantics, plus `smelt.kernel`.
//!
//! Conventions: ops follow the newest ONNX opset, so values ONNX passes as inputs (reshape
//! targets, reduction axes, clip bounds, slice bounds) are operands here too, and the importer
//! turns older opsets' attributes into constant operands. Attribute names are ONNX's in
//! snake_case; integer lists are `array<i64: ...>`; pads are `[begin..., end...]`.
//!
//! Each entry states everything about its op once: slots, attributes and their defaults,
//! traits, class, the ONNX operator it imports from one to one, shape function, reference
//! semantics ([`super::eval`]) and FLOP rule ([`super::flops`]).

use super::eval::{self, map, map_int};
use super::flops;
use super::folders::*;
use super::infer::*;
use super::*;

const PURE: Traits = Traits { pure: true, commutative: false, terminator: false, isolated_from_above: false };
const COMMUTATIVE: Traits = Traits { commutative: true, ..PURE };

const X: &[SlotDef] = &[one("x")];
const XY: &[SlotDef] = &[one("x"), one("y")];
const OUT: &[SlotDef] = &[one("output")];

/// Declares the table: one `NAME = "smelt.name": definition;` entry per op, in printing order.
/// `names::NAME` is the op's name; the definition is built without it and named here.
macro_rules! ops {
    ($($ident:ident = $name:literal : $def:expr;)*) => {
        /// The name of every `smelt` op.
        pub mod names {
            $(pub const $ident: &str = $name;)*
        }
        pub static OPS: &[OpDef] = &[$($def.named($name)),*];
    };
}

/// An elementwise op of one operand with the input's type.
const fn unary(summary: &'static str) -> OpDef {
    OpDef::new("", summary).operands(X).results(OUT).class(OpClass::Elementwise).infer(same_as_first)
}

/// An elementwise op of two broadcast operands, one FLOP per output element.
const fn binary(summary: &'static str, traits: Traits, infer: InferFn) -> OpDef {
    OpDef::new("", summary)
        .operands(XY)
        .results(OUT)
        .traits(traits)
        .class(OpClass::Elementwise)
        .infer(infer)
        .flops(Flops::PerOutput(1))
}

const fn op(summary: &'static str) -> OpDef {
    OpDef::new("", summary).results(OUT)
}

const WINDOW_ATTRS: &[AttrDef] = &[
    attr("kernel_shape", AttrKind::I64Array),
    attr_each("strides", 1),
    attr_each("pads", 0),
    attr_each("dilations", 1),
    attr_bool("ceil_mode", false),
    attr_bool("count_include_pad", false),
];

const MAX_POOL_INDICES_ATTRS: &[AttrDef] = &[
    attr("kernel_shape", AttrKind::I64Array),
    attr_each("strides", 1),
    attr_each("pads", 0),
    attr_each("dilations", 1),
    attr_bool("ceil_mode", false),
    attr_int("storage_order", 0),
];

const REDUCE_ATTRS: &[AttrDef] = &[attr_bool("keepdims", true), attr_bool("noop_with_empty_axes", false)];
const REDUCE_OPERANDS: &[SlotDef] = &[one("data"), opt("axes")];

const fn reduce_op(summary: &'static str, f: EvalFn) -> OpDef {
    op(summary)
        .operands(REDUCE_OPERANDS)
        .attrs(REDUCE_ATTRS)
        .class(OpClass::Reduction)
        .infer(reduce)
        .eval(f)
        .flops(Flops::PerInput(1))
}

ops! {
    // ---- elementwise binary (numpy broadcasting) ----
    ADD = "smelt.add": binary("x + y", COMMUTATIVE, broadcast_all).onnx("Add").eval(eval::add);
    SUB = "smelt.sub": binary("x - y", PURE, broadcast_all).onnx("Sub").eval(eval::sub);
    MUL = "smelt.mul": binary("x * y", COMMUTATIVE, broadcast_all).onnx("Mul").eval(eval::mul);
    DIV = "smelt.div": binary("x / y (integers truncate toward zero)", PURE, broadcast_all).onnx("Div").eval(eval::div);
    MOD = "smelt.mod": binary("remainder of x / y: the sign of y, or of x (C's fmod) with `fmod`", PURE, broadcast_all)
        .attrs(&[attr_int("fmod", 0)])
        .onnx("Mod")
        .verify(verify_mod)
        .eval(eval::modulo);
    POW = "smelt.pow": binary("x ^ y", PURE, pow_types).onnx("Pow").eval(eval::pow);
    MAX = "smelt.max": binary("elementwise maximum", COMMUTATIVE, broadcast_all).eval(eval::max);
    MIN = "smelt.min": binary("elementwise minimum", COMMUTATIVE, broadcast_all).eval(eval::min);
    EQUAL = "smelt.equal": binary("x == y as i1", COMMUTATIVE, compare).onnx("Equal").eval(eval::compare);
    LESS = "smelt.less": binary("x < y as i1", PURE, compare).onnx("Less").eval(eval::compare);
    GREATER = "smelt.greater": binary("x > y as i1", PURE, compare).onnx("Greater").eval(eval::compare);
    PRELU = "smelt.prelu": binary("x < 0 ? slope * x : x, slope broadcast to x", PURE, broadcast_all)
        .operands(&[one("x"), one("slope")])
        .onnx("PRelu")
        .eval(eval::prelu);
    WHERE = "smelt.where": binary("condition ? x : y", PURE, select)
        .operands(&[one("condition"), one("x"), one("y")])
        .onnx("Where")
        .eval(eval::select);
    // ---- elementwise unary ----
    NEG = "smelt.neg": unary("-x").onnx("Neg").flops(Flops::PerOutput(1))
        .eval(|v, x| map_int(v, x, |a| -a, i64::wrapping_neg));
    ABS = "smelt.abs": unary("|x|").onnx("Abs").flops(Flops::PerOutput(1))
        .eval(|v, x| map_int(v, x, f64::abs, i64::wrapping_abs));
    EXP = "smelt.exp": unary("e^x").onnx("Exp").flops(Flops::PerOutput(1)).eval(|v, x| map(v, x, f64::exp));
    LOG = "smelt.log": unary("natural logarithm").onnx("Log").flops(Flops::PerOutput(1))
        .eval(|v, x| map(v, x, f64::ln));
    SQRT = "smelt.sqrt": unary("square root").onnx("Sqrt").flops(Flops::PerOutput(1))
        .eval(|v, x| map(v, x, f64::sqrt));
    RECIPROCAL = "smelt.reciprocal": unary("1 / x").onnx("Reciprocal").flops(Flops::PerOutput(1))
        .eval(|v, x| map(v, x, |a| 1.0 / a));
    RELU = "smelt.relu": unary("max(x, 0)").onnx("Relu").flops(Flops::PerOutput(1))
        .eval(|v, x| map_int(v, x, eval::relu, |a| a.max(0)));
    SIGMOID = "smelt.sigmoid": unary("1 / (1 + e^-x)").onnx("Sigmoid").flops(Flops::PerOutput(3))
        .eval(|v, x| map(v, x, eval::sigmoid));
    TANH = "smelt.tanh": unary("hyperbolic tangent").onnx("Tanh").flops(Flops::PerOutput(1))
        .eval(|v, x| map(v, x, f64::tanh));
    ERF = "smelt.erf": unary("Gauss error function").onnx("Erf").flops(Flops::PerOutput(1))
        .eval(|v, x| map(v, x, libm::erf));
    NOT = "smelt.not": unary("logical not of i1").onnx("Not").flops(Flops::PerOutput(1)).verify(verify_i1)
        .eval(|v, x| map_int(v, x, |a| f64::from(a == 0.0), |a| i64::from(a == 0)));
    SILU = "smelt.silu": unary("x * sigmoid(x)").flops(Flops::PerOutput(4))
        .eval(|v, x| map(v, x, |a| a * eval::sigmoid(a)));
    SOFTPLUS = "smelt.softplus": unary("log(1 + e^x)").onnx("Softplus").flops(Flops::PerOutput(3))
        .eval(|v, x| map(v, x, eval::softplus));
    MISH = "smelt.mish": unary("x * tanh(softplus(x))").onnx("Mish").flops(Flops::PerOutput(5))
        .eval(|v, x| map(v, x, |a| a * eval::softplus(a).tanh()));
    SOFTSIGN = "smelt.softsign": unary("x / (1 + |x|)").onnx("Softsign").flops(Flops::PerOutput(3))
        .eval(|v, x| map(v, x, |a| a / (1.0 + a.abs())));
    GELU = "smelt.gelu": unary("x * Phi(x); approximate = \"none\" (erf) or \"tanh\"")
        .attrs(&[attr_string("approximate", "none")])
        .onnx("Gelu")
        .flops(Flops::PerOutput(8))
        .eval(eval::gelu);
    HARDSWISH = "smelt.hardswish": unary("x * max(0, min(1, x / 6 + 1 / 2))").onnx("HardSwish")
        .flops(Flops::PerOutput(4))
        .eval(|v, x| map(v, x, |a| a * (a / 6.0 + 0.5).clamp(0.0, 1.0)));
    HARDSIGMOID = "smelt.hardsigmoid": unary("max(0, min(1, alpha * x + beta))")
        .attrs(&[attr_float("alpha", 0.2), attr_float("beta", 0.5)])
        .onnx("HardSigmoid")
        .flops(Flops::PerOutput(3))
        .eval(eval::hardsigmoid);
    LEAKY_RELU = "smelt.leaky_relu": unary("x < 0 ? alpha * x : x")
        .attrs(&[attr_float("alpha", 0.01)])
        .onnx("LeakyRelu")
        .flops(Flops::PerOutput(2))
        .eval(eval::leaky_relu);
    ELU = "smelt.elu": unary("x < 0 ? alpha * (e^x - 1) : x")
        .attrs(&[attr_float("alpha", 1.0)])
        .onnx("Elu")
        .flops(Flops::PerOutput(3))
        .eval(eval::elu);
    SELU = "smelt.selu": unary("gamma * (x < 0 ? alpha * (e^x - 1) : x)")
        .attrs(&[attr_float("alpha", 1.673_263_192_176_818_8), attr_float("gamma", 1.050_701_022_148_132_3)])
        .onnx("Selu")
        .flops(Flops::PerOutput(4))
        .eval(eval::selu);
    CLIP = "smelt.clip": unary("min(max(x, min), max); absent bounds do not clip")
        .operands(&[one("x"), opt("min"), opt("max")])
        .flops(Flops::PerOutput(2))
        .verify(verify_clip)
        .eval(eval::clip);
    CAST = "smelt.cast": unary("converts elements to the type `to`; narrow floats saturate unless `saturate` is false; E8M0 rounds as `round_mode` says (up, down, nearest)")
        .attrs(&[attr("to", AttrKind::Type), attr_bool("saturate", true), attr_string("round_mode", "up")])
        .class(OpClass::Conversion)
        .infer(cast)
        .fold(fold_to_input)
        .eval(eval::cast);
    QUANTIZE_LINEAR = "smelt.quantize_linear": op(
        "saturate(round_half_even(x / scale) + zero_point) in the zero point's integer type; scale and zero point per tensor or per `axis`",
    )
        .operands(&[one("x"), one("scale"), one("zero_point")])
        .attrs(&[attr_int("axis", 1)])
        .class(OpClass::Conversion)
        .infer(quantize)
        .eval(eval::quantize_linear)
        .flops(Flops::PerOutput(3));
    DEQUANTIZE_LINEAR = "smelt.dequantize_linear": op(
        "(x - zero_point) * scale in the scale's float type; per tensor or per `axis`",
    )
        .operands(&[one("x"), one("scale"), one("zero_point")])
        .attrs(&[attr_int("axis", 1)])
        .class(OpClass::Conversion)
        .infer(dequantize)
        .eval(eval::dequantize_linear)
        .flops(Flops::PerOutput(2));
    ROUND = "smelt.round": unary("x rounded to the nearest integer, halves to even").onnx("Round")
        .flops(Flops::PerOutput(1))
        .eval(|v, x| map(v, x, f64::round_ties_even));
    IDENTITY = "smelt.identity": op("returns its input")
        .operands(X)
        .class(OpClass::View)
        .onnx("Identity")
        .infer(same_as_first)
        .fold(fold_to_input)
        .eval(eval::identity);
    DROPOUT = "smelt.dropout": op("inference-mode dropout: returns its input (and an all-true mask)")
        .operands(&[one("data"), opt("ratio"), opt("training_mode")])
        .results(&[one("output"), opt("mask")])
        .attrs(&[attr_opt("seed", AttrKind::Int)])
        .class(OpClass::View)
        .infer(dropout)
        .fold(fold_to_input)
        .eval(eval::dropout);
    // ---- neural network ----
    CONV2D = "smelt.conv2d": op("2-D convolution, NCHW input and OIHW weight, optional bias")
        .operands(&[one("x"), one("weight"), opt("bias")])
        .attrs(&[attr_each("strides", 1), attr_each("pads", 0), attr_each("dilations", 1), attr_int("group", 1)])
        .class(OpClass::Contraction)
        .infer(conv2d)
        .eval(eval::conv2d)
        .flops(Flops::Custom(flops::conv2d, "2 x N x Cout x Hout x Wout x (Cin / group) x Kh x Kw (bias not counted, as PyTorch)"));
    QUANTIZED_CONV2D = "smelt.quantized_conv2d": op(
        "conv2d with integer products: x rounded to `x_scale` steps around `x_zero_point` (8-bit, as QuantizeLinear) times int8 weights scaled per output channel by `w_scale`, plus an optional f32 bias; what a QDQ convolution computes",
    )
        .operands(&[one("x"), one("weight"), one("x_scale"), one("x_zero_point"), one("w_scale"), opt("bias")])
        .attrs(&[attr_each("strides", 1), attr_each("pads", 0), attr_each("dilations", 1), attr_int("group", 1)])
        .class(OpClass::Contraction)
        .infer(quantized_conv2d)
        .eval(eval::quantized_conv2d)
        .flops(Flops::Custom(flops::conv2d, "as conv2d: 2 x N x Cout x Hout x Wout x (Cin / group) x Kh x Kw"));
    CONV_TRANSPOSE = "smelt.conv_transpose": op(
        "2-D transposed convolution (the gradient of conv2d), NCHW input and IOHW weight, optional bias",
    )
        .operands(&[one("x"), one("weight"), opt("bias")])
        .attrs(&[
            attr_each("strides", 1),
            attr_each("pads", 0),
            attr_each("dilations", 1),
            attr_each("output_padding", 0),
            attr_int("group", 1),
        ])
        .class(OpClass::Contraction)
        .infer(conv_transpose)
        .eval(eval::conv_transpose)
        .flops(Flops::Custom(flops::conv_transpose, "2 x N x Cin x H x W x (Cout / group) x Kh x Kw: every input element times the kernel"));
    BATCH_NORM = "smelt.batch_norm": op("inference batch normalization over channel axis 1")
        .operands(&[one("x"), one("scale"), one("bias"), one("mean"), one("var")])
        .attrs(&[attr_float("epsilon", 1e-5)])
        .class(OpClass::Elementwise)
        .infer(batch_norm)
        .eval(eval::batch_norm)
        .flops(Flops::PerOutput(2));
    QUANTIZED_MATMUL = "smelt.quantized_matmul": op(
        "matmul with integer products: a rounded to `a_scale` steps around `a_zero_point` (8-bit, as QuantizeLinear) times an int8 matrix b ([K, N]) scaled per column by `b_scale`; what a QDQ matmul computes",
    )
        .operands(&[one("a"), one("b"), one("a_scale"), one("a_zero_point"), one("b_scale")])
        .class(OpClass::Contraction)
        .infer(quantized_matmul)
        .eval(eval::quantized_matmul)
        .flops(Flops::Custom(flops::matmul, "as matmul: 2 x batch x M x N x K"));
    MATMUL = "smelt.matmul": op("numpy matrix product with broadcast batch dimensions")
        .operands(&[one("a"), one("b")])
        .class(OpClass::Contraction)
        .onnx("MatMul")
        .infer(matmul)
        .eval(eval::matmul)
        .flops(Flops::Custom(flops::matmul, "2 x batch x M x N x K"));
    GEMM = "smelt.gemm": op("alpha * op(a) @ op(b) + beta * c; op transposes when trans_* is set")
        .operands(&[one("a"), one("b"), opt("c")])
        .attrs(&[
            attr_float("alpha", 1.0),
            attr_float("beta", 1.0),
            attr_bool("trans_a", false),
            attr_bool("trans_b", false),
        ])
        .class(OpClass::Contraction)
        .infer(gemm)
        .eval(eval::gemm)
        .flops(Flops::Custom(flops::gemm, "2 x M x N x K (alpha, beta and the bias not counted, as PyTorch)"));
    ATTENTION = "smelt.attention": op(
        "softmax(scale * (q @ k_t) + mask) @ v, softmax over the last axis (scaled-dot-product attention)",
    )
        .operands(&[one("q"), one("k_t"), one("v"), opt("mask")])
        .attrs(&[attr_float("scale", 1.0)])
        .class(OpClass::Contraction)
        .infer(super::infer::attention)
        .eval(eval::attention)
        .flops(Flops::Custom(flops::attention, "its two products, plus 6 per score (scale, softmax) and 1 per score for a mask"));
    MAX_POOL = "smelt.max_pool": op("2-D max pooling")
        .operands(X)
        .attrs(WINDOW_ATTRS)
        .class(OpClass::Window)
        .infer(pool)
        .eval(eval::pool)
        .flops(Flops::Custom(flops::pool, "Kh x Kw per output element (avg_pool one more)"));
    AVG_POOL = "smelt.avg_pool": op("2-D average pooling")
        .operands(X)
        .attrs(WINDOW_ATTRS)
        .class(OpClass::Window)
        .infer(pool)
        .eval(eval::pool)
        .flops(Flops::Custom(flops::pool, "Kh x Kw per output element (avg_pool one more)"));
    GLOBAL_AVG_POOL = "smelt.global_avg_pool": op("mean over all spatial dimensions")
        .operands(X)
        .class(OpClass::Window)
        .onnx("GlobalAveragePool")
        .infer(global_pool)
        .eval(eval::global_pool)
        .flops(Flops::Custom(flops::mean, "1 per input element and 1 per output element"));
    MAX_POOL_INDICES = "smelt.max_pool_indices": op("where each window of 2-D max pooling takes its maximum: flat input indices (MaxPool's Indices output; `storage_order` 1 swaps the spatial axes)")
        .operands(X)
        .attrs(MAX_POOL_INDICES_ATTRS)
        .class(OpClass::Reduction)
        .infer(pool_indices)
        .eval(eval::max_pool_indices)
        .flops(Flops::Custom(flops::pool, "Kh x Kw per output element"));
    GLOBAL_MAX_POOL = "smelt.global_max_pool": op("maximum over all spatial dimensions")
        .operands(X)
        .class(OpClass::Window)
        .onnx("GlobalMaxPool")
        .infer(global_pool)
        .eval(eval::global_pool)
        .flops(Flops::PerInput(1));
    SOFTMAX = "smelt.softmax": op("e^x / sum(e^x) along `axis`")
        .operands(X)
        .attrs(&[attr_int("axis", -1)])
        .class(OpClass::RowReduction)
        .infer(axis_in_range)
        .eval(eval::softmax)
        .flops(Flops::PerOutput(5));
    LOG_SOFTMAX = "smelt.log_softmax": op("log(softmax(x)) along `axis`")
        .operands(X)
        .attrs(&[attr_int("axis", -1)])
        .class(OpClass::RowReduction)
        .infer(axis_in_range)
        .eval(eval::softmax)
        .flops(Flops::PerOutput(5));
    LAYER_NORM = "smelt.layer_norm": op("normalizes over the axes from `axis` to the end")
        .operands(&[one("x"), one("scale"), opt("bias")])
        .attrs(&[attr_int("axis", -1), attr_float("epsilon", 1e-5)])
        .class(OpClass::RowReduction)
        .infer(axis_in_range)
        .eval(eval::layer_norm)
        .flops(Flops::PerOutput(8));
    LRN = "smelt.lrn": op("x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels)^beta")
        .operands(X)
        .attrs(&[attr_float("alpha", 1e-4), attr_float("beta", 0.75), attr_float("bias", 1.0), attr("size", AttrKind::Int)])
        .class(OpClass::Window)
        .onnx("LRN")
        .infer(same_as_first)
        .verify(verify_lrn)
        .eval(eval::lrn)
        .flops(Flops::Custom(flops::lrn, "2 x size per output element for the sum of squares, and 4 more (scale, bias, power, divide)"));
    GROUP_NORM = "smelt.group_norm": op(
        "normalizes each of `num_groups` channel groups over its channels and positions, then scales and shifts per channel",
    )
        .operands(&[one("x"), one("scale"), one("bias")])
        .attrs(&[attr("num_groups", AttrKind::Int), attr_float("epsilon", 1e-5)])
        .class(OpClass::RowReduction)
        .infer(group_norm)
        .eval(eval::group_norm)
        .flops(Flops::PerOutput(8));
    // ---- reductions ----
    REDUCE_MEAN = "smelt.reduce_mean": reduce_op("mean over `axes` (all when absent)", eval::reduce)
        .flops(Flops::Custom(flops::mean, "1 per input element and 1 per output element"));
    REDUCE_SUM = "smelt.reduce_sum": reduce_op("sum over `axes` (all when absent)", eval::reduce);
    REDUCE_MAX = "smelt.reduce_max": reduce_op("maximum over `axes` (all when absent)", eval::reduce);
    REDUCE_MIN = "smelt.reduce_min": reduce_op("minimum over `axes` (all when absent)", eval::reduce);
    REDUCE_PROD = "smelt.reduce_prod": reduce_op("product over `axes` (all when absent)", eval::reduce);
    // ---- data movement and shapes ----
    TRANSPOSE = "smelt.transpose": op("permutes dimensions by `perm` (default: reverse)")
        .operands(X)
        .attrs(&[attr_opt("perm", AttrKind::I64Array)])
        .class(OpClass::Movement)
        .infer(transpose)
        .fold(fold_to_input)
        .eval(eval::transpose);
    RESHAPE = "smelt.reshape": op("reinterprets the shape; target 0 copies, -1 infers")
        .operands(&[one("data"), one("shape")])
        .attrs(&[attr_bool("allowzero", false)])
        .class(OpClass::View)
        .infer(reshape)
        .fold(fold_to_input)
        .eval(eval::reshape);
    FLATTEN = "smelt.flatten": op("collapses to 2-D around `axis`")
        .operands(X)
        .attrs(&[attr_int("axis", 1)])
        .class(OpClass::View)
        .infer(flatten)
        .fold(fold_to_input)
        .eval(eval::reshape);
    SQUEEZE = "smelt.squeeze": op("removes extent-1 dimensions (`axes`, or all)")
        .operands(&[one("data"), opt("axes")])
        .class(OpClass::View)
        .infer(squeeze)
        .fold(fold_to_input)
        .eval(eval::reshape);
    UNSQUEEZE = "smelt.unsqueeze": op("inserts extent-1 dimensions at `axes`")
        .operands(&[one("data"), one("axes")])
        .class(OpClass::View)
        .infer(unsqueeze)
        .fold(fold_to_input)
        .eval(eval::reshape);
    CONCAT = "smelt.concat": op("joins along `axis`")
        .operands(&[many("inputs")])
        .attrs(&[attr("axis", AttrKind::Int)])
        .class(OpClass::Movement)
        .infer(concat)
        .eval(eval::concat);
    SPLIT = "smelt.split": OpDef::new("", "cuts along `axis` into the results (`split` sizes, or equal parts)")
        .operands(&[one("input"), opt("split")])
        .results(&[many("outputs")])
        .attrs(&[attr_int("axis", 0)])
        .class(OpClass::Movement)
        .infer(split)
        .eval(eval::split);
    SLICE = "smelt.slice": op("strided slice with ONNX clamping")
        .operands(&[one("data"), one("starts"), one("ends"), opt("axes"), opt("steps")])
        .class(OpClass::Movement)
        .infer(slice)
        .eval(eval::slice);
    GATHER = "smelt.gather": op("picks entries of `axis` by index")
        .operands(&[one("data"), one("indices")])
        .attrs(&[attr_int("axis", 0)])
        .class(OpClass::Movement)
        .onnx("Gather")
        .infer(gather)
        .eval(eval::gather);
    GATHER_ELEMENTS = "smelt.gather_elements": op(
        "picks elements along `axis` by an index tensor of the output's shape",
    )
        .operands(&[one("data"), one("indices")])
        .attrs(&[attr_int("axis", 0)])
        .class(OpClass::Movement)
        .onnx("GatherElements")
        .infer(gather_elements)
        .eval(eval::gather_elements);
    EXPAND = "smelt.expand": op("broadcasts to `shape`")
        .operands(&[one("input"), one("shape")])
        .class(OpClass::Movement)
        .onnx("Expand")
        .infer(expand)
        .fold(fold_to_input)
        .eval(eval::expand);
    RESIZE = "smelt.resize": op(
        "resamples `axes` (default all) to `sizes` or by `scales`, as ONNX Resize (`antialias` widens linear and cubic filters when downsampling)",
    )
        .operands(&[one("x"), opt("roi"), opt("scales"), opt("sizes")])
        .attrs(&[
            attr_string("mode", "nearest"),
            attr_string("coordinate_transformation_mode", "half_pixel"),
            attr_string("nearest_mode", "round_prefer_floor"),
            attr_float("cubic_coeff_a", -0.75),
            attr_bool("exclude_outside", false),
            attr_float("extrapolation_value", 0.0),
            attr_string("keep_aspect_ratio_policy", "stretch"),
            attr_opt("axes", AttrKind::I64Array),
            attr_bool("antialias", false),
        ])
        .class(OpClass::Movement)
        .infer(resize)
        .eval(eval::resize);
    TILE = "smelt.tile": op("repeats along each dimension")
        .operands(&[one("input"), one("repeats")])
        .class(OpClass::Movement)
        .onnx("Tile")
        .infer(tile)
        .eval(eval::tile);
    PAD = "smelt.pad": op("pads with `mode` constant, reflect, edge or wrap")
        .operands(&[one("data"), one("pads"), opt("constant_value"), opt("axes")])
        .attrs(&[attr_string("mode", "constant")])
        .class(OpClass::Movement)
        .infer(pad)
        .eval(eval::pad);
    SHAPE = "smelt.shape": op("the extents of the input as a 1-D i64 tensor")
        .operands(&[one("data")])
        .attrs(&[attr_int("start", 0), attr_opt("end", AttrKind::Int)])
        .class(OpClass::Generator)
        .infer(shape_of)
        .fold(fold_shape)
        .eval(eval::shape);
    RANGE = "smelt.range": op("start, start + delta, ... up to limit")
        .operands(&[one("start"), one("limit"), one("delta")])
        .class(OpClass::Generator)
        .onnx("Range")
        .infer(range)
        .eval(eval::range);
    CONSTANT_OF_SHAPE = "smelt.constant_of_shape": op("a tensor of the given shape filled with `value` (zero)")
        .operands(&[one("shape")])
        .attrs(&[attr_opt("value", AttrKind::Dense)])
        .class(OpClass::Generator)
        .infer(constant_of_shape)
        .eval(eval::constant_of_shape);
    CONSTANT = "smelt.constant": op("a constant tensor; weights are held by resource handle")
        .attrs(&[attr("value", AttrKind::Dense)])
        .class(OpClass::Generator)
        .infer(super::infer::constant)
        .eval(eval::constant);
    // ---- kernels ----
    KERNEL = "smelt.kernel": OpDef::new("", "a fused kernel: its body computes the results from the block arguments")
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
        .verify(verify_kernel);
    YIELD = "smelt.yield": OpDef::new("", "returns the results of a `smelt.kernel` body")
        .operands(&[many("values")])
        .traits(Traits { terminator: true, pure: false, ..PURE })
        .infer(none)
        .verify(verify_yield);
}

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

fn verify_mod(v: &OpView) -> Result<(), String> {
    if v.tensor(0)?.element.is_float() && v.int("fmod") == 0 {
        return Err("a floating-point remainder needs `fmod = 1` (as ONNX requires)".into());
    }
    Ok(())
}

fn verify_lrn(v: &OpView) -> Result<(), String> {
    let rank = v.tensor(0)?.shape.as_ref().map(Vec::len);
    if rank.is_some_and(|r| r < 3) {
        return Err(format!("expects an input of rank 3 or more (N, C, spatial...), got rank {}", rank.unwrap_or(0)));
    }
    if v.int("size") < 1 {
        return Err(format!("`size` must be at least 1, got {}", v.int("size")));
    }
    Ok(())
}

fn verify_i1(v: &OpView) -> Result<(), String> {
    match v.tensor(0)?.element {
        crate::types::ElementType::I1 => Ok(()),
        other => Err(format!("operand must be a tensor of i1, got {other}")),
    }
}

fn verify_kernel(v: &OpView) -> Result<(), String> {
    let m = v.module;
    let region = m.op(v.id).regions()[0];
    let [body] = m.region(region).blocks() else {
        return Err("body must be exactly one block".into());
    };
    // A kernel is one launch: its body holds ops, not other launches (nothing prices, plans
    // or runs a kernel inside a kernel).
    if m.block_ops(*body).any(|op| !m.op(op).regions().is_empty()) {
        return Err("body holds an op with regions (a kernel inside a kernel); kernels do not nest".into());
    }
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
        Some(t) if m.op(t).is(names::YIELD) => {
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
        Some(p) if v.module.op(p).is(names::KERNEL) => Ok(()),
        _ => Err("must be directly inside a `smelt.kernel`".into()),
    }
}
