//! Packed single-precision matrix multiplication: `C = A B` (`C += A B` with `accumulate`).
//!
//! GotoBLAS blocking: B is packed in `KC x NC` blocks of 16-column panels, A in `MC x KC` blocks
//! of 6-row panels, and a register-blocked micro-kernel, chosen at run time (`std::arch`),
//! computes tiles of one A panel by one B panel (AVX2 + FMA, or portable) or two (AVX-512), with
//! fewer rows on the product's last rows; a last panel of at most [`NARROW_COLS`] columns is
//! computed column by column instead. After the last K block of an `MC x NC` block of C,
//! `epilogue(row0, rows, col0, cols)` runs on that block while it is still in cache — fused
//! bias, BatchNorm affine, residual add and activations.
//!
//! Matrices are described by element strides, so transposed operands need no copy.

use crate::workers::{share_start, split, threads, Shared};

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
/// Rows per block of a product with K < 64 and over 1 MiB of C (see `sgemm_block`).
const SHALLOW_MC: usize = 2 * MR;
const NC: usize = 2048;
/// Column panels per macro-kernel call and epilogue call: a block of `MC x EPILOGUE_PANELS * NR`
/// floats (18 KiB) that the micro-kernels just wrote and L1 still holds.
const EPILOGUE_PANELS: usize = 4;
/// Products with at most this many rows read B in place, where it can be
/// ([`RightOperand::in_place`]), rather than packing it. From 96 to 128 rows, ResNet-18's
/// layer2 convolutions read as im2col went 68% -> 72% (1x1 stride 2) and 77% -> 80% (3x3
/// stride 2) of the FMA peak; at 512 rows, layer4's were 5% slower than packed.
const DIRECT_B_MAX_ROWS: usize = 128;

/// The right operand of a product, packed block by block as the product reaches it: a matrix
/// view, or an image read as its im2col matrix ([`crate::ops::Im2col`]) without materializing
/// it, so each worker packs exactly the columns it computes.
pub trait RightOperand: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    /// Packs rows `k0..k0+kc`, columns `n0..n0+nc` into [`NR`]-column panels, zero-padded:
    /// element (k, j) of panel p at `out[p * NR * kc + k * NR + j]`. `scratch` is the
    /// operand's to use.
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>, scratch: &mut Vec<f32>);
    /// Rows `k0..k0+kc`, columns `n0..n0+nc` where the micro-kernel can read them without
    /// packing, if the operand can lie so: column `n0 + j` of row `k0 + i` at
    /// `elements[offsets[i] + j]`. The elements may be gathered into `scratch`.
    fn in_place<'s>(
        &'s self,
        _rows: (usize, usize),
        _columns: (usize, usize),
        _scratch: &'s mut Vec<f32>,
        _offsets: &mut Vec<usize>,
    ) -> Option<&'s [f32]> {
        None
    }
}

impl RightOperand for View<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>, _scratch: &mut Vec<f32>) {
        pack_b(self, k0, kc, n0, nc, out)
    }

    /// Rows of unit column stride, unless they are a multiple of 1 KiB apart: they would share
    /// a few L1 sets (a 1024-wide B ran at 60% of its packed speed).
    fn in_place<'s>(
        &'s self,
        (k0, kc): (usize, usize),
        (n0, _): (usize, usize),
        _scratch: &'s mut Vec<f32>,
        offsets: &mut Vec<usize>,
    ) -> Option<&'s [f32]> {
        if self.col_stride != 1 || self.row_stride.is_multiple_of(256) {
            return None;
        }
        offsets.clear();
        offsets.extend((k0..k0 + kc).map(|k| k * self.row_stride + n0));
        Some(self.data)
    }
}

/// Packs `b[k0..k0+kc, n0..n0+nc]` into 16-column panels, zero-padded.
fn pack_b(b: &View, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>) {
    let panels = nc.div_ceil(NR);
    out.clear();
    out.resize(panels * NR * kc, 0.0);
    for p in 0..panels {
        let (c0, cols) = (n0 + p * NR, NR.min(nc - p * NR));
        let panel = &mut out[p * NR * kc..(p + 1) * NR * kc];
        if b.col_stride == 1 {
            for (k, row) in panel.chunks_exact_mut(NR).enumerate() {
                let start = (k0 + k) * b.row_stride + c0;
                let src = &b.data[start..start + cols];
                // Whole panels as fixed-size copies: a 64-byte move, not a memmove call.
                match (<&mut [f32; NR]>::try_from(&mut *row), <&[f32; NR]>::try_from(src)) {
                    (Ok(to), Ok(from)) => *to = *from,
                    _ => row[..cols].copy_from_slice(src),
                }
            }
        } else if b.row_stride == 1 {
            // A column-major B (attention's keys read in place as K^T): each column is a
            // contiguous run, written down the panel.
            for j in 0..cols {
                let column = &b.data[(c0 + j) * b.col_stride + k0..][..kc];
                for (k, &x) in column.iter().enumerate() {
                    panel[k * NR + j] = x;
                }
            }
        } else {
            for (k, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (j, v) in row[..cols].iter_mut().enumerate() {
                    *v = b.at(k0 + k, c0 + j);
                }
            }
        }
    }
}

