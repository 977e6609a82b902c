//! `smelt calibrate`: measures this machine into a calibration profile — the compute and
//! bandwidth ceilings, every op kind over a shape sweep, and the seeds' fusion patterns fused
//! versus unfused, all through the same JIT runtime models run on.
//!
//! A fusion pattern is a small graph (`Linear_Bias_GELU` is matmul, add, gelu) built at one
//! shape; `fuse` compiles it as it would inside a model, and both the fused and the unfused
//! module are timed. The profile stores the ratio under Smelt's own kernel pattern name, which
//! is what the calibrated cost model looks up when it prices a candidate kernel.

use crate::measure::{measure, random_inputs, Measured};
use smelt_compiler::attributes::DenseElements;
use smelt_compiler::builder::{add_function, Builder};
use smelt_compiler::ir::{BlockId, ValueId};
use smelt_compiler::names;
use smelt_compiler::{Attribute, Dim, ElementType, Module, OpSpec, TensorType, Type};
use smelt_hardware::profile::{FusionProfile, Metadata, OperationProfile, Peaks, Profile};
use smelt_hardware::target::Target;
use smelt_passes::cost::CostModel;
use smelt_passes::cost::Roofline;
use smelt_passes::fuse::Fuse;
use smelt_runtime::microbench as bench;
use std::sync::Arc;

pub const PATTERN_GROUPS: &[&str] = &["linear", "conv", "attention"];

/// What to measure.
pub struct Options {
    /// Fewer shapes and trials: finishes in well under two minutes on a small machine.
    pub quick: bool,
    /// Pattern groups (`linear`, `conv`, `attention`); empty for none.
    pub patterns: Vec<String>,
    /// Op kinds of the sweep (`conv2d`, `relu`, ...); empty for none.
    pub ops: Vec<String>,
    pub target: String,
}

impl Options {
    fn trials(&self) -> usize {
        if self.quick {
            7
        } else {
            25
        }
    }
}

/// A graph under construction: `@main` with activation arguments and random constant weights.
struct Graph {
    m: Module,
    entry: BlockId,
    seed: u64,
}

fn f32_tensor(shape: &[u64]) -> TensorType {
    TensorType::ranked(shape.iter().map(|&d| Dim::Known(d)).collect(), ElementType::F32)
}

impl Graph {
    fn new(inputs: &[&[u64]]) -> (Graph, Vec<ValueId>) {
        let mut m = Module::new(smelt_compiler::Location::Unknown);
        let types: Vec<Type> = inputs.iter().map(|s| Type::Tensor(f32_tensor(s))).collect();
        let (_, entry) = add_function(&mut m, "main", types, Vec::new(), smelt_compiler::Location::Unknown);
        let args = m.block(entry).args().to_vec();
        (Graph { m, entry, seed: 0x9e37_79b9_7f4a_7c15 }, args)
    }

