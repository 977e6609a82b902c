//! Packed single-precision matrix multiplication: `C = A B` (`C += A B` with `accumulate`).
//!
//! GotoBLAS blocking: B is packed in `KC x NC` blocks of 16-column panels, A in `MC x KC` blocks
//! of 6-row panels, and a register-blocked micro-kernel computes 6 x 16 tiles. The micro-kernel
//! is AVX2 + FMA (`std::arch`, chosen at run time) with a portable fallback. After the last K
//! block of an `MC x NC` block of C, `epilogue(row0, rows, col0, cols)` runs on that block while
//! it is still in cache — fused bias, BatchNorm affine, residual add and activations.
//!
//! Matrices are described by element strides, so transposed operands need no copy.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A read-only matrix view: element (r, c) is at `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A dense row-major `rows x cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        View { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The shape of an operand the product reads prepacked ([`Prepacked`]): its elements are
    /// never read through this view.
    pub fn packed_elsewhere(rows: usize, cols: usize) -> View<'static> {
        View { data: &[], rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// A `rows x cols` matrix with (row, column) element strides.
    pub fn strided(
        data: &'a [f32],
        (rows, cols): (usize, usize),
        (row_stride, col_stride): (usize, usize),
    ) -> View<'a> {
        View { data, rows, cols, row_stride, col_stride }
    }

    #[inline]
    fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.row_stride + c * self.col_stride]
    }
}

pub const MR: usize = 6;
pub const NR: usize = 16;
const KC: usize = 256;
const MC: usize = 72;
const NC: usize = 2048;

/// The right operand of a product, packed block by block as the product reaches it: a matrix
/// view, or an image read as its im2col matrix ([`crate::ops::Im2col`]) without materializing
/// it, so each worker packs exactly the columns it computes.
pub trait RightOperand: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    /// Packs rows `k0..k0+kc`, columns `n0..n0+nc` into [`NR`]-column panels, zero-padded:
    /// element (k, j) of panel p at `out[p * NR * kc + k * NR + j]`.
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>);
}

impl RightOperand for View<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>) {
        pack_b(self, k0, kc, n0, nc, out)
    }
}

/// Packs `b[k0..k0+kc, n0..n0+nc]` into 16-column panels, zero-padded.
fn pack_b(b: &View, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>) {
    let panels = nc.div_ceil(NR);
    out.clear();
    out.resize(panels * NR * kc, 0.0);
    for p in 0..panels {
        let cols = NR.min(nc - p * NR);
        let panel = &mut out[p * NR * kc..(p + 1) * NR * kc];
        for k in 0..kc {
            let row = &mut panel[k * NR..k * NR + cols];
            if b.col_stride == 1 {
                let start = (k0 + k) * b.row_stride + n0 + p * NR;
                let src = &b.data[start..start + cols];
                // Whole panels as fixed-size copies: a 64-byte move, not a memmove call.
                match (<&mut [f32; NR]>::try_from(&mut *row), <&[f32; NR]>::try_from(src)) {
                    (Ok(to), Ok(from)) => *to = *from,
                    _ => row.copy_from_slice(src),
                }
            } else {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = b.at(k0 + k, n0 + p * NR + j);
                }
            }
        }
    }
}

/// Packs `a[m0..m0+mc, k0..k0+kc]` into 6-row panels, zero-padded.
fn pack_a(a: &View, m0: usize, mc: usize, k0: usize, kc: usize, out: &mut Vec<f32>) {
    let panels = mc.div_ceil(MR);
    out.clear();
    out.resize(panels * MR * kc, 0.0);
    for p in 0..panels {
        let rows = MR.min(mc - p * MR);
        let panel = &mut out[p * MR * kc..(p + 1) * MR * kc];
        for i in 0..rows {
            let r = m0 + p * MR + i;
            for k in 0..kc {
                panel[k * MR + i] = a.at(r, k0 + k);
            }
        }
    }
}

pub type MicroKernel = unsafe fn(usize, *const f32, *const f32, *mut f32, usize, bool);