/// Zeros after the last packed A panel: the column kernel loads a panel's [`MR`] values at
/// step k as one 8-lane vector, so its last load reaches this far past the panels.
const A_SLACK: usize = 8 - MR;

/// Packs `a[m0..m0+mc, k0..k0+kc]` into 6-row panels, zero-padded, then [`A_SLACK`] zeros.
fn pack_a(a: &View, m0: usize, mc: usize, k0: usize, kc: usize, out: &mut Vec<f32>) {
    let panels = mc.div_ceil(MR);
    out.clear();
    out.resize(panels * MR * kc + A_SLACK, 0.0);
    for p in 0..panels {
        let rows = MR.min(mc - p * MR);
        let panel = &mut out[p * MR * kc..(p + 1) * MR * kc];
        if a.col_stride == 1 && rows == MR {
            // Whole panels of a row-major A (attention's queries and probabilities, K = 64
            // and 128, where packing cost a fifth of the product through `at`): six row
            // slices, read together, written in order.
            let r = m0 + p * MR;
            let row = |i: usize| &a.data[(r + i) * a.row_stride + k0..][..kc];
            let rows: [&[f32]; MR] = std::array::from_fn(row);
            for (k, step) in panel.chunks_exact_mut(MR).enumerate() {
                for (slot, row) in step.iter_mut().zip(&rows) {
                    *slot = row[k];
                }
            }
            continue;
        }
        for i in 0..rows {
            let r = m0 + p * MR + i;
            for k in 0..kc {
                panel[k * MR + i] = a.at(r, k0 + k);
            }
        }
    }
}

/// What a product applies to each finished element in registers, before storing it:
/// `min(max(acc * scale + bias, lo), hi)` — a scale (attention's `1 / sqrt(d)`, gemm's alpha),
/// a bias and a ReLU / ReLU6 / clip, the usual head of a fused epilogue, which would otherwise
/// cost a pass over C in the JIT epilogue. The multiply and the add round separately, as the
/// JIT program does.
///
/// `max` and `min` follow the x86 `maxps` / `minps` operand order so that a NaN sum stays NaN,
/// as ONNX's Relu and Clip keep it.
#[derive(Clone, Copy, Debug)]
pub struct Post<'a> {
    pub scale: f32,
    pub bias: Bias<'a>,
    pub lo: f32,
    pub hi: f32,
}

/// A bias indexed by C's row (a convolution's output channel) or column (a linear layer's
/// output feature), starting at the product's first row or column.
#[derive(Clone, Copy, Debug)]
pub enum Bias<'a> {
    None,
    Rows(&'a [f32]),
    Columns(&'a [f32]),
}

impl Post<'_> {
    /// Stores the sum unchanged.
    pub const NONE: Post<'static> = Post { scale: 1.0, bias: Bias::None, lo: f32::NEG_INFINITY, hi: f32::INFINITY };

    fn is_none(&self) -> bool {
        self.scale == 1.0 && matches!(self.bias, Bias::None) && self.lo == f32::NEG_INFINITY && self.hi == f32::INFINITY
    }

    /// The bias at row `r`, column `c` of C.
    #[inline(always)]
    pub fn bias_at(&self, r: usize, c: usize) -> f32 {
        match self.bias {
            Bias::None => 0.0,
            Bias::Rows(b) => b[r],
            Bias::Columns(b) => b[c],
        }
    }

    /// The tile at (`r0`, `c0`): up to [`MR`] rows, [`NR`] columns.
    fn tile(&self, r0: usize, c0: usize, cols: usize) -> TilePost {
        let (row_bias, col_bias) = match self.bias {
            Bias::None => (std::ptr::null(), std::ptr::null()),
            Bias::Rows(b) => (b[r0..].as_ptr(), std::ptr::null()),
            Bias::Columns(b) => (std::ptr::null(), b[c0..c0 + cols].as_ptr()),
        };
        TilePost { row_bias, col_bias, scale: self.scale, lo: self.lo, hi: self.hi }
    }

    /// `v` as the micro-kernel stores it, given the bias for its row and column.
    #[inline(always)]
    pub fn apply(&self, v: f32, bias: f32) -> f32 {
        let v = v * self.scale + bias;
        let v = if self.lo > v { self.lo } else { v };
        if self.hi < v {
            self.hi
        } else {
            v
        }
    }
}

