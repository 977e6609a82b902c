//! Packed single-precision matrix multiplication: `C = A B` (`C += A B` with `accumulate`).
//!
//! GotoBLAS blocking: B is packed in `KC x NC` blocks of 16-column panels, A in `MC x KC` blocks
//! of 6-row panels, and a register-blocked micro-kernel, chosen at run time (`std::arch`),
//! computes tiles of one A panel by one B panel (AVX2 + FMA, or portable) or two (AVX-512), with
//! fewer rows on the product's last rows; a last panel of at most [`micro::NARROW_COLS`]
//! columns is computed column by column instead. After the last K block of an `MC x NC` block of C,
//! `epilogue(row0, rows, col0, cols)` runs on that block while it is still in cache — fused
//! bias, BatchNorm affine, residual add and activations.
//!
//! Matrices are described by element strides, so transposed operands need no copy.

//!
//! - [`pack`]: packing A and B into panels, operands packed ahead of time, reading B in place;
//! - [`post`]: what the micro-kernel applies in registers before storing (scale, bias, clamp);
//! - [`block`]: the blocked product over one worker's share, and the macro-kernel that runs
//!   a block's micro-tiles;
//! - [`micro`]: the micro-kernels, one module per ISA (`portable`, `avx2`, `avx512`).

mod block;
pub mod micro;
mod pack;
mod post;

pub use block::{macro_kernel, MacroKernel, Panels};
pub use micro::{micro_kernel, Micro, MicroKernel};
pub use pack::{Packed, RightOperand};
pub use post::{Bias, Post, Residual, TilePost};

use crate::workers::{share_start, split, threads, Shared};
use block::sgemm_block;

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
    pub(crate) fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.row_stride + c * self.col_stride]
    }
}

pub const MR: usize = 6;
pub const NR: usize = 16;
pub(crate) const KC: usize = 256;
pub(crate) const MC: usize = 72;
/// Rows per block of a product with K < 64 and over 1 MiB of C (see `sgemm_block`).
pub(crate) const SHALLOW_MC: usize = 2 * MR;
pub(crate) const NC: usize = 2048;
/// Column panels per macro-kernel call and epilogue call: a block of `MC x EPILOGUE_PANELS * NR`
/// floats (18 KiB) that the micro-kernels just wrote and L1 still holds.
pub(crate) const EPILOGUE_PANELS: usize = 4;
/// Products with at most this many rows may read B in place ([`RightOperand::in_place`])
/// rather than pack it, unless [`Prepacked::pack_b`] says otherwise. Whether that is faster
/// depends on the CPU and the shape (on Zen 2 it was, up to 128 rows; on a Xeon (model 207)
/// a 64 x 64 x 3136 product packed was 1.2x faster, the 7x7 stem read in place 1.8x), so the
/// executor measures it per convolution.
pub const DIRECT_B_MAX_ROWS: usize = 128;

/// Operands packed ahead of time, if any, and whether B must be packed even where the product
/// could read it in place.
#[derive(Clone, Copy, Default)]
pub struct Prepacked<'a> {
    pub a: Option<&'a Packed>,
    pub b: Option<&'a Packed>,
    /// Pack B block by block even when the product has few rows (a measured choice:
    /// `crate::variants`, kind `gemm-b`).
    pub pack_b: bool,
}

/// Called on each finished block of C as `(row0, rows, col0, cols)`, from any worker thread
/// (blocks never overlap).
pub type BlockFn<'a> = dyn Fn(usize, usize, usize, usize) + Sync + 'a;

/// `c[m x n]` (row stride `ldc`) = `a[m x k] b[k x n]`, or += with `accumulate`; `epilogue`
/// runs on each finished block of C. Columns (or, for a product with few columns, rows) are
/// split over [`threads`] workers in multiples of the micro-tile.
pub fn sgemm(a: &View, b: &View, c: &mut [f32], ldc: usize, accumulate: bool, epilogue: &BlockFn) {
    sgemm_prepacked(a, b, Prepacked::default(), c, ldc, accumulate, Post::NONE, epilogue)
}

