//! The runtime's speed: the SGEMM (micro-kernel and blocking) at 1024^3 (beside the `gemm`
//! crate's), at ResNet-18's
//! convolutions' GEMM shapes and at three MobileNet-V2 pointwise shapes, and those
//! convolutions again as the model runs them (weights packed ahead, the image read as its
//! im2col matrix), beside the core's FMA peak (throughput in elements is FLOPs, so "Gelem/s" reads GFLOP/s); every seeds fusion
//! pattern fused and unfused at the seeds' shapes; the shared CNNs end to end; and JIT compile
//! time for ResNet-18 (the target: under 300 ms). One thread, so the numbers compare
//! with `smelt calibrate` and the ONNX Runtime table in BENCHMARKS.md, except where a name says
//! 2 threads: the models again, and what a split costs the kernels between which it falls.
//! `cargo bench --bench runtime [-- FILTER]`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use smelt_compiler::onnx::{import_file, ImportOptions};
use smelt_compiler::Module;
use smelt_runtime::exec::Executable;
use smelt_runtime::gemm::{sgemm, View};
use std::path::Path;
use std::time::Duration;

fn sgemm_shapes(c: &mut Criterion) {
    smelt_runtime::workers::set_threads(1);
    let mut group = c.benchmark_group("sgemm");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    // (m, k, n): square; ResNet-18's convolutions as im2col GEMMs: its 7x7 stem, layer1's 3x3,
    // the first 3x3 of layers 2-4 (stride 2) and their 1x1 stride-2 shortcuts; MobileNet-V2's
    // 1x1 convolutions with few input channels (K = 16) or few output channels (M = 24, where
    // B is read in place rather than packed), and its last one on a 7x7 map (49 columns: the
    // last column is computed down A's panels, not as a 16-wide tile).
    let resnet18 = [
        (64, 147, 12544),
        (64, 576, 3136),
        (128, 576, 784),
        (256, 1152, 196),
        (512, 2304, 49),
        (128, 64, 784),
        (256, 128, 196),
        (512, 256, 49),
    ];
    let mobilenet_v2 = [(96, 16, 12544), (24, 144, 3136), (1280, 320, 49)];
    fma_peak(&mut group);
    for (m, k, n) in [(1024, 1024, 1024)].into_iter().chain(resnet18).chain(mobilenet_v2) {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(BenchmarkId::from_parameter(format!("{m}x{k}x{n}")), |bench| {
            bench.iter(|| {
                sgemm(&View::row_major(&a, m, k), &View::row_major(&b, k, n), &mut out, n, false, &|_, _, _, _| {})
            })
        });
        if m * k * n >= 1 << 30 {
            group.bench_function(BenchmarkId::new("gemm crate", format!("{m}x{k}x{n}")), |bench| {
                bench.iter(|| gemm_crate(m, k, n, &a, &b, &mut out))
            });
        }
    }
    group.finish();
}