/// [`Post`] for one micro-tile: bias pointers already at the tile's first row (as many values
/// as the tile has rows) or first column (as many as it has columns), null when absent.
#[repr(C)]
pub struct TilePost {
    pub row_bias: *const f32,
    pub col_bias: *const f32,
    pub scale: f32,
    pub lo: f32,
    pub hi: f32,
}

impl TilePost {
    /// The tile's element (i, j) sum as the micro-kernel stores it.
    unsafe fn apply(&self, sum: f32, i: usize, j: usize) -> f32 {
        let bias = |ptr: *const f32, k: usize| if ptr.is_null() { 0.0 } else { *ptr.add(k) };
        let post = Post { scale: self.scale, bias: Bias::None, lo: self.lo, hi: self.hi };
        post.apply(sum, bias(self.row_bias, i) + bias(self.col_bias, j))
    }
}

/// Where row k of a B panel starts, given the panel's start: the micro-kernels read packed
/// panels ([`Stride`] `NR`) and operands read where they lie ([`Offsets`]) alike.
trait RowAt: Copy {
    /// # Safety
    /// `k` is a row of the panel.
    unsafe fn at(self, b: *const f32, k: usize) -> *const f32;
}

/// Row k at `b + k * stride`.
#[derive(Clone, Copy)]
struct Stride(usize);

impl RowAt for Stride {
    #[inline(always)]
    unsafe fn at(self, b: *const f32, k: usize) -> *const f32 {
        b.add(k * self.0)
    }
}

/// Row k at `b + offsets[k]`.
#[derive(Clone, Copy)]
struct Offsets(*const usize);

impl RowAt for Offsets {
    #[inline(always)]
    unsafe fn at(self, b: *const f32, k: usize) -> *const f32 {
        b.add(*self.0.add(k))
    }
}

/// `kc, a panel, b panels, ldb, c, ldc, accumulate, post`: B's row k is at `b + k * ldb` (`NR`
/// when packed), a tile of two panels' second panel `ldb * kc` further; `post` is null, or
/// applied to the sum before it is stored.
pub type MicroKernel = unsafe fn(usize, *const f32, *const f32, usize, *mut f32, usize, bool, *const TilePost);

/// `ROWS` x 16 tile (`ROWS` <= 6): `c[i * ldc + j] (+)= sum_k a[k * 6 + i] * b_k[j]`, B's row k
/// at `b_row.at(b, k)`. A tile on the product's last rows computes and stores only the rows it
/// has.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile_portable<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    b_row: impl RowAt,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    post: *const TilePost,
) {
    let mut acc = [[0.0f32; NR]; ROWS];
    for k in 0..kc {
        for (i, row) in acc.iter_mut().enumerate() {
            let av = *a.add(k * MR + i);
            let bk = b_row.at(b, k);
            for (j, v) in row.iter_mut().enumerate() {
                *v += av * *bk.add(j);
            }
        }
    }
    let post = post.as_ref();
    for (i, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let p = c.add(i * ldc + j);
            let sum = if accumulate { *p + v } else { *v };
            *p = post.map_or(sum, |post| post.apply(sum, i, j));
        }
    }
}

/// The AVX2 + FMA tile, inlined into its callers, which must enable `avx2` and `fma` (a
/// `target_feature` function cannot be `inline(always)`, and one call per tile cost a third
/// of a K = 16 product; with six row counts LLVM stopped inlining it on its own).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx2<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    b_row: impl RowAt,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    post: *const TilePost,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
    for k in 0..kc {
        let bk = b_row.at(b, k);
        let b0 = _mm256_loadu_ps(bk);
        let b1 = _mm256_loadu_ps(bk.add(8));
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(k * MR + i));
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
    }
    finish_avx2(&mut acc, c, ldc, accumulate, post);
}