    /// Deterministic values in [-0.1, 0.1): weights a model would load.
    fn weight(&mut self, shape: &[u64]) -> ValueId {
        let n: u64 = shape.iter().product();
        let values: Vec<f64> = (0..n)
            .map(|_| {
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 7;
                self.seed ^= self.seed << 17;
                ((self.seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2
            })
            .collect();
        self.constant(shape, &values)
    }

    fn constant(&mut self, shape: &[u64], values: &[f64]) -> ValueId {
        let ty = f32_tensor(shape);
        let op = self.m.create_op(
            OpSpec::new(names::CONSTANT)
                .attr("value", Attribute::Dense(DenseElements::from_f64(ty.clone(), values)))
                .results([Type::Tensor(ty)]),
        );
        self.m.append_op(self.entry, op);
        self.m.op(op).result()
    }

    fn op(&mut self, name: &str, operands: &[ValueId], attrs: &[(&str, Attribute)]) -> Result<ValueId, String> {
        Builder::at_end(&mut self.m, self.entry).value(name, operands, attrs)
    }

    fn finish(mut self, result: ValueId) -> Result<Module, String> {
        let ret = self.m.create_op(OpSpec::new(names::RETURN).operands([result]));
        self.m.append_op(self.entry, ret);
        let func = self.m.functions()[0];
        let inputs = self.m.block(self.entry).args().iter().map(|&a| self.m.value_type(a).clone()).collect();
        let ft = smelt_compiler::types::FunctionType { inputs, results: vec![self.m.value_type(result).clone()] };
        self.m.op_mut(func).attributes.insert("function_type".into(), Attribute::Type(Type::Function(Box::new(ft))));
        smelt_compiler::verifier::verify(&self.m).map_err(|ds| format!("{ds:?}"))?;
        smelt_passes::run_pipeline(&mut self.m, smelt_passes::CLEANUP_PIPELINE).map_err(|ds| format!("{ds:?}"))?;
        Ok(self.m)
    }
}

fn ints(v: &[i64]) -> Attribute {
    Attribute::I64Array(v.to_vec())
}

/// Conv `cin -> cout` with a `k x k` kernel, "same" padding.
fn conv(g: &mut Graph, x: ValueId, cin: u64, cout: u64, k: u64, group: u64) -> Result<ValueId, String> {
    let w = g.weight(&[cout, cin / group, k, k]);
    let p = (k / 2) as i64;
    g.op(
        names::CONV2D,
        &[x, w],
        &[("pads", ints(&[p, p, p, p])), ("group", Attribute::Int(group as i64, ElementType::I64))],
    )
}

fn batch_norm(g: &mut Graph, x: ValueId, c: u64) -> Result<ValueId, String> {
    let scale = g.weight(&[c]);
    let bias = g.weight(&[c]);
    let mean = g.weight(&[c]);
    let var = g.constant(&[c], &[1.5]);
    g.op(names::BATCH_NORM, &[x, scale, bias, mean, var], &[])
}

fn relu6(g: &mut Graph, x: ValueId) -> Result<ValueId, String> {
    let lo = g.constant(&[], &[0.0]);
    let hi = g.constant(&[], &[6.0]);
    g.op(names::CLIP, &[x, lo, hi], &[])
}

/// One of the seeds' fusion patterns at one shape.
pub struct Case {
    /// The seeds' name (`Conv2d_BatchNorm2d_ReLU`).
    pub name: &'static str,
    pub group: &'static str,
    /// The seeds' shape convention: linear `[M, K, N]`, conv `[B, C, H, W]`, attention
    /// `[B, H, S, D]`.
    pub shape: Vec<u64>,
    build: fn(&[u64]) -> Result<Module, String>,
}

fn linear(s: &[u64], bias: bool, then: &[&str], residual: bool) -> Result<Module, String> {
    let (m, k, n) = (s[0], s[1], s[2]);
    let (x, r) = ([m, k], [m, n]);
    let inputs: Vec<&[u64]> = if residual { vec![&x, &r] } else { vec![&x] };
    let (mut g, args) = Graph::new(&inputs);
    let w = g.weight(&[k, n]);
    let mut y = g.op(names::MATMUL, &[args[0], w], &[])?;
    if bias {
        let b = g.weight(&[n]);
        y = g.op(names::ADD, &[y, b], &[])?;
    }
    if residual {
        y = g.op(names::ADD, &[y, args[1]], &[])?;
    }
    for op in then {
        y = g.op(op, &[y], &[])?;
    }
    g.finish(y)
}

fn conv_case(s: &[u64], bn: bool, act: Option<&str>, depthwise: bool) -> Result<Module, String> {
    let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
    let (mut g, args) = Graph::new(&[&[b, c, h, w]]);
    let mut y = conv(&mut g, args[0], c, c, 3, if depthwise { c } else { 1 })?;
    if bn {
        y = batch_norm(&mut g, y, c)?;
    }
    y = match act {
        Some("relu6") => relu6(&mut g, y)?,
        Some(op) => g.op(op, &[y], &[])?,
        None => y,
    };
    g.finish(y)
}

fn add_relu(s: &[u64]) -> Result<Module, String> {
    let (mut g, args) = Graph::new(&[s, s]);
    let y = g.op(names::ADD, &[args[0], args[1]], &[])?;
    let y = g.op(names::RELU, &[y], &[])?;
    g.finish(y)
}

/// `[B, H, S, D]`: scores `q k^T / sqrt(D)`, then softmax, then the product with `v`.
fn attention_case(s: &[u64], softmax: bool, values: bool) -> Result<Module, String> {
    let (b, h, seq, d) = (s[0], s[1], s[2], s[3]);
    let qkv = [b, h, seq, d];
    let (mut g, args) = Graph::new(&[&qkv, &qkv, &qkv]);
    let kt = g.op(names::TRANSPOSE, &[args[1]], &[("perm", ints(&[0, 1, 3, 2]))])?;
    let mut y = g.op(names::MATMUL, &[args[0], kt], &[])?;
    let scale = g.constant(&[], &[1.0 / (d as f64).sqrt()]);
    y = g.op(names::MUL, &[y, scale], &[])?;
    if softmax {
        y = g.op(names::SOFTMAX, &[y], &[("axis", Attribute::Int(-1, ElementType::I64))])?;
    }
    if values {
        y = g.op(names::MATMUL, &[y, args[2]], &[])?;
    }
    g.finish(y)
}

impl Case {
    /// The pattern's graph at its shape.
    pub fn module(&self) -> Result<Module, String> {
        (self.build)(&self.shape).map_err(|e| format!("building {}: {e}", self.name))
    }
}

/// The seeds' pattern `name` at `shape`, when the name is one of theirs and the shape has the
/// pattern's rank.
pub fn pattern(name: &str, shape: &[u64]) -> Option<Case> {
    let mut case = cases(&["all".to_string()], true).into_iter().find(|c| c.name == name)?;
    (shape.len() == case.shape.len() && shape.iter().all(|&d| d > 0)).then(|| {
        case.shape = shape.to_vec();
        case
    })
}

/// The seeds' patterns at the seeds' shapes (`quick`: the first shape of each).
pub fn cases(groups: &[String], quick: bool) -> Vec<Case> {
    let linear_shapes: &[[u64; 3]] = if quick { &[[128, 512, 512]] } else { &[[128, 512, 512], [512, 1024, 1024]] };
    let conv_shapes: &[[u64; 4]] = if quick { &[[1, 64, 56, 56]] } else { &[[1, 64, 56, 56], [4, 128, 28, 28]] };
    let attention_shapes: &[[u64; 4]] = if quick { &[[1, 12, 128, 64]] } else { &[[1, 12, 128, 64], [4, 1, 256, 64]] };
    type Build = fn(&[u64]) -> Result<Module, String>;
    let linear_patterns: [(&str, Build); 4] = [
        ("Linear_Bias", |s| linear(s, true, &[], false)),
        ("Linear_Bias_ReLU", |s| linear(s, true, &[names::RELU], false)),
        ("Linear_Bias_GELU", |s| linear(s, true, &[names::GELU], false)),
        ("Linear_Bias_Residual_ReLU", |s| linear(s, true, &[names::RELU], true)),
    ];
    let conv_patterns: [(&str, Build); 5] = [
        ("Conv2d_ReLU", |s| conv_case(s, false, Some(names::RELU), false)),
        ("Conv2d_BatchNorm2d", |s| conv_case(s, true, None, false)),
        ("Conv2d_BatchNorm2d_ReLU", |s| conv_case(s, true, Some(names::RELU), false)),
        ("DepthwiseConv2d_BatchNorm2d_ReLU6", |s| conv_case(s, true, Some("relu6"), true)),
        ("add_ReLU", add_relu),
    ];
    let attention_patterns: [(&str, Build); 3] = [
        ("QK^T", |s| attention_case(s, false, false)),
        ("QK^T_Softmax", |s| attention_case(s, true, false)),
        ("FullAttention", |s| attention_case(s, true, true)),
    ];
    let wanted = |g: &str| groups.iter().any(|x| x == g || x == "all");
    let mut out = Vec::new();
    let mut add = |group: &'static str, shapes: Vec<Vec<u64>>, patterns: &[(&'static str, Build)]| {
        if wanted(group) {
            for shape in shapes {
                out.extend(patterns.iter().map(|&(name, build)| Case { name, group, shape: shape.clone(), build }));
            }
        }
    };
    add("linear", linear_shapes.iter().map(|s| s.to_vec()).collect(), &linear_patterns);
    add("conv", conv_shapes.iter().map(|s| s.to_vec()).collect(), &conv_patterns);
    add("attention", attention_shapes.iter().map(|s| s.to_vec()).collect(), &attention_patterns);
    out
}

