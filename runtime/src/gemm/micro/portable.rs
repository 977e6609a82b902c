//! The portable micro-kernel and macro-kernel: plain Rust the compiler vectorizes as it can.

use super::{micro_kernel_fn, store_column, with_rows, MR, NR};
use crate::gemm::block::{tiles, with_b_rows, Offsets, Panels, RowAt, Stride};
use crate::gemm::post::TilePost;

/// `ROWS` x 16 tile (`ROWS` <= 6): `c[i * ldc + j] (+)= sum_k a[k * 6 + i] * b_k[j]`, B's row k
/// at `b_row.at(b, k)`. A tile on the product's last rows computes and stores only the rows it
/// has.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn tile_portable<const ROWS: usize>(
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

/// The portable twin of [`columns_avx2`].
pub(crate) unsafe fn columns_portable(p: &Panels, b_row: impl RowAt, c0: usize, cols: usize) {
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

micro_kernel_fn!(micro_kernel = tile_portable());

/// The tile loops with the portable tile inlined.
pub(crate) unsafe fn macro_kernel(p: &Panels) {
    with_b_rows!(p, |b_row| tiles(
        p,
        |rows, kc, a, b, c, ldc, acc, post| with_rows!(rows, tile_portable(kc, a, b, b_row, c, ldc, acc, post)),
        |p, c0, cols| columns_portable(p, b_row, c0, cols),
    ))
}