/// Stores a tile's sums (`ROWS` rows of two 8-wide halves) to C: C's value added when
/// accumulating, the post applied when given. Callers must enable `avx2` and `fma`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn finish_avx2<const ROWS: usize>(
    acc: &mut [[std::arch::x86_64::__m256; 2]; ROWS],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    post: *const TilePost,
) {
    use std::arch::x86_64::*;
    if accumulate {
        for (i, row) in acc.iter_mut().enumerate() {
            let p = c.add(i * ldc);
            row[0] = _mm256_add_ps(row[0], _mm256_loadu_ps(p));
            row[1] = _mm256_add_ps(row[1], _mm256_loadu_ps(p.add(8)));
        }
    }
    if let Some(post) = post.as_ref() {
        // One pass per part of the post, so that the twelve sums and the part's operands fit
        // the sixteen registers (all at once, they spilled: a tenth of a K = 16 product).
        if post.scale != 1.0 {
            let scale = _mm256_set1_ps(post.scale);
            for row in acc.iter_mut() {
                row[0] = _mm256_mul_ps(row[0], scale);
                row[1] = _mm256_mul_ps(row[1], scale);
            }
        }
        if !post.col_bias.is_null() {
            let (b0, b1) = (_mm256_loadu_ps(post.col_bias), _mm256_loadu_ps(post.col_bias.add(8)));
            for row in acc.iter_mut() {
                row[0] = _mm256_add_ps(row[0], b0);
                row[1] = _mm256_add_ps(row[1], b1);
            }
        }
        if !post.row_bias.is_null() {
            for (i, row) in acc.iter_mut().enumerate() {
                let b = _mm256_broadcast_ss(&*post.row_bias.add(i));
                row[0] = _mm256_add_ps(row[0], b);
                row[1] = _mm256_add_ps(row[1], b);
            }
        }
        let (lo, hi) = (_mm256_set1_ps(post.lo), _mm256_set1_ps(post.hi));
        for row in acc.iter_mut() {
            // maxps / minps return their second operand when either is NaN: a NaN sum stays.
            row[0] = _mm256_min_ps(hi, _mm256_max_ps(lo, row[0]));
            row[1] = _mm256_min_ps(hi, _mm256_max_ps(lo, row[1]));
        }
    }
    for (i, row) in acc.iter().enumerate() {
        let p = c.add(i * ldc);
        _mm256_storeu_ps(p, row[0]);
        _mm256_storeu_ps(p.add(8), row[1]);
    }
}

/// The AVX-512 tile: `ROWS` (<= [`MR`]) rows of one A panel by two consecutive 16-wide B
/// panels (the second `b_panel` after the first), two 512-bit sums per row. Each step loads
/// two B vectors and broadcasts six A values for twelve FMAs: eight loads, where a 12 x 16
/// tile over two A panels needed thirteen, more than Skylake-X's two load ports serve in the
/// six cycles its two FMA ports take (`llvm-mca -mcpu=skylake-avx512`: 6.5 cycles a step
/// against 6.0). The sums go through [`finish_avx2`] as 256-bit halves, one panel at a time:
/// one post is one post's rounding and NaN behaviour. Callers must enable `avx512f`, `avx2`
/// and `fma`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    b_panel: usize,
    b_row: impl RowAt,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    post: *const TilePost,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
    let second = b.add(b_panel);
    for k in 0..kc {
        let b0 = _mm512_loadu_ps(b_row.at(b, k));
        let b1 = _mm512_loadu_ps(b_row.at(second, k));
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add(k * MR + i));
            row[0] = _mm512_fmadd_ps(av, b0, row[0]);
            row[1] = _mm512_fmadd_ps(av, b1, row[1]);
        }
    }
    for panel in 0..2 {
        let mut halves = [[_mm256_setzero_ps(); 2]; ROWS];
        for (half, row) in halves.iter_mut().zip(&acc) {
            let sum = row[panel];
            *half = [_mm512_castps512_ps256(sum), _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(sum)))];
        }
        // The second panel's post: its columns' biases start NR further.
        let panel_post = post.as_ref().map(|t| TilePost {
            col_bias: if t.col_bias.is_null() { t.col_bias } else { t.col_bias.add(panel * NR) },
            ..*t
        });
        let pp = panel_post.as_ref().map_or(std::ptr::null(), |t| t as *const TilePost);
        finish_avx2(&mut halves, c.add(panel * NR), ldc, accumulate, pp);
    }
}

/// Calls `$kernel::<rows>($args)` for a tile of `rows` (1..=[`MR`]) rows.
macro_rules! with_rows {
    ($rows:expr, $kernel:ident($($arg:expr),*)) => {
        match $rows {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            _ => $kernel::<MR>($($arg),*),
        }
    };
}

