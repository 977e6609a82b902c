//! The blocked product over one worker's rows and columns, and the macro-kernel: every
//! micro-tile of one block of panels.

use super::micro::{self, NARROW_COLS};
use super::pack::{pack_a, RightOperand};
use super::BlockFn;
use super::{Post, Prepacked, TilePost, View, DIRECT_B_MAX_ROWS, EPILOGUE_PANELS, KC, MC, MR, NC, NR, SHALLOW_MC};

/// Where row k of a B panel starts, given the panel's start: the micro-kernels read packed
/// panels ([`Stride`] `NR`) and operands read where they lie ([`Offsets`]) alike.
pub(crate) trait RowAt: Copy {
    /// # Safety
    /// `k` is a row of the panel.
    unsafe fn at(self, b: *const f32, k: usize) -> *const f32;
}

/// Row k at `b + k * stride`.
#[derive(Clone, Copy)]
pub(crate) struct Stride(pub(crate) usize);

impl RowAt for Stride {
    #[inline(always)]
    unsafe fn at(self, b: *const f32, k: usize) -> *const f32 {
        b.add(k * self.0)
    }
}

/// Row k at `b + offsets[k]`.
#[derive(Clone, Copy)]
pub(crate) struct Offsets(pub(crate) *const usize);

impl RowAt for Offsets {
    #[inline(always)]
    unsafe fn at(self, b: *const f32, k: usize) -> *const f32 {
        b.add(*self.0.add(k))
    }
}

/// Rows `m_start..m_end` (a multiple of [`MR`] from the top) and columns `n_start..n_end` of
/// the product.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_block<B: RightOperand + ?Sized>(
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
    let try_in_place = pre.b.is_none() && !pre.pack_b && m_end - m_start <= DIRECT_B_MAX_ROWS;
    for n0 in (n_start..n_end).step_by(NC) {
        let nc = NC.min(n_end - n0);
        if k == 0 {
            for r in m_start..m_end {
                let row = std::slice::from_raw_parts_mut(c.add(r * ldc + n0), nc);
                for (j, v) in row.iter_mut().enumerate() {
                    let sum = if accumulate { *v } else { 0.0 };
                    *v = if post.is_none() { sum } else { post.apply_at(sum, r, n0 + j) };
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
    pub(crate) unsafe fn store(&self, r: usize, col: usize, v: f32) {
        let d = self.c.add(r * self.ldc + col);
        let sum = if self.accumulate { *d + v } else { v };
        *d = match self.post {
            Some(post) => post.apply_at(sum, self.origin.0 + r, self.origin.1 + col),
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
pub(crate) use with_b_rows;

/// The macro-kernel matching [`micro_kernel`]: the same micro-kernel inlined into the tile
/// loops (a call per 6 x 16 tile cost a third of the time when K is 16).
pub fn macro_kernel() -> MacroKernel {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        return micro::avx512::macro_kernel;
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return micro::avx2::macro_kernel;
    }
    micro::portable::macro_kernel
}

#[inline(always)]
#[allow(clippy::type_complexity)]
pub(crate) unsafe fn tiles(
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