/// An op kind at one size of the sweep.
pub struct OpCase {
    pub op: &'static str,
    pub size: u64,
    build: fn(u64) -> Result<Module, String>,
}

pub const SWEPT_OPS: &[&str] = &[
    "conv2d",
    "depthwise_conv2d",
    "matmul",
    "gemm",
    "relu",
    "add",
    "mul",
    "sigmoid",
    "gelu",
    "softmax",
    "layer_norm",
    "batch_norm",
    "max_pool",
    "global_avg_pool",
    "transpose",
];

fn unary(op: &'static str) -> impl Fn(u64) -> Result<Module, String> {
    move |n| {
        let (mut g, a) = Graph::new(&[&[n, 1024]]);
        let y = g.op(op, &[a[0]], &[])?;
        g.finish(y)
    }
}

/// The sweep: `size` is channels for convs and pools, the side of square products, and rows of
/// 1024 for row-wise and elementwise ops.
pub fn op_cases(ops: &[String], quick: bool) -> Vec<OpCase> {
    type Build = fn(u64) -> Result<Module, String>;
    let table: [(&str, Build, [u64; 3]); 15] = [
        ("conv2d", |c| conv_case(&[1, c, 28, 28], false, None, false), [32, 64, 128]),
        ("depthwise_conv2d", |c| conv_case(&[1, c, 28, 28], false, None, true), [64, 128, 256]),
        ("matmul", |n| linear(&[n, n, n], false, &[], false), [64, 256, 512]),
        ("gemm", |n| linear(&[n, n, n], true, &[], false), [64, 256, 512]),
        ("relu", |n| unary(names::RELU)(n), [64, 512, 4096]),
        ("add", |n| binary(names::ADD)(n), [64, 512, 4096]),
        ("mul", |n| binary(names::MUL)(n), [64, 512, 4096]),
        ("sigmoid", |n| unary(names::SIGMOID)(n), [64, 512, 4096]),
        ("gelu", |n| unary(names::GELU)(n), [64, 512, 4096]),
        ("softmax", |n| unary(names::SOFTMAX)(n), [64, 512, 4096]),
        ("layer_norm", layer_norm_case, [64, 512, 4096]),
        ("batch_norm", |c| bn_case(&[1, c, 28, 28]), [32, 128, 512]),
        ("max_pool", |c| pool_case(&[1, c, 56, 56], names::MAX_POOL), [16, 64, 128]),
        ("global_avg_pool", |c| pool_case(&[1, c, 7, 7], names::GLOBAL_AVG_POOL), [128, 512, 2048]),
        ("transpose", transpose_case, [64, 512, 2048]),
    ];
    let wanted = |op: &str| ops.iter().any(|x| x == op || x == "all");
    let mut out = Vec::new();
    for (op, build, sizes) in table {
        if wanted(op) {
            let sizes = if quick { &sizes[..2] } else { &sizes[..] };
            out.extend(sizes.iter().map(|&size| OpCase { op, size, build }));
        }
    }
    out
}