/// Leftover columns at most this many wide (a 7x7 map's 49th, a 14x14 map's last 4) are
/// computed with vectors along C's columns ([`columns_avx2`]) instead of a 16-wide tile
/// mostly of padding: for 49 columns a quarter of the product was padding (1280 x 320 x 49:
/// 526 -> 432 us). Near 8 leftover columns both ways measured the same.
const NARROW_COLS: usize = 6;

/// Columns `c0..c0+cols` of a [`Panels`] block, every row. Each row panel's [`MR`] values of
/// step k are one vector (the [`A_SLACK`] zeros cover its last load), multiplied by B's
/// value broadcast; four row panels and two columns at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn columns_avx2(p: &Panels, b_row: impl RowAt, c0: usize, cols: usize) {
    use std::arch::x86_64::*;
    let panels = p.rows.div_ceil(MR);
    let b = p.b.add(c0 / NR * p.b_panel + c0 % NR);
    let mut sums = [[_mm256_setzero_ps(); 2]; 4];
    let mut lanes = [0.0f32; 8];
    for first in (0..panels).step_by(4) {
        let group = (panels - first).min(4);
        let a = p.a.add(first * MR * p.kc);
        for j in (0..cols).step_by(2) {
            let (b, pair) = (b.add(j), (cols - j).min(2));
            match (group, pair) {
                (4, 2) => column_sums::<4, 2>(p.kc, a, b, b_row, &mut sums),
                (4, _) => column_sums::<4, 1>(p.kc, a, b, b_row, &mut sums),
                (3, 2) => column_sums::<3, 2>(p.kc, a, b, b_row, &mut sums),
                (3, _) => column_sums::<3, 1>(p.kc, a, b, b_row, &mut sums),
                (2, 2) => column_sums::<2, 2>(p.kc, a, b, b_row, &mut sums),
                (2, _) => column_sums::<2, 1>(p.kc, a, b, b_row, &mut sums),
                (_, 2) => column_sums::<1, 2>(p.kc, a, b, b_row, &mut sums),
                _ => column_sums::<1, 1>(p.kc, a, b, b_row, &mut sums),
            }
            for (q, panel) in sums.iter().enumerate().take(group) {
                let r0 = (first + q) * MR;
                for (jj, &v) in panel.iter().enumerate().take(pair) {
                    _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                    store_column(p, r0, c0 + j + jj, &lanes);
                }
            }
        }
    }
}

/// `sums[q][j] = sum_k a[q][k] * b[k][j]` over `P` row panels and `J` columns; inlined into
/// [`columns_avx2`], whose features it needs.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn column_sums<const P: usize, const J: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    b_row: impl RowAt,
    sums: &mut [[std::arch::x86_64::__m256; 2]; 4],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); J]; P];
    for k in 0..kc {
        let (row, mut bk) = (b_row.at(b, k), [_mm256_setzero_ps(); J]);
        for (j, v) in bk.iter_mut().enumerate() {
            *v = _mm256_broadcast_ss(&*row.add(j));
        }
        for (q, row) in acc.iter_mut().enumerate() {
            let av = _mm256_loadu_ps(a.add(q * MR * kc + k * MR));
            for (v, &bv) in row.iter_mut().zip(&bk) {
                *v = _mm256_fmadd_ps(av, bv, *v);
            }
        }
    }
    for (q, row) in acc.iter().enumerate() {
        sums[q][..J].copy_from_slice(row);
    }
}

/// The portable twin of [`columns_avx2`].
unsafe fn columns_portable(p: &Panels, b_row: impl RowAt, c0: usize, cols: usize) {
    let b = p.b.add(c0 / NR * p.b_panel + c0 % NR);
    for panel in 0..p.rows.div_ceil(MR) {
        let a = p.a.add(panel * MR * p.kc);
        for j in 0..cols {
            let mut lanes = [0.0f32; 8];
            for k in 0..p.kc {
                let bv = *b_row.at(b, k).add(j);
                for (i, v) in lanes.iter_mut().take(MR).enumerate() {
                    *v += *a.add(k * MR + i) * bv;
                }
            }
            store_column(p, panel * MR, c0 + j, &lanes);
        }
    }
}

/// Stores the sums of rows `r0..` (up to [`MR`], within the block) of column `col` of a
/// [`Panels`] block.
#[inline(always)]
unsafe fn store_column(p: &Panels, r0: usize, col: usize, lanes: &[f32; 8]) {
    for (i, &v) in lanes.iter().enumerate().take(MR.min(p.rows - r0)) {
        p.store(r0 + i, col, v);
    }
}