/// [`sgemm`] reading packed operands where given (`a` and `b` still give the shapes), with
/// `post` applied in registers to every element before `epilogue` sees its block.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_prepacked<B: RightOperand + ?Sized>(
    a: &View,
    b: &B,
    pre: Prepacked,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    post: Post,
    epilogue: &BlockFn,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols());
    assert!(b.rows() == k && c.len() >= (m.max(1) - 1) * ldc + n, "sgemm: shapes do not agree");
    match post.bias {
        Bias::Rows(bias) => assert!(bias.len() >= m, "sgemm: a row bias shorter than the product"),
        Bias::Columns(bias) => assert!(bias.len() >= n, "sgemm: a column bias shorter than the product"),
        Bias::None => {}
    }
    let out = Shared(c.as_mut_ptr());
    let column_panels = n.div_ceil(NR);
    let workers = threads().min(column_panels.max(m.div_ceil(MR))).max(1);
    if workers == 1 || m * n * k < 1 << 16 {
        // SAFETY: c covers every (row, column) of the product (asserted above).
        unsafe { sgemm_block(a, b, pre, out.get(), ldc, accumulate, (0, m), (0, n), &post, epilogue) };
        return;
    }
    // Columns split evenly when there are panels enough for every worker several times over;
    // otherwise (a 7x7 feature map: 49 columns, 512 rows) rows split, each worker packing all of
    // B's few columns itself.
    let by_rows = column_panels < 4 * workers && m.div_ceil(MR) >= 2 * workers;
    let (extent, unit) = if by_rows { (m, MR) } else { (n, NR) };
    split(workers, &|w| {
        let (lo, hi) = (share_start(w, workers, extent, unit), share_start(w + 1, workers, extent, unit));
        if lo < hi {
            let (rows, cols) = if by_rows { ((lo, hi), (0, n)) } else { ((0, m), (lo, hi)) };
            // SAFETY: workers write disjoint blocks of c.
            unsafe { sgemm_block(a, b, pre, out.get(), ldc, accumulate, rows, cols, &post, epilogue) }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::pack::{pack_a, pack_b};
    use super::*;
    use crate::workers::set_threads;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A `rows x kc` by `kc x cols` product's operands: B row-major, A and B packed whole, and
    /// the naive product.
    fn packed_operands(rows: usize, kc: usize, cols: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let a: Vec<f32> = (0..rows * kc).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
        let b: Vec<f32> = (0..kc * cols).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
        let (av, bv) = (View::row_major(&a, rows, kc), View::row_major(&b, kc, cols));
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        pack_a(&av, 0, rows, 0, kc, &mut pa);
        pack_b(&bv, 0, kc, 0, cols, &mut pb);
        let product = naive(&av, &bv);
        (b, pa, pb, product)
    }

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
        for (m, k, n) in [(1, 1, 1), (7, 5, 17), (13, 300, 33), (72, 257, 16), (100, 3, 2100), (150, 40, 37)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
            // a also stored transposed, and with rows 3 apart more than their length (both
            // ways of packing A).
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let padded: Vec<f32> = (0..m * (k + 3))
                .map(|i| if i % (k + 3) < k { a[i / (k + 3) * k + i % (k + 3)] } else { f32::NAN })
                .collect();
            let a_views = [
                View { data: &a, rows: m, cols: k, row_stride: k, col_stride: 1 },
                View { data: &at, rows: m, cols: k, row_stride: 1, col_stride: m },
                View { data: &padded, rows: m, cols: k, row_stride: k + 3, col_stride: 1 },
            ];
            // b stored transposed: element (r, c) at c * k + r
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let b_views = [
                View { data: &b, rows: k, cols: n, row_stride: n, col_stride: 1 },
                View { data: &bt, rows: k, cols: n, row_stride: 1, col_stride: k },
            ];
            for (av, bv) in a_views.iter().flat_map(|av| b_views.iter().map(move |bv| (av, bv))) {
                let (av, bv) = (*av, *bv);
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
    /// checks the packing, tile edges, prepacked slices, B read in place and worker split for
    /// undefined behaviour.
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
            // Packed ahead, and B read in place (two whole panels, then one packed).
            for pre in [Prepacked { a: Some(&pa), b: Some(&pb), pack_b: false }, Prepacked::default()] {
                let mut c = vec![f32::NAN; m * n];
                sgemm_prepacked(&av, &bv, pre, &mut c, n, false, Post::NONE, &|_, _, _, _| {});
                assert_eq!(c, want);
            }
        }
        set_threads(1);
    }

    /// Every tile shape the macro-kernels meet (short rows, narrow and partial column panels),
    /// fresh and accumulating, under a post with a row or column bias and a clamp; the
    /// portable kernel and (where the CPU has them) the AVX2 and AVX-512 ones. Miri runs it
    /// a second time with `avx512f` enabled, as no CPU here has it.
    #[test]
    fn small_tile_edges_apply_the_post_like_the_naive_product() {
        let kc = 37;
        let mut kernels: Vec<(MacroKernel, &str)> = vec![(micro::portable::macro_kernel, "portable")];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            kernels.push((micro::avx2::macro_kernel, "avx2"));
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            kernels.push((micro::avx512::macro_kernel, "avx512f"));
        }
        // AVX-512 tiles pair whole panels: none, one pair and a remainder of every kind, two
        // pairs; whole panels are read in place too.
        let shapes =
            [(1, 1), (5, 3), (6, 16), (7, 22), (13, 49), (12, 36), (1, 40), (20, 6), (30, 33), (7, 64), (6, 48)];
        for (rows, cols) in shapes {
            let (b, pa, pb, product) = packed_operands(rows, kc, cols);
            let offsets: Vec<usize> = (0..kc).map(|k| k * cols).collect();
            let row_bias: Vec<f32> = (0..rows + 3).map(|r| r as f32 * 0.25 - 1.0).collect();
            let col_bias: Vec<f32> = (0..cols + 2).map(|c| 0.5 - c as f32 * 0.125).collect();
            // A residual (ResNet's shortcut) of C's layout with a wider row stride.
            let ld = cols + 5;
            let residual_data: Vec<f32> = (0..(rows + 3) * ld).map(|i| (i % 11) as f32 * 0.25 - 1.0).collect();
            let residual = Some(Residual { data: &residual_data, ld });
            for (bias, residual, name) in [
                (Bias::Rows(&row_bias), None, "rows"),
                (Bias::Columns(&col_bias), None, "columns"),
                (Bias::Rows(&row_bias), residual, "rows and a residual"),
                (Bias::None, residual, "a residual"),
            ] {
                let post = Post { scale: 0.75, bias, residual, lo: -1.5, hi: 2.0 };
                let mut layouts = vec![(pb.as_ptr(), NR * kc, std::ptr::null())];
                if cols % NR == 0 {
                    layouts.push((b.as_ptr(), NR, offsets.as_ptr()));
                }
                for (accumulate, &(b_data, b_panel, b_offsets)) in
                    [false, true].into_iter().flat_map(|acc| layouts.iter().map(move |l| (acc, l)))
                {
                    for &(kernel, kernel_name) in &kernels {
                        let mut c: Vec<f32> = (0..rows * cols).map(|i| (i % 3) as f32).collect();
                        let before = c.clone();
                        let block = Panels {
                            kc,
                            a: pa.as_ptr(),
                            b: b_data,
                            b_panel,
                            b_offsets,
                            rows,
                            cols,
                            c: c.as_mut_ptr(),
                            ldc: cols,
                            accumulate,
                            post: Some(&post),
                            origin: (3, 2),
                        };
                        // SAFETY: the panels were packed for this block (or B is read in place,
                        // whole panels only); c is rows x cols.
                        unsafe { kernel(&block) };
                        for (i, (&got, (&sum, &old))) in c.iter().zip(product.iter().zip(&before)).enumerate() {
                            let (r, j) = (i / cols, i % cols);
                            let total = if accumulate { sum + old } else { sum };
                            let want = post.apply_at(total, 3 + r, 2 + j);
                            assert!(
                                (got - want).abs() <= 1e-5,
                                "{kernel_name} {rows}x{cols} {name} bias, accumulate {accumulate}, in place \
                                 {}: ({r}, {j}) is {got}, want {want}",
                                !b_offsets.is_null()
                            );
                        }
                    }
                }
            }
        }
    }

    /// The micro-kernel `micro_kernel` reports (calibration times it alone) computes its
    /// whole tile from packed panels.
    #[test]
    fn small_micro_kernel_tile_is_the_naive_product() {
        let micro = micro_kernel();
        let kc = 19;
        let (rows, cols) = (micro.rows, micro.cols);
        let (_, pa, pb, product) = packed_operands(rows, kc, cols);
        let mut c = vec![0.0f32; rows * cols];
        // SAFETY: one packed A panel, cols / NR consecutive packed B panels, a rows x cols C.
        unsafe { (micro.kernel)(kc, pa.as_ptr(), pb.as_ptr(), NR, c.as_mut_ptr(), cols, false, std::ptr::null()) };
        for (i, (got, want)) in c.iter().zip(&product).enumerate() {
            assert!((got - want).abs() <= 1e-5, "{}: ({}, {}) is {got}, want {want}", micro.name, i / cols, i % cols);
        }
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
                Prepacked { a: Some(&pa), b: None, pack_b: false },
                Prepacked { a: None, b: Some(&pb), pack_b: false },
                Prepacked { a: Some(&pa), b: Some(&pb), pack_b: false },
            ] {
                let mut c = vec![0.0; m * n];
                sgemm_prepacked(&av, &bv, pre, &mut c, n, false, Post::NONE, &|_, _, _, _| {});
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