fn binary(op: &'static str) -> impl Fn(u64) -> Result<Module, String> {
    move |n| {
        let (mut g, a) = Graph::new(&[&[n, 1024], &[n, 1024]]);
        let y = g.op(op, &[a[0], a[1]], &[])?;
        g.finish(y)
    }
}

fn layer_norm_case(n: u64) -> Result<Module, String> {
    let (mut g, a) = Graph::new(&[&[n, 1024]]);
    let (scale, bias) = (g.weight(&[1024]), g.weight(&[1024]));
    let y = g.op(names::LAYER_NORM, &[a[0], scale, bias], &[])?;
    g.finish(y)
}

fn bn_case(s: &[u64]) -> Result<Module, String> {
    let (mut g, a) = Graph::new(&[s]);
    let y = batch_norm(&mut g, a[0], s[1])?;
    g.finish(y)
}

fn pool_case(s: &[u64], op: &str) -> Result<Module, String> {
    let (mut g, a) = Graph::new(&[s]);
    let attrs: Vec<(&str, Attribute)> = if op == names::MAX_POOL {
        vec![("kernel_shape", ints(&[3, 3])), ("strides", ints(&[2, 2])), ("pads", ints(&[1, 1, 1, 1]))]
    } else {
        Vec::new()
    };
    let y = g.op(op, &[a[0]], &attrs)?;
    g.finish(y)
}