/// A micro-kernel and the tile it computes.
pub struct Micro {
    pub kernel: MicroKernel,
    /// Rows of its tile ([`MR`]: one packed A panel).
    pub rows: usize,
    /// Columns of its tile: its B operand is `cols / NR` consecutive packed panels.
    pub cols: usize,
    pub name: &'static str,
}

/// Defines `$name`, a [`MicroKernel`]: the tile `$tile` of [`MR`] rows as a function of its
/// own, reading packed B panels `ldb` apart; `(b_panel)` for a tile of two consecutive panels.
macro_rules! micro_kernel_fn {
    ($(#[$attr:meta])* $name:ident = $tile:ident($($two_panels:ident)?)) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
            kc: usize,
            a: *const f32,
            b: *const f32,
            ldb: usize,
            c: *mut f32,
            ldc: usize,
            accumulate: bool,
            post: *const TilePost,
        ) {
            $tile::<MR>(kc, a, b, $(micro_kernel_fn!(@$two_panels ldb, kc),)? Stride(ldb), c, ldc, accumulate, post)
        }
    };
    (@b_panel $ldb:ident, $kc:ident) => {
        $ldb * $kc
    };
}

micro_kernel_fn!(micro_portable = tile_portable());
micro_kernel_fn!(
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    micro_avx2 = tile_avx2()
);
micro_kernel_fn!(
    /// A 6 x 32 tile over two consecutive packed B panels.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    micro_avx512 = tile_avx512(b_panel)
);

/// The best micro-kernel this CPU runs.
pub fn micro_kernel() -> Micro {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        return Micro { kernel: micro_avx512, rows: MR, cols: 2 * NR, name: "avx512f 6x32" };
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return Micro { kernel: micro_avx2, rows: MR, cols: NR, name: "avx2+fma 6x16" };
    }
    Micro { kernel: micro_portable, rows: MR, cols: NR, name: "portable 6x16" }
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
    post: &Post,
    epilogue: &BlockFn,
) {
    let k = a.cols;
    let kernel = macro_kernel();
    let (mut packed_a, mut packed_b, mut pack_scratch) = (Vec::new(), Vec::new(), Vec::new());
    // What B's rows read in place borrow while a last partial panel packs through `pack_scratch`.
    let (mut gathered, mut offsets) = (Vec::new(), Vec::new());
    // A product with few rows uses each element of B only a few times, so packing B costs as
    // much as the product; the micro-kernel then reads B's whole panels where the operand
    // lays them out ([`RightOperand::in_place`]: 16 columns are two loads either way),
    // packing only a last partial panel.
    let try_in_place = pre.b.is_none() && m_end - m_start <= DIRECT_B_MAX_ROWS;
    for n0 in (n_start..n_end).step_by(NC) {
        let nc = NC.min(n_end - n0);
        if k == 0 {
            for r in m_start..m_end {
                let row = std::slice::from_raw_parts_mut(c.add(r * ldc + n0), nc);
                for (j, v) in row.iter_mut().enumerate() {
                    let sum = if accumulate { *v } else { 0.0 };
                    *v = if post.is_none() { sum } else { post.apply(sum, post.bias_at(r, n0 + j)) };
                }
            }
            epilogue(m_start, m_end - m_start, n0, nc);
            continue;
        }
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            // Columns read in place (whole panels), then the packed ones.
            let whole = if try_in_place { nc / NR * NR } else { 0 };
            let rows_in_place =
                if whole > 0 { b.in_place((k0, kc), (n0, whole), &mut gathered, &mut offsets) } else { None };
            let in_place = if rows_in_place.is_some() { whole } else { 0 };
            let pb: &[f32] = match pre.b {
                Some(p) => &p.blocks[k0 / KC][(n0 / NR) * NR * kc..],
                None => {
                    if in_place < nc {
                        b.pack(k0, kc, n0 + in_place, nc - in_place, &mut packed_b, &mut pack_scratch);
                    }
                    &packed_b
                }
            };
            let first = k0 == 0 && !accumulate;
            let last = k0 + kc == k && !post.is_none();
            // A shallow product over a large C is bound by writing C: with MC rows, each
            // block of columns writes MC rows at once, more streams than the prefetchers
            // follow, and every store waits for its line from memory. Fewer rows at a time
            // keep the streams followed (MobileNet-V2's 96 x 16 x 12544: 1.03 -> 0.64 ms).
            let shallow = kc < 64 && (m_end - m_start) * (n_end - n_start) * 4 > 1 << 20;
            let mc_step = if shallow { SHALLOW_MC } else { MC };
            for m0 in (m_start..m_end).step_by(mc_step) {
                let mc = mc_step.min(m_end - m0);
                let pa: &[f32] = match pre.a {
                    Some(p) => &p.blocks[k0 / KC][(m0 / MR) * MR * kc..],
                    None => {
                        pack_a(a, m0, mc, k0, kc, &mut packed_a);
                        &packed_a
                    }
                };
                // Up to EPILOGUE_PANELS B micro-panels at a time; each stays in L1 while the A
                // block (L2) streams past it, and the epilogue then runs on the block of C they
                // produced while L1 still holds it (run once per MC x NC block, it read C back
                // from memory when K was small: MobileNet's 1x1 products, K = 16..96).
                let mut col = 0;
                while col < nc {
                    let cols = (nc - col).min(EPILOGUE_PANELS * NR);
                    let (cols, (b, b_panel, b_offsets)) = match rows_in_place {
                        // The offsets lead from the elements' start to each row's column n0.
                        Some(elements) if col < in_place => {
                            ((in_place - col).min(cols), (elements.as_ptr().wrapping_add(col), NR, offsets.as_ptr()))
                        }
                        _ => (cols, (pb[(col - in_place) * kc..].as_ptr(), NR * kc, std::ptr::null())),
                    };
                    let block = Panels {
                        kc,
                        a: pa.as_ptr(),
                        b,
                        b_panel,
                        b_offsets,
                        rows: mc,
                        cols,
                        c: c.add(m0 * ldc + n0 + col),
                        ldc,
                        accumulate: !first,
                        post: last.then_some(post),
                        origin: (m0, n0 + col),
                    };
                    kernel(&block);
                    if k0 + kc == k {
                        epilogue(m0, mc, n0 + col, cols);
                    }
                    col += cols;
                }
            }
        }
    }
}

