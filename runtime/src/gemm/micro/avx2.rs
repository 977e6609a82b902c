//! AVX2 + FMA: a 6 x 16 tile of two 256-bit sums per row.

use super::{micro_kernel_fn, store_column, with_rows, MR, NR};
use crate::gemm::block::{tiles, with_b_rows, Offsets, Panels, RowAt, Stride};
use crate::gemm::post::TilePost;

/// The AVX2 + FMA tile, inlined into its callers, which must enable `avx2` and `fma` (a
/// `target_feature` function cannot be `inline(always)`, and one call per tile cost a third
/// of a K = 16 product; with six row counts LLVM stopped inlining it on its own).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile_avx2<const ROWS: usize>(
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
#[inline(always)]
pub(crate) unsafe fn finish_avx2<const ROWS: usize>(
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
        if !post.residual.is_null() {
            for (i, row) in acc.iter_mut().enumerate() {
                let r = post.residual.add(i * post.residual_ld);
                row[0] = _mm256_add_ps(row[0], _mm256_loadu_ps(r));
                row[1] = _mm256_add_ps(row[1], _mm256_loadu_ps(r.add(8)));
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

/// Columns `c0..c0+cols` of a [`Panels`] block, every row. Each row panel's [`MR`] values of
/// step k are one vector (the [`A_SLACK`] zeros cover its last load), multiplied by B's
/// value broadcast; four row panels and two columns at a time.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn columns_avx2(p: &Panels, b_row: impl RowAt, c0: usize, cols: usize) {
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

micro_kernel_fn!(
    #[target_feature(enable = "avx2,fma")]
    micro_kernel = tile_avx2()
);

#[target_feature(enable = "avx2,fma")]
/// The tile loops with the AVX2 tile inlined.
pub(crate) unsafe fn macro_kernel(p: &Panels) {
    with_b_rows!(p, |b_row| tiles(
        p,
        |rows, kc, a, b, c, ldc, acc, post| with_rows!(rows, tile_avx2(kc, a, b, b_row, c, ldc, acc, post)),
        |p, c0, cols| columns_avx2(p, b_row, c0, cols),
    ))
}