fn transpose_case(n: u64) -> Result<Module, String> {
    let (mut g, a) = Graph::new(&[&[n, 1024]]);
    let y = g.op(names::TRANSPOSE, &[a[0]], &[("perm", ints(&[1, 0]))])?;
    g.finish(y)
}

/// The measured ceilings, for efficiencies.
struct Ceilings {
    gflops: f64,
    bandwidth_gbs: f64,
}

impl Ceilings {
    /// Achieved over the ceiling that bounds the work.
    fn efficiency(&self, flops: u64, bytes: u64, seconds: f64) -> f64 {
        let bound = (flops as f64 / (self.gflops * 1e9)).max(bytes as f64 / (self.bandwidth_gbs * 1e9));
        if seconds > 0.0 {
            bound / seconds
        } else {
            0.0
        }
    }
}

/// The profile's metadata for this machine.
pub fn metadata(target: &str) -> Metadata {
    let mut isa_features = Vec::new();
    #[cfg(target_arch = "x86_64")]
    for (name, present) in [
        ("sse4.2", is_x86_feature_detected!("sse4.2")),
        ("avx", is_x86_feature_detected!("avx")),
        ("avx2", is_x86_feature_detected!("avx2")),
        ("fma", is_x86_feature_detected!("fma")),
        ("avx512f", is_x86_feature_detected!("avx512f")),
    ] {
        if present {
            isa_features.push(name.to_string());
        }
    }
    Metadata {
        machine: std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default(),
        cpu_model: smelt_hardware::profile::this_cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        isa_features,
        date: chrono_free_date(),
        smelt_version: env!("CARGO_PKG_VERSION").to_string(),
        target: target.to_string(),
        source: "smelt calibrate".to_string(),
        ..Metadata::default()
    }
}

/// UTC date and time in ISO 8601, from the system clock.
fn chrono_free_date() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// The kernel pattern a fused module runs as (one op or kernel), else the ops joined by `+`.
fn fused_pattern(m: &Measured) -> String {
    m.kernels.iter().map(|k| k.pattern.clone()).collect::<Vec<_>>().join("+")
}

/// A convolution layer as models commonly have it: `c_in -> c_out`, `k x k`, one stride,
/// "same" padding, on a `hw x hw` image; `group` is 1 or `c_in` (depthwise).
struct ConvLayer {
    c_in: u64,
    c_out: u64,
    hw: u64,
    k: u64,
    stride: u64,
    depthwise: bool,
}

const fn layer(c_in: u64, c_out: u64, hw: u64, k: u64, stride: u64, depthwise: bool) -> ConvLayer {
    ConvLayer { c_in, c_out, hw, k, stride, depthwise }
}

/// Layers whose kernel variant is chosen by measurement (Winograd or im2col for 3x3, the
/// depthwise vector width, an image product's packing), from ResNet, MobileNet, EfficientNet
/// and ConvNeXt stages; `quick` keeps one of each kind a stage.
fn variant_layers(quick: bool) -> Vec<ConvLayer> {
    let mut layers = vec![
        layer(64, 64, 56, 3, 1, false),
        layer(128, 128, 28, 3, 1, false),
        layer(256, 256, 14, 3, 1, false),
        layer(512, 512, 7, 3, 1, false),
        layer(32, 32, 112, 3, 1, true),
        layer(144, 144, 56, 3, 1, true),
        layer(192, 192, 28, 3, 1, true),
        layer(576, 576, 14, 3, 1, true),
        layer(96, 96, 56, 7, 1, true),
        layer(384, 384, 14, 7, 1, true),
        layer(256, 64, 56, 1, 1, false),
        layer(144, 24, 56, 1, 1, false),
        layer(384, 64, 14, 1, 1, false),
    ];
    if !quick {
        layers.extend([
            layer(960, 960, 7, 3, 1, true),
            layer(96, 96, 112, 3, 2, true),
            layer(240, 240, 28, 5, 1, true),
            layer(672, 672, 14, 5, 1, true),
            layer(192, 192, 28, 7, 1, true),
            layer(768, 768, 7, 7, 1, true),
            layer(512, 128, 28, 1, 1, false),
            layer(192, 32, 28, 1, 1, false),
            layer(96, 24, 56, 1, 1, false),
        ]);
    }
    layers
}

