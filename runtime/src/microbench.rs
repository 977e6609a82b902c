//! Machine microbenchmarks: the compute ceiling the GEMM micro-kernel reaches and the memory
//! bandwidth past the last-level cache — the two roofline ceilings a calibration profile
//! stores — and the core's vector FMA peak that "% of peak" figures divide by. Ops and fusion patterns are measured through whole compiled modules by the driver
//! (`smelt calibrate`); this module holds what needs no compiler.

use crate::gemm::{self, View};
use std::hint::black_box;
use std::time::Instant;

/// Repeated measurements of one thing, in seconds.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Timing {
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    /// (90th - 10th percentile) / median: how much to trust the median.
    pub spread: f64,
    pub trials: u32,
}

/// Times `run` `trials` times after `warmup` untimed runs.
pub fn time(warmup: usize, trials: usize, mut run: impl FnMut()) -> Timing {
    for _ in 0..warmup {
        run();
    }
    let mut samples: Vec<f64> = (0..trials.max(1))
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let median = at(0.5);
    Timing {
        median_s: median,
        min_s: samples[0],
        max_s: samples[samples.len() - 1],
        spread: if median > 0.0 { (at(0.9) - at(0.1)) / median } else { 0.0 },
        trials: samples.len() as u32,
    }
}

/// GFLOP/s of the micro-kernel alone on cache-resident packed panels: the compute ceiling no
/// product in the runtime can pass.
pub fn micro_kernel_gflops(trials: usize) -> f64 {
    const KC: usize = 256;
    const CALLS: usize = 2000;
    let micro = gemm::micro_kernel();
    let a = vec![1.0f32; micro.rows * KC];
    let b = vec![0.5f32; KC * micro.cols];
    let mut c = vec![0.0f32; micro.rows * micro.cols];
    let t = time(2, trials, || {
        for _ in 0..CALLS {
            // SAFETY: a, b and c hold exactly the kernel's packed A panel, its cols / NR
            // consecutive KC x NR panels of B and one tile with row stride cols.
            unsafe {
                (micro.kernel)(KC, a.as_ptr(), b.as_ptr(), gemm::NR, c.as_mut_ptr(), micro.cols, true, std::ptr::null())
            };
        }
        black_box(&mut c);
    });
    (2 * micro.rows * micro.cols * KC * CALLS) as f64 / t.median_s / 1e9
}

/// The vector FMA throughput of one core: the peak that "% of peak" divides by.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FmaPeak {
    pub gflops: f64,
    /// Vector width the peak was measured at (512 with AVX-512, 256 with AVX2 + FMA).
    pub bits: u32,
}

/// Independent FMA chains, more than the FMA latency times the FMA ports of any x86 core
/// (Zen 2: 5 x 2, Skylake-X: 4 x 2), so that only the ports limit the rate.
#[cfg(target_arch = "x86_64")]
const FMA_CHAINS: usize = 12;

/// Independent vector FMAs at the widest width the CPU has: a fixed amount of work whose
/// rate is the core's FMA peak.
pub struct FmaLoop {
    /// Vector width (512 with AVX-512, 256 with AVX2 + FMA).
    pub bits: u32,
    /// Floating-point operations of one [`FmaLoop::run`].
    pub flops: usize,
    chains: unsafe fn(usize) -> f32,
}

impl FmaLoop {
    const STEPS: usize = 200_000;