/// One macro-kernel call: `rows x cols` of C (at `c`, row stride `ldc`) from packed A panels
/// (`rows` deep in [`MR`]-row panels) and B panels (`cols` wide), `kc` deep; `post`
/// on the last K block. `origin` is the block's (row, column) in the whole product, where
/// the post's bias is indexed.
pub struct Panels<'a> {
    pub kc: usize,
    pub a: *const f32,
    /// B: packed panels (row k of panel p at `b + p * b_panel + k * NR`, `b_panel` being
    /// `NR * kc`), or, when `b_offsets` is not null, an operand read in place
    /// ([`RightOperand::in_place`]): row k of panel p at `b + p * b_panel + b_offsets[k]`.
    pub b: *const f32,
    pub b_panel: usize,
    pub b_offsets: *const usize,
    pub rows: usize,
    pub cols: usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub accumulate: bool,
    pub post: Option<&'a Post<'a>>,
    pub origin: (usize, usize),
}

impl Panels<'_> {
    /// Stores `v`, the sum for element (r, col) of the block, outside the micro-kernel's
    /// registers: C's value added when accumulating, the post applied if given.
    #[inline(always)]
    unsafe fn store(&self, r: usize, col: usize, v: f32) {
        let d = self.c.add(r * self.ldc + col);
        let sum = if self.accumulate { *d + v } else { v };
        *d = match self.post {
            Some(post) => post.apply(sum, post.bias_at(self.origin.0 + r, self.origin.1 + col)),
            None => sum,
        };
    }
}

/// Runs every micro-tile of a [`Panels`] block.
pub type MacroKernel = unsafe fn(&Panels);

/// Evaluates `$body` with `$b_row` the [`RowAt`] of a [`Panels`] block's B: each way of
/// finding B's rows gets its own copy of the tile loops.
macro_rules! with_b_rows {
    ($p:expr, |$b_row:ident| $body:expr) => {
        if $p.b_offsets.is_null() {
            let $b_row = Stride(NR);
            $body
        } else {
            let $b_row = Offsets($p.b_offsets);
            $body
        }
    };
}

/// The macro-kernel matching [`micro_kernel`]: the same micro-kernel inlined into the tile
/// loops (a call per 6 x 16 tile cost a third of the time when K is 16).
pub fn macro_kernel() -> MacroKernel {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        return macro_avx512;
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return macro_avx2;
    }
    macro_portable
}