fn conv_layer_module(l: &ConvLayer) -> Result<Module, String> {
    let (mut g, args) = Graph::new(&[&[1, l.c_in, l.hw, l.hw]]);
    let group = if l.depthwise { l.c_in } else { 1 };
    let w = g.weight(&[l.c_out, l.c_in / group, l.k, l.k]);
    let p = (l.k / 2) as i64;
    let s = l.stride as i64;
    let y = g.op(
        names::CONV2D,
        &[args[0], w],
        &[
            ("pads", ints(&[p, p, p, p])),
            ("strides", ints(&[s, s])),
            ("group", Attribute::Int(group as i64, ElementType::I64)),
        ],
    )?;
    g.finish(y)
}

/// Compiles each of [`variant_layers`] at every thread count in `threads`: compiling a
/// convolution chooses its variants by measurement ([`smelt_runtime::variants`]).
fn choose_kernel_variants(quick: bool, threads: &[usize]) -> Result<(), String> {
    for &t in threads {
        smelt_runtime::workers::set_threads(t);
        for l in variant_layers(quick) {
            smelt_runtime::exec::Executable::compile(conv_layer_module(&l)?)?;
        }
    }
    Ok(())
}

/// Runs the calibration; `progress` hears about each step (`done`, `total`, what).
pub fn calibrate(options: &Options, progress: &mut dyn FnMut(usize, usize, &str)) -> Result<Profile, String> {
    let target = Target::load(&options.target)?;
    let roofline = Roofline { target: target.clone() };
    let fusion_model: Arc<dyn CostModel> = Arc::new(Roofline { target: target.clone() });
    let trials = options.trials();
    let fusion_cases = cases(&options.patterns, options.quick);
    let op_cases = op_cases(&options.ops, options.quick);
    let total = 3 + fusion_cases.len() + op_cases.len();
    let mut done = 0;
    let mut step = |what: &str, done: &mut usize| {
        progress(*done, total, what);
        *done += 1;
    };

    let mut profile = Profile::new();
    profile.metadata = metadata(&options.target);
    let threads = smelt_runtime::workers::threads();
    // What this calibration measures replaces earlier choices (the cache's included).
    smelt_runtime::variants::remeasure();
    step("kernel variants (Winograd or im2col, depthwise width, image packing)", &mut done);
    let cores = smelt_runtime::workers::set_threads(usize::MAX);
    let thread_counts: Vec<usize> = if cores > 1 { vec![1, cores] } else { vec![1] };
    choose_kernel_variants(options.quick, &thread_counts)?;
    smelt_runtime::workers::set_threads(1);

    step("compute peaks (FMA, micro-kernel, sgemm)", &mut done);
    let fma = bench::fma_peak(trials);
    let micro = bench::micro_kernel_gflops(trials);
    let gemm = bench::sgemm_gflops(if options.quick { 256 } else { 512 }, trials);
    step("memory bandwidth (copy, triad)", &mut done);
    let llc = target.on_chip_bytes as usize;
    let sizes: Vec<usize> = if options.quick { vec![4 * llc] } else { vec![llc / 4, llc, 4 * llc, 8 * llc] };
    let bandwidth = bench::bandwidth(&sizes, if options.quick { 3 } else { 7 });
    let past_cache: Vec<f64> =
        bandwidth.iter().filter(|b| b.bytes > llc).map(|b| b.copy_gbs.max(b.triad_gbs)).collect();
    let measured_bw = past_cache.iter().copied().fold(0.0, f64::max);
    profile.peaks = Peaks {
        theoretical_gflops: Some(target.peak_flops("f32") / 1e9 / target.compute_units as f64),
        measured_gflops: Some(micro),
        theoretical_bandwidth_gbs: Some(target.memory_bandwidth_gbs),
        measured_bandwidth_gbs: Some(measured_bw),
        ..Peaks::default()
    };
    profile.peaks.unknown.insert("sgemm_gflops".into(), gemm.into());
    if let Some(fma) = fma {
        profile.peaks.unknown.insert("fma_peak".into(), serde_json::to_value(fma).expect("serializable"));
    }
    profile.peaks.unknown.insert("threads".into(), 1.into());
    profile.peaks.unknown.insert("bandwidth_sweep".into(), serde_json::to_value(&bandwidth).expect("serializable"));
    let ceilings = Ceilings { gflops: micro, bandwidth_gbs: measured_bw };

    for case in &fusion_cases {
        let shape: Vec<String> = case.shape.iter().map(u64::to_string).collect();
        step(&format!("{} {}", case.name, shape.join("x")), &mut done);
        let module = case.module()?;
        let inputs = random_inputs(&module)?;
        let unfused = measure(module.clone(), &inputs, trials, Some(&roofline))?;
        let mut fused_module = module;
        smelt_passes::run_one(&mut fused_module, &mut Fuse::new(fusion_model.clone()))
            .map_err(|ds| format!("fusing {}: {ds:?}", case.name))?;
        let fused = measure(fused_module, &inputs, trials, Some(&roofline))?;
        record_ops(&mut profile, &unfused, &ceilings, &options.target);
        for r in fused.records(&options.target) {
            profile.record_kernel(r);
        }
        let flops: u64 = unfused.kernels.iter().map(|k| k.flops).sum();
        let (ub, fb) = (traffic(&unfused), traffic(&fused));
        let (ums, fms) = (unfused.model_ms, fused.model_ms);
        let gflops = |ms: f64| if ms > 0.0 { flops as f64 / (ms * 1e-3) / 1e9 } else { 0.0 };
        let ops: Vec<String> = unfused.kernels.iter().map(|k| k.pattern.clone()).collect();
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("seeds_pattern".to_string(), serde_json::Value::from(case.name));
        extra.insert("group".to_string(), serde_json::Value::from(case.group));
        extra.insert("unfused_spread".to_string(), unfused.spread.into());
        extra.insert("fused_spread".to_string(), fused.spread.into());
        profile.record_fusion(FusionProfile {
            fusion_pattern: fused_pattern(&fused),
            num_operators: ops.len() as u32,
            operators: ops,
            unfused_latency_ms: ums,
            unfused_gflops: gflops(ums),
            unfused_memory_bytes: ub,
            fused_latency_ms: fms,
            fused_gflops: gflops(fms),
            fused_memory_bytes: fb,
            speedup_factor: ums / fms,
            memory_reduction: if ub > 0 { 1.0 - fb as f64 / ub as f64 } else { 0.0 },
            gflops_improvement: if gflops(ums) > 0.0 { gflops(fms) / gflops(ums) - 1.0 } else { 0.0 },
            input_shape: case.shape.clone(),
            flops: Some(flops),
            extra_params: extra,
            num_trials: trials as u32,
            ..FusionProfile::default()
        });
    }
    for case in &op_cases {
        step(&format!("{} size {}", case.op, case.size), &mut done);
        let module = (case.build)(case.size).map_err(|e| format!("building {}: {e}", case.op))?;
        let inputs = random_inputs(&module)?;
        let measured = measure(module, &inputs, trials, Some(&roofline))?;
        record_ops(&mut profile, &measured, &ceilings, &options.target);
    }
    progress(total, total, "done");
    smelt_runtime::workers::set_threads(threads);
    profile.kernel_variants.insert(smelt_runtime::variants::cpu_id(), smelt_runtime::variants::remeasured());
    Ok(profile)
}