    /// `None` without a vector FMA.
    pub fn new() -> Option<FmaLoop> {
        #[cfg(target_arch = "x86_64")]
        {
            let (bits, lanes, chains): (u32, usize, unsafe fn(usize) -> f32) = if is_x86_feature_detected!("avx512f") {
                (512, 16, fma_chains_avx512)
            } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                (256, 8, fma_chains_avx2)
            } else {
                return None;
            };
            Some(FmaLoop { bits, flops: 2 * lanes * FMA_CHAINS * Self::STEPS, chains })
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    pub fn run(&self) {
        // SAFETY: `new` chose `chains` for features it detected on this CPU.
        black_box(unsafe { (self.chains)(black_box(Self::STEPS)) });
    }
}

/// GFLOP/s of [`FmaLoop`] on the calling thread; `None` without a vector FMA. Measured beside
/// what it is compared with (same run, same load), never taken from a datasheet: these cores
/// boost past their nominal clock, and a VM may not get all of a core.
pub fn fma_peak(trials: usize) -> Option<FmaPeak> {
    let fma = FmaLoop::new()?;
    let t = time(2, trials, || fma.run());
    Some(FmaPeak { gflops: fma.flops as f64 / t.median_s / 1e9, bits: fma.bits })
}

/// One FMA loop per vector width: the same chains, with that width's intrinsics.
macro_rules! fma_chains {
    ($name:ident, $features:literal, $vector:ident, $set1:ident, $fmadd:ident, $lanes:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(steps: usize) -> f32 {
            use std::arch::x86_64::*;
            let (x, y) = ($set1(0.999_999), $set1(1e-7));
            let mut acc = [$set1(1.0); FMA_CHAINS];
            for _ in 0..steps {
                for a in &mut acc {
                    *a = $fmadd(*a, x, y);
                }
            }
            // Summing every lane keeps every chain live.
            // SAFETY: a vector register is its lanes' f32s, in order.
            acc.iter().map(|&a| std::mem::transmute::<$vector, [f32; $lanes]>(a).iter().sum::<f32>()).sum()
        }
    };
}

fma_chains!(fma_chains_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, 16);
fma_chains!(fma_chains_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 8);

/// GFLOP/s of a whole single-threaded `n x n x n` product (packing included).
pub fn sgemm_gflops(n: usize, trials: usize) -> f64 {
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let threads = crate::workers::threads();
    crate::workers::set_threads(1);
    let t = time(1, trials, || {
        gemm::sgemm(&View::row_major(&a, n, n), &View::row_major(&b, n, n), &mut c, n, false, &|_, _, _, _| {});
        black_box(&mut c);
    });
    crate::workers::set_threads(threads);
    (2 * n * n * n) as f64 / t.median_s / 1e9
}

/// Sustained bandwidth at one working-set size.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Bandwidth {
    /// Bytes of all arrays together.
    pub bytes: usize,
    /// `b[i] = a[i]`, counting one read and one write per element.
    pub copy_gbs: f64,
    /// `a[i] = b[i] + s * c[i]` (STREAM triad), two reads and one write.
    pub triad_gbs: f64,
}

/// STREAM-style copy and triad at each total working-set size in bytes.
pub fn bandwidth(sizes: &[usize], trials: usize) -> Vec<Bandwidth> {
    sizes
        .iter()
        .map(|&bytes| {
            let n = (bytes / 3 / 4).max(1024);
            let (mut a, b, c) = (vec![1.0f32; n], vec![2.0f32; n], vec![3.0f32; n]);
            let mut copy_to = vec![0.0f32; n];
            let copy = time(1, trials, || {
                copy_to.copy_from_slice(black_box(&a));
                black_box(&mut copy_to);
            });
            let s = black_box(0.5f32);
            let triad = time(1, trials, || {
                for ((x, y), z) in a.iter_mut().zip(&b).zip(&c) {
                    *x = y + s * z;
                }
                black_box(&mut a);
            });
            Bandwidth {
                bytes: 3 * n * 4,
                copy_gbs: (2 * n * 4) as f64 / copy.median_s / 1e9,
                triad_gbs: (3 * n * 4) as f64 / triad.median_s / 1e9,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_orders_its_statistics() {
        let mut i = 0u64;
        let t = time(1, 9, || i = black_box(i + 1));
        assert_eq!(t.trials, 9);
        assert!(t.min_s <= t.median_s && t.median_s <= t.max_s && t.spread >= 0.0);
    }

    #[test]
    fn ceilings_are_positive_and_finite() {
        assert!(micro_kernel_gflops(1).is_finite() && micro_kernel_gflops(1) > 0.0);
        assert!(sgemm_gflops(32, 1) > 0.0);
        if let Some(peak) = fma_peak(1) {
            assert!(peak.gflops.is_finite() && peak.gflops > 0.0 && peak.bits >= 256);
        }
        let bw = bandwidth(&[1 << 16], 1);
        assert!(bw[0].copy_gbs > 0.0 && bw[0].triad_gbs > 0.0 && bw[0].bytes >= 1 << 15);
    }
}