/// The `gemm` crate (faer's) on the same row-major product, one thread: a Rust baseline with
/// its own packing and micro-kernels: AVX2 + FMA on stable Rust (its AVX-512 kernels sit behind
/// its `nightly` feature, whose `pulp` dependency does not build on the 2026 nightlies).
fn gemm_crate(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], out: &mut [f32]) {
    assert!(a.len() == m * k && b.len() == k * n && out.len() == m * n);
    // SAFETY: the three buffers hold row-major m x k, k x n and m x n matrices (checked above);
    // the strides say so.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// What the group's rates divide by, measured in the same run: the core's FMA peak.
fn fma_peak(group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>) {
    if let Some(fma) = smelt_runtime::microbench::FmaLoop::new() {
        group.throughput(Throughput::Elements(fma.flops as u64));
        group.bench_function(format!("FMA peak ({}-bit)", fma.bits), |bench| bench.iter(|| fma.run()));
    }
}

/// ResNet-18's convolutions that run as im2col products, as the model runs them: the weights
/// (A) packed once ahead, the image read as its im2col matrix (B) block by block. Named by
/// the product's `M x K x N`, as in the `sgemm` group, whose A is packed on every call and
/// whose B is a row-major matrix.
fn conv_products(c: &mut Criterion) {
    use smelt_runtime::conv::{Im2col, Window};
    use smelt_runtime::gemm::{sgemm_prepacked, Packed, Post, Prepacked};
    smelt_runtime::workers::set_threads(1);
    let mut group = c.benchmark_group("conv_products");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    fma_peak(&mut group);
    // (input channels, input size, kernel, stride, padding, output channels): the 7x7 stem, the
    // first 3x3 of layers 2-4 and their 1x1 shortcuts, all stride 2.
    let convolutions = [
        (3, 224, 7, 2, 3, 64),
        (64, 56, 3, 2, 1, 128),
        (128, 28, 3, 2, 1, 256),
        (256, 14, 3, 2, 1, 512),
        (64, 56, 1, 2, 0, 128),
        (128, 28, 1, 2, 0, 256),
        (256, 14, 1, 2, 0, 512),
    ];
    for (channels, size, kernel, stride, pad, m) in convolutions {
        let out = (size + 2 * pad - kernel) / stride + 1;
        let window = Window {
            h: size,
            w: size,
            ho: out,
            wo: out,
            kernel: [kernel, kernel],
            strides: [stride, stride],
            pads: [pad, pad],
            dilations: [1, 1],
        };
        let (k, n) = (channels * kernel * kernel, out * out);
        let weights: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
        let image: Vec<f32> = (0..channels * size * size).map(|i| (i % 7) as f32 * 0.1).collect();
        let a = View::row_major(&weights, m, k);
        let packed = Packed::a(&a);
        let im = Im2col { x: &image, channels, window };
        let mut c = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(BenchmarkId::from_parameter(format!("{m}x{k}x{n}")), |bench| {
            bench.iter(|| {
                let pre = Prepacked { a: Some(&packed), b: None, pack_b: false };
                sgemm_prepacked(&a, &im, pre, &mut c, n, false, Post::NONE, &|_, _, _, _| {})
            })
        });
    }
    group.finish();
}

fn run_bench(group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>, id: String, module: Module) {
    let inputs = smelt::measure::random_inputs(&module).expect("inputs");
    let mut exe = Executable::compile(module).expect("compiles");
    let encoded = exe.encode_inputs(&inputs).expect("inputs encode");
    group.bench_function(id, |bench| bench.iter(|| exe.run_encoded(&encoded).expect("runs")));
}

fn seed_patterns(c: &mut Criterion) {
    smelt_runtime::workers::set_threads(1);
    let mut group = c.benchmark_group("seed_patterns");
    group.sample_size(20).measurement_time(Duration::from_secs(2));
    for case in smelt::commands::calibrate::cases(&["all".to_string()], false) {
        let shape: Vec<String> = case.shape.iter().map(u64::to_string).collect();
        let unfused = case.module().expect("pattern builds");
        let mut fused = unfused.clone();
        smelt_passes::run_pipeline(&mut fused, "builtin.module(fuse)").expect("fuses");
        let name = format!("{}/{}", case.name, shape.join("x"));
        run_bench(&mut group, format!("{name}/unfused"), unfused);
        run_bench(&mut group, format!("{name}/fused"), fused);
    }
    group.finish();
}

fn model(file: &str) -> Option<Module> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models").join(file);
    let mut m = import_file(&path, &ImportOptions::default()).ok()?;
    smelt_passes::run_pipeline(&mut m, smelt_passes::DEFAULT_PIPELINE).ok()?;
    Some(m)
}

fn models(c: &mut Criterion) {
    let mut group = c.benchmark_group("models");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    for file in ["resnet18.onnx", "mobilenet_v2.onnx"] {
        if let Some(m) = model(file) {
            smelt_runtime::workers::set_threads(1);
            run_bench(&mut group, format!("{file}/fused"), m.clone());
            smelt_runtime::workers::set_threads(2);
            run_bench(&mut group, format!("{file}/fused/2 threads"), m);
        }
    }
    smelt_runtime::workers::set_threads(1);
    group.finish();
    let mut group = c.benchmark_group("jit_compile");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    if let Some(m) = model("resnet18.onnx") {
        group.bench_function("resnet18.onnx", |bench| bench.iter(|| Executable::compile(m.clone()).expect("compiles")));
    }
    group.finish();
}

/// A split of two 1 us shares after 50 us of work on the calling thread alone, as between two
/// kernels of a model: the split's own cost is the time above 1 us. It was ~60 us while the
/// helper parked between splits.
fn splits(c: &mut Criterion) {
    fn busy(span: Duration) {
        let start = std::time::Instant::now();
        while start.elapsed() < span {
            std::hint::spin_loop();
        }
    }
    smelt_runtime::workers::set_threads(2);
    let mut group = c.benchmark_group("split");
    group.sample_size(20).measurement_time(Duration::from_secs(2));
    group.bench_function("2 threads/after 50 us", |bench| {
        bench.iter_custom(|iters| {
            let mut split = Duration::ZERO;
            for _ in 0..iters {
                busy(Duration::from_micros(50));
                let start = std::time::Instant::now();
                smelt_runtime::workers::split(2, &|_| busy(Duration::from_micros(1)));
                split += start.elapsed();
            }
            split
        })
    });
    smelt_runtime::workers::set_threads(1);
    group.finish();
}

criterion_group!(benches, sgemm_shapes, conv_products, seed_patterns, models, splits);
criterion_main!(benches);
