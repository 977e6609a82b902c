//! The micro-kernels: a register tile of C from one packed A panel and one or two B panels,
//! one module per ISA, chosen at run time by what the CPU has.

use super::block::Panels;
use super::post::TilePost;
use super::{MR, NR};

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
pub mod portable;

/// `kc, a panel, b panels, ldb, c, ldc, accumulate, post`: B's row k is at `b + k * ldb` (`NR`
/// when packed), a tile of two panels' second panel `ldb * kc` further; `post` is null, or
/// applied to the sum before it is stored.
pub type MicroKernel = unsafe fn(usize, *const f32, *const f32, usize, *mut f32, usize, bool, *const TilePost);

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

pub(crate) use with_rows;

/// Leftover columns at most this many wide (a 7x7 map's 49th, a 14x14 map's last 4) are
/// computed with vectors along C's columns ([`columns_avx2`]) instead of a 16-wide tile
/// mostly of padding: for 49 columns a quarter of the product was padding (1280 x 320 x 49:
/// 526 -> 432 us). Near 8 leftover columns both ways measured the same.
pub(crate) const NARROW_COLS: usize = 6;

/// Stores the sums of rows `r0..` (up to [`MR`], within the block) of column `col` of a
/// [`Panels`] block.
#[inline(always)]
pub(crate) unsafe fn store_column(p: &Panels, r0: usize, col: usize, lanes: &[f32; 8]) {
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
        pub(crate) unsafe fn $name(
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

pub(crate) use micro_kernel_fn;

/// The best micro-kernel this CPU runs.
pub fn micro_kernel() -> Micro {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        return Micro { kernel: avx512::micro_kernel, rows: MR, cols: 2 * NR, name: "avx512f 6x32" };
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return Micro { kernel: avx2::micro_kernel, rows: MR, cols: NR, name: "avx2+fma 6x16" };
    }
    Micro { kernel: portable::micro_kernel, rows: MR, cols: NR, name: "portable 6x16" }
}