/// Pairs of whole B panels as 6 x 32 tiles ([`tile_avx512`]); the columns after the last
/// pair as the AVX2 macro-kernel computes them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn macro_avx512(p: &Panels) {
    let pairs = p.cols / (2 * NR);
    with_b_rows!(p, |b_row| {
        for pair in 0..pairs {
            let (c0, b) = (2 * pair * NR, p.b.add(2 * pair * p.b_panel));
            for pi in 0..p.rows.div_ceil(MR) {
                let (r0, rows) = (pi * MR, MR.min(p.rows - pi * MR));
                let (a, c) = (p.a.add(r0 * p.kc), p.c.add(r0 * p.ldc + c0));
                let tile_post = p.post.map(|post| post.tile(p.origin.0 + r0, p.origin.1 + c0, 2 * NR));
                let tp = tile_post.as_ref().map_or(std::ptr::null(), |t| t as *const TilePost);
                with_rows!(rows, tile_avx512(p.kc, a, b, p.b_panel, b_row, c, p.ldc, p.accumulate, tp))
            }
        }
    });
    let done = 2 * pairs * NR;
    if done < p.cols {
        let rest = Panels {
            b: p.b.add(2 * pairs * p.b_panel),
            cols: p.cols - done,
            c: p.c.add(done),
            origin: (p.origin.0, p.origin.1 + done),
            ..*p
        };
        macro_avx2(&rest);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn macro_avx2(p: &Panels) {
    with_b_rows!(p, |b_row| tiles(
        p,
        |rows, kc, a, b, c, ldc, acc, post| with_rows!(rows, tile_avx2(kc, a, b, b_row, c, ldc, acc, post)),
        |p, c0, cols| columns_avx2(p, b_row, c0, cols),
    ))
}

unsafe fn macro_portable(p: &Panels) {
    with_b_rows!(p, |b_row| tiles(
        p,
        |rows, kc, a, b, c, ldc, acc, post| with_rows!(rows, tile_portable(kc, a, b, b_row, c, ldc, acc, post)),
        |p, c0, cols| columns_portable(p, b_row, c0, cols),
    ))
}

#[inline(always)]
#[allow(clippy::type_complexity)]
unsafe fn tiles(
    p: &Panels,
    micro: impl Fn(usize, usize, *const f32, *const f32, *mut f32, usize, bool, *const TilePost),
    columns: impl Fn(&Panels, usize, usize),
) {
    let (kc, ldc) = (p.kc, p.ldc);
    let mut tile = [0.0f32; MR * NR];
    for pj in 0..p.cols.div_ceil(NR) {
        let cols = NR.min(p.cols - pj * NR);
        if cols <= NARROW_COLS {
            columns(p, pj * NR, cols);
            continue;
        }
        let b = p.b.add(pj * p.b_panel);
        for pi in 0..p.rows.div_ceil(MR) {
            let rows = MR.min(p.rows - pi * MR);
            let a = p.a.add(pi * MR * kc);
            let (r0, c0) = (pi * MR, pj * NR);
            let (gr, gc) = (p.origin.0 + r0, p.origin.1 + c0);
            if cols == NR {
                let tile_post = p.post.map(|post| post.tile(gr, gc, NR));
                let tp = tile_post.as_ref().map_or(std::ptr::null(), |t| t as *const TilePost);
                micro(rows, kc, a, b, p.c.add(r0 * ldc + c0), ldc, p.accumulate, tp);
            } else {
                micro(rows, kc, a, b, tile.as_mut_ptr(), NR, false, std::ptr::null());
                for i in 0..rows {
                    for j in 0..cols {
                        p.store(r0 + i, c0 + j, tile[i * NR + j]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
            for pre in [Prepacked { a: Some(&pa), b: Some(&pb) }, Prepacked::default()] {
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
        let mut kernels: Vec<(MacroKernel, &str)> = vec![(macro_portable, "portable")];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            kernels.push((macro_avx2, "avx2"));
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            kernels.push((macro_avx512, "avx512f"));
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
            for (bias, name) in [(Bias::Rows(&row_bias), "rows"), (Bias::Columns(&col_bias), "columns")] {
                let post = Post { scale: 0.75, bias, lo: -1.5, hi: 2.0 };
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
                            let want = post.apply(total, post.bias_at(3 + r, 2 + j));
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
                Prepacked { a: Some(&pa), b: None },
                Prepacked { a: None, b: Some(&pb) },
                Prepacked { a: Some(&pa), b: Some(&pb) },
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