/// 6 x 16 tile: `c[i * ldc + j] (+)= sum_k a[k * 6 + i] * b[k * 16 + j]`.
unsafe fn micro_portable(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
    let mut acc = [[0.0f32; NR]; MR];
    for k in 0..kc {
        for (i, row) in acc.iter_mut().enumerate() {
            let av = *a.add(k * MR + i);
            for (j, v) in row.iter_mut().enumerate() {
                *v += av * *b.add(k * NR + j);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let p = c.add(i * ldc + j);
            *p = if accumulate { *p + v } else { *v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_avx2(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for k in 0..kc {
        let b0 = _mm256_loadu_ps(b.add(k * NR));
        let b1 = _mm256_loadu_ps(b.add(k * NR + 8));
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(k * MR + i));
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        let p = c.add(i * ldc);
        let (mut r0, mut r1) = (row[0], row[1]);
        if accumulate {
            r0 = _mm256_add_ps(r0, _mm256_loadu_ps(p));
            r1 = _mm256_add_ps(r1, _mm256_loadu_ps(p.add(8)));
        }
        _mm256_storeu_ps(p, r0);
        _mm256_storeu_ps(p.add(8), r1);
    }
}

/// The best micro-kernel this CPU runs, and its name.
pub fn micro_kernel() -> (MicroKernel, &'static str) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return (micro_avx2, "avx2+fma 6x16");
    }
    (micro_portable, "portable 6x16")
}

/// An operand packed ahead of time (weights, at compile time): one packed `KC`-deep block per
/// K step, each the concatenation of every micro-panel, so any panel-aligned range is a slice.
pub struct Packed {
    blocks: Vec<Vec<f32>>,
}

impl Packed {
    /// A as the product's left operand.
    pub fn a(a: &View) -> Packed {
        let blocks = (0..a.cols)
            .step_by(KC)
            .map(|k0| {
                let mut out = Vec::new();
                pack_a(a, 0, a.rows, k0, KC.min(a.cols - k0), &mut out);
                out
            })
            .collect();
        Packed { blocks }
    }

    /// B as the product's right operand.
    pub fn b(b: &View) -> Packed {
        let blocks = (0..b.rows)
            .step_by(KC)
            .map(|k0| {
                let mut out = Vec::new();
                pack_b(b, k0, KC.min(b.rows - k0), 0, b.cols, &mut out);
                out
            })
            .collect();
        Packed { blocks }
    }
}

/// Operands packed ahead of time, if any.
#[derive(Clone, Copy, Default)]
pub struct Prepacked<'a> {
    pub a: Option<&'a Packed>,
    pub b: Option<&'a Packed>,
}

/// Called on each finished block of C as `(row0, rows, col0, cols)`, from any worker thread
/// (blocks never overlap).
pub type BlockFn<'a> = dyn Fn(usize, usize, usize, usize) + Sync + 'a;

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Worker threads products split their columns over (default 1).
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

thread_local! {
    /// Set while a thread runs one worker's share of a split: work it calls stays on it, so
    /// splits never nest (a head of attention would otherwise split its small products again).
    static IN_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Workers a split may use here: [`set_threads`]'s count, or 1 inside a worker.
pub fn threads() -> usize {
    if IN_WORKER.with(|w| w.get()) {
        1
    } else {
        THREADS.load(Ordering::Relaxed)
    }
}

/// Runs `f` as a worker: nothing it calls splits again.
fn as_worker<R>(f: impl FnOnce() -> R) -> R {
    let before = IN_WORKER.with(|w| w.replace(true));
    let result = f();
    IN_WORKER.with(|w| w.set(before));
    result
}

/// Runs `f` on `0..n` split into one contiguous range per worker ([`threads`]), when there
/// are at least `min_per_worker` items for each; on the calling thread otherwise.
pub fn parallel_ranges(n: usize, min_per_worker: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    let workers = threads().min(n / min_per_worker.max(1)).max(1);
    if workers == 1 {
        return f(0..n);
    }
    let per = n.div_ceil(workers);
    split(workers, &|w| f((w * per).min(n)..((w + 1) * per).min(n)));
}

/// Runs `task(w)` for every `w` in `0..workers` as a worker ([`as_worker`]): `0` on the calling
/// thread, the others on a pool kept between calls. A thread spawned per split cost more than
/// the split saved: on a VM an idle core wakes slowly, and ResNet-18 splits some 50 times a run.
fn split(workers: usize, task: &(dyn Fn(usize) + Sync)) {
    let pool = helpers(workers - 1);
    pool.in_place_scope(|scope| {
        for w in 1..workers {
            scope.spawn(move |_| as_worker(|| task(w)));
        }
        as_worker(|| task(0));
    });
}

/// The pool of `count` helper threads (rebuilt when the count changes).
fn helpers(count: usize) -> std::sync::Arc<rayon::ThreadPool> {
    static POOL: std::sync::Mutex<Option<(usize, std::sync::Arc<rayon::ThreadPool>)>> = std::sync::Mutex::new(None);
    let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match &*pool {
        Some((n, p)) if *n == count => p.clone(),
        _ => {
            let built = rayon::ThreadPoolBuilder::new()
                .num_threads(count)
                .thread_name(|i| format!("smelt-worker-{i}"))
                .build()
                .map(std::sync::Arc::new)
                .expect("the worker threads start");
            *pool = Some((count, built.clone()));
            built
        }
    }
}

/// A pointer workers share; they touch disjoint parts of what it points to, or only read it.
#[derive(Clone, Copy)]
pub(crate) struct Shared<T>(pub(crate) *mut T);
// SAFETY: every user splits the pointee into disjoint per-worker parts or only reads it.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Whole-struct access, so closures capture the `Send` wrapper, not the raw field.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// `c[m x n]` (row stride `ldc`) = `a[m x k] b[k x n]`, or += with `accumulate`; `epilogue`
/// runs on each finished block of C. Columns (or, for a product with few columns, rows) are
/// split over [`threads`] workers in multiples of the micro-tile.
pub fn sgemm(a: &View, b: &View, c: &mut [f32], ldc: usize, accumulate: bool, epilogue: &BlockFn) {
    sgemm_prepacked(a, b, Prepacked::default(), c, ldc, accumulate, epilogue)
}

/// [`sgemm`] reading packed operands where given (`a` and `b` still give the shapes).
pub fn sgemm_prepacked<B: RightOperand + ?Sized>(
    a: &View,
    b: &B,
    pre: Prepacked,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: &BlockFn,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols());
    assert!(b.rows() == k && c.len() >= (m.max(1) - 1) * ldc + n, "sgemm: shapes do not agree");
    let out = Shared(c.as_mut_ptr());
    let column_panels = n.div_ceil(NR);
    let workers = threads().min(column_panels.max(m.div_ceil(MR))).max(1);
    if workers == 1 || m * n * k < 1 << 16 {
        // SAFETY: c covers every (row, column) of the product (asserted above).
        unsafe { sgemm_block(a, b, pre, out.get(), ldc, accumulate, (0, m), (0, n), epilogue) };
        return;
    }
    // Columns split evenly when there are panels enough for every worker several times over;
    // otherwise (a 7x7 feature map: 49 columns, 512 rows) rows split, each worker packing all of
    // B's few columns itself.
    let by_rows = column_panels < 4 * workers && m.div_ceil(MR) >= 2 * workers;
    let (extent, unit) = if by_rows { (m, MR) } else { (n, NR) };
    let per = extent.div_ceil(unit).div_ceil(workers) * unit;
    split(workers, &|w| {
        let (lo, hi) = (w * per, ((w + 1) * per).min(extent));
        if lo < hi {
            let (rows, cols) = if by_rows { ((lo, hi), (0, n)) } else { ((0, m), (lo, hi)) };
            // SAFETY: workers write disjoint blocks of c.
            unsafe { sgemm_block(a, b, pre, out.get(), ldc, accumulate, rows, cols, epilogue) }
        }
    });
}

/// Rows `m_start..m_end` (a multiple of [`MR`] from the top) and columns `n_start..n_end` of
/// the product.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_block<B: RightOperand + ?Sized>(
    a: &View,
    b: &B,
    pre: Prepacked,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    (m_start, m_end): (usize, usize),
    (n_start, n_end): (usize, usize),
    epilogue: &BlockFn,
) {
    let k = a.cols;
    let (kernel, _) = micro_kernel();
    let mut packed_a = Vec::new();
    let mut packed_b = Vec::new();
    let mut tile = [0.0f32; MR * NR];
    for n0 in (n_start..n_end).step_by(NC) {
        let nc = NC.min(n_end - n0);
        if k == 0 {
            for r in m_start..m_end {
                if !accumulate {
                    std::slice::from_raw_parts_mut(c.add(r * ldc + n0), nc).fill(0.0);
                }
            }
            epilogue(m_start, m_end - m_start, n0, nc);
            continue;
        }
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let pb: &[f32] = match pre.b {
                Some(p) => &p.blocks[k0 / KC][(n0 / NR) * NR * kc..],
                None => {
                    b.pack(k0, kc, n0, nc, &mut packed_b);
                    &packed_b
                }
            };
            let first = k0 == 0 && !accumulate;
            for m0 in (m_start..m_end).step_by(MC) {
                let mc = MC.min(m_end - m0);
                let pa: &[f32] = match pre.a {
                    Some(p) => &p.blocks[k0 / KC][(m0 / MR) * MR * kc..],
                    None => {
                        pack_a(a, m0, mc, k0, kc, &mut packed_a);
                        &packed_a
                    }
                };
                // One B micro-panel stays in L1 while the A block (L2) streams past it.
                for pj in 0..nc.div_ceil(NR) {
                    let cols = NR.min(nc - pj * NR);
                    let bp = pb[pj * NR * kc..].as_ptr();
                    for pi in 0..mc.div_ceil(MR) {
                        let rows = MR.min(mc - pi * MR);
                        let ap = pa[pi * MR * kc..].as_ptr();
                        let (r0, c0) = (m0 + pi * MR, n0 + pj * NR);
                        if rows == MR && cols == NR {
                            kernel(kc, ap, bp, c.add(r0 * ldc + c0), ldc, !first);
                        } else {
                            kernel(kc, ap, bp, tile.as_mut_ptr(), NR, false);
                            for i in 0..rows {
                                let dst = std::slice::from_raw_parts_mut(c.add((r0 + i) * ldc + c0), cols);
                                for (j, d) in dst.iter_mut().enumerate() {
                                    *d = if first { tile[i * NR + j] } else { *d + tile[i * NR + j] };
                                }
                            }
                        }
                    }
                }
                if k0 + kc == k {
                    epilogue(m0, mc, n0, nc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &View, b: &View) -> Vec<f32> {
        let mut c = vec![0.0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0f64;
                for k in 0..a.cols {
                    s += a.at(i, k) as f64 * b.at(k, j) as f64;
                }
                c[i * b.cols + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn matches_the_naive_product_on_odd_shapes_and_transposes() {
        for (m, k, n) in [(1, 1, 1), (7, 5, 17), (13, 300, 33), (72, 257, 16), (100, 3, 2100)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
            let av = View { data: &a, rows: m, cols: k, row_stride: k, col_stride: 1 };
            // b stored transposed: element (r, c) at c * k + r
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            for bv in [
                View { data: &b, rows: k, cols: n, row_stride: n, col_stride: 1 },
                View { data: &bt, rows: k, cols: n, row_stride: 1, col_stride: k },
            ] {
                let want = naive(&av, &bv);
                let mut c = vec![f32::NAN; m * n];
                let blocks = AtomicUsize::new(0);
                sgemm(&av, &bv, &mut c, n, false, &|_, _, _, _| {
                    blocks.fetch_add(1, Ordering::Relaxed);
                });
                assert!(blocks.load(Ordering::Relaxed) > 0);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{m}x{k}x{n}: {x} vs {y}");
                }
            }
        }
    }

    /// Small enough for Miri (`cargo +nightly miri test -p smelt-runtime --lib small_`), which
    /// checks the packing, tile edges, prepacked slices and worker split for undefined behaviour.
    #[test]
    fn small_products_agree_every_way() {
        let (m, k, n) = (7, 300, 40);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 3) as f32 - 1.0).collect();
        let (av, bv) = (View::row_major(&a, m, k), View::row_major(&b, k, n));
        let want = naive(&av, &bv);
        let (pa, pb) = (Packed::a(&av), Packed::b(&bv));
        for workers in [1, 2] {
            set_threads(workers);
            let mut c = vec![f32::NAN; m * n];
            sgemm_prepacked(&av, &bv, Prepacked { a: Some(&pa), b: Some(&pb) }, &mut c, n, false, &|_, _, _, _| {});
            assert_eq!(c, want);
        }
        set_threads(1);
    }

    #[test]
    fn prepacked_operands_give_the_same_product() {
        let (m, k, n) = (50, 530, 70);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 - 8.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 - 6.0).collect();
        let (av, bv) = (View::row_major(&a, m, k), View::row_major(&b, k, n));
        let (pa, pb) = (Packed::a(&av), Packed::b(&bv));
        let mut want = vec![0.0; m * n];
        sgemm(&av, &bv, &mut want, n, false, &|_, _, _, _| {});
        for workers in [1, 2, 3] {
            set_threads(workers);
            for pre in [
                Prepacked { a: Some(&pa), b: None },
                Prepacked { a: None, b: Some(&pb) },
                Prepacked { a: Some(&pa), b: Some(&pb) },
            ] {
                let mut c = vec![0.0; m * n];
                sgemm_prepacked(&av, &bv, pre, &mut c, n, false, &|_, _, _, _| {});
                assert_eq!(c, want);
            }
        }
        set_threads(1);
    }

    #[test]
    fn the_epilogue_sees_every_element_once_after_the_product() {
        let (m, k, n) = (20, 600, 400);
        let a = vec![1.0f32; m * k];
        let b = vec![1.0f32; k * n];
        let av = View { data: &a, rows: m, cols: k, row_stride: k, col_stride: 1 };
        let bv = View { data: &b, rows: k, cols: n, row_stride: n, col_stride: 1 };
        for workers in [1, 2, 3] {
            set_threads(workers);
            let mut c = vec![0.0f32; m * n];
            let out = Shared(c.as_mut_ptr());
            sgemm(&av, &bv, &mut c, n, false, &|r0, rows, c0, cols| {
                for r in r0..r0 + rows {
                    // SAFETY: blocks are disjoint and inside c.
                    let row = unsafe { std::slice::from_raw_parts_mut(out.get().add(r * n + c0), cols) };
                    for x in row {
                        assert_eq!(*x, k as f32);
                        *x = -1.0;
                    }
                }
            });
            assert!(c.iter().all(|&x| x == -1.0), "{workers} workers");
        }
        set_threads(1);
    }
}
