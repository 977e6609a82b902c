//! AVX-512: a 6 x 32 tile of one A panel by two B panels, two 512-bit sums per row.

use super::avx2::finish_avx2;
use super::{micro_kernel_fn, with_rows, MR, NR};
use crate::gemm::block::{with_b_rows, Offsets, Panels, RowAt, Stride};
use crate::gemm::post::TilePost;

/// The AVX-512 tile: `ROWS` (<= [`MR`]) rows of one A panel by two consecutive 16-wide B
/// panels (the second `b_panel` after the first), two 512-bit sums per row. Each step loads
/// two B vectors and broadcasts six A values for twelve FMAs: eight loads, where a 12 x 16
/// tile over two A panels needed thirteen, more than Skylake-X's two load ports serve in the
/// six cycles its two FMA ports take (`llvm-mca -mcpu=skylake-avx512`: 6.5 cycles a step
/// against 6.0). The sums go through [`finish_avx2`] as 256-bit halves, one panel at a time:
/// one post is one post's rounding and NaN behaviour. Callers must enable `avx512f`, `avx2`
/// and `fma`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile_avx512<const ROWS: usize>(
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
        // The second panel's post: its columns' biases and residual start NR further.
        let panel_post = post.as_ref().map(|t| TilePost {
            col_bias: if t.col_bias.is_null() { t.col_bias } else { t.col_bias.add(panel * NR) },
            residual: if t.residual.is_null() { t.residual } else { t.residual.add(panel * NR) },
            ..*t
        });
        let pp = panel_post.as_ref().map_or(std::ptr::null(), |t| t as *const TilePost);
        finish_avx2(&mut halves, c.add(panel * NR), ldc, accumulate, pp);
    }
}

/// The tile for a last single B panel: `ROWS` (<= 2 [`MR`]) rows of two consecutive A panels
/// by one 16-wide B panel, one 512-bit sum per row. Each step loads one B vector and
/// broadcasts twelve A values for twelve FMAs: thirteen loads per six cycles, which the three
/// load ports of Golden Cove and later serve (Skylake-X's two make it 92% of the FMA rate),
/// where the AVX2 tile it replaces runs at half width. Callers must enable `avx512f`, `avx2`
/// and `fma`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile_avx512_one<const ROWS: usize>(
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
    let mut acc = [_mm512_setzero_ps(); ROWS];
    let panel = MR * kc;
    for k in 0..kc {
        let bk = _mm512_loadu_ps(b_row.at(b, k));
        for (i, sum) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add((i / MR) * panel + k * MR + i % MR));
            *sum = _mm512_fmadd_ps(av, bk, *sum);
        }
    }
    let mut halves = [[_mm256_setzero_ps(); 2]; ROWS];
    for (half, &sum) in halves.iter_mut().zip(&acc) {
        *half = [_mm512_castps512_ps256(sum), _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(sum)))];
    }
    finish_avx2(&mut halves, c, ldc, accumulate, post);
}

/// Calls `$kernel::<rows>($args)` for a tile of `rows` (1..=2 [`MR`]) rows.
macro_rules! with_rows_of_two_panels {
    ($rows:expr, $kernel:ident($($arg:expr),*)) => {
        match $rows {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            6 => $kernel::<6>($($arg),*),
            7 => $kernel::<7>($($arg),*),
            8 => $kernel::<8>($($arg),*),
            9 => $kernel::<9>($($arg),*),
            10 => $kernel::<10>($($arg),*),
            11 => $kernel::<11>($($arg),*),
            _ => $kernel::<{ 2 * MR }>($($arg),*),
        }
    };
}

micro_kernel_fn!(
    /// A 6 x 32 tile over two consecutive packed B panels.
    #[target_feature(enable = "avx512f,avx2,fma")]
    micro_kernel = tile_avx512(b_panel)
);

/// Pairs of whole B panels as 6 x 32 tiles ([`tile_avx512`]), a last whole panel as 12 x 16
/// tiles ([`tile_avx512_one`]), and the columns of a last partial panel as the AVX2
/// macro-kernel computes them.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn macro_kernel(p: &Panels) {
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
    let mut done = 2 * pairs * NR;
    if done + NR <= p.cols {
        let b = p.b.add(2 * pairs * p.b_panel);
        with_b_rows!(p, |b_row| {
            for pi in (0..p.rows.div_ceil(MR)).step_by(2) {
                let (r0, rows) = (pi * MR, (2 * MR).min(p.rows - pi * MR));
                let (a, c) = (p.a.add(r0 * p.kc), p.c.add(r0 * p.ldc + done));
                let tile_post = p.post.map(|post| post.tile(p.origin.0 + r0, p.origin.1 + done, NR));
                let tp = tile_post.as_ref().map_or(std::ptr::null(), |t| t as *const TilePost);
                with_rows_of_two_panels!(rows, tile_avx512_one(p.kc, a, b, b_row, c, p.ldc, p.accumulate, tp))
            }
        });
        done += NR;
    }
    if done < p.cols {
        let panels_done = done / NR;
        let rest = Panels {
            b: p.b.add(panels_done * p.b_panel),
            cols: p.cols - done,
            c: p.c.add(done),
            origin: (p.origin.0, p.origin.1 + done),
            ..*p
        };
        super::avx2::macro_kernel(&rest);
    }
}