fn traffic(m: &Measured) -> u64 {
    m.kernels.iter().map(|k| k.bytes).sum()
}

/// Every op of an unfused run as an operation profile and a kernel record.
fn record_ops(profile: &mut Profile, m: &Measured, ceilings: &Ceilings, target: &str) {
    for k in &m.kernels {
        let seconds = k.measured_us * 1e-6;
        profile.record_operation(OperationProfile {
            op: k.pattern.clone(),
            signature: k.signature.clone(),
            flops: k.flops,
            bytes: k.bytes,
            latency_ms: k.measured_us / 1e3,
            achieved_gflops: if seconds > 0.0 { k.flops as f64 / seconds / 1e9 } else { 0.0 },
            efficiency: ceilings.efficiency(k.flops, k.bytes, seconds),
            trials: m.trials,
            ..OperationProfile::default()
        });
    }
    for r in m.records(target) {
        profile.record_kernel(r);
    }
}

/// The seeds' summary: per pattern, speedup, memory reduction, GFLOP/s change and a verdict.
pub fn summary(profile: &Profile) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let p = &profile.peaks;
    let (micro, sgemm) = (p.measured_gflops.unwrap_or(0.0), p.unknown.get("sgemm_gflops").and_then(|v| v.as_f64()));
    let _ = writeln!(
        out,
        "compute   {micro:.1} GFLOP/s micro-kernel (1 core), {:.1} GFLOP/s whole sgemm; nominal {:.1}",
        sgemm.unwrap_or(0.0),
        p.theoretical_gflops.unwrap_or(0.0)
    );
    let fma = p.unknown.get("fma_peak").and_then(|v| Some((v.get("gflops")?.as_f64()?, v.get("bits")?.as_u64()?)));
    if let Some((peak, bits)) = fma {
        let _ = writeln!(
            out,
            "          {peak:.1} GFLOP/s {bits}-bit FMA peak (1 core): micro-kernel {:.0}%, whole sgemm {:.0}% of it",
            100.0 * micro / peak,
            100.0 * sgemm.unwrap_or(0.0) / peak
        );
    }
    let _ = writeln!(
        out,
        "memory    {:.1} GB/s past the last-level cache; nominal {:.1}",
        p.measured_bandwidth_gbs.unwrap_or(0.0),
        p.theoretical_bandwidth_gbs.unwrap_or(0.0)
    );
    let _ = writeln!(out, "ops       {} op/shape profiles", profile.operation_profiles.len());
    for (cpu, chosen) in &profile.kernel_variants {
        let _ = writeln!(out, "\nKernel variants chosen by measurement on {cpu}:");
        let _ = writeln!(out, "{:<10} {:<44} {:<12} among", "kind", "shape", "variant");
        for (key, variant) in chosen {
            let (kind, shape) = key.split_once('/').unwrap_or((key, ""));
            let (shape, among) = shape.split_once(" among ").unwrap_or((shape, ""));
            let _ = writeln!(out, "{kind:<10} {shape:<44} {variant:<12} {among}");
        }
    }
    if !profile.fusion_profiles.is_empty() {
        let _ = writeln!(out, "\nFusion pattern performance (fused vs unfused, Smelt's JIT runtime):");
        let _ = writeln!(
            out,
            "{:<34} {:<14} {:<24} {:>8} {:>7} {:>8}  verdict",
            "pattern", "shape", "Smelt kernel", "speedup", "memory", "GFLOP/s"
        );
        for f in &profile.fusion_profiles {
            let seeds = f.extra_params.get("seeds_pattern").and_then(|v| v.as_str()).unwrap_or(&f.fusion_pattern);
            let shape: Vec<String> = f.input_shape.iter().map(u64::to_string).collect();
            let _ = writeln!(
                out,
                "{:<34} {:<14} {:<24} {:>7.2}x {:>6.1}% {:>+7.1}%  {}",
                seeds,
                shape.join("x"),
                truncate(&f.fusion_pattern, 24),
                f.speedup_factor,
                f.memory_reduction * 100.0,
                f.gflops_improvement * 100.0,
                verdict(f.speedup_factor)
            );
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "~"
    }
}

/// The seeds' verdict thresholds.
pub fn verdict(speedup: f64) -> &'static str {
    match speedup {
        s if s >= 1.5 => "strong fusion benefit",
        s if s >= 1.1 => "moderate fusion benefit",
        s if s >= 0.95 => "minimal benefit",
        _ => "fusion is slower",
    }
}
