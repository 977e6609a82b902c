//! The tile on any CPU: the same sums as the vector kernels, one product at a time.

use super::{TileOut, CHANNELS};

/// Sums of `pixels` output pixels (`pixel_step` bytes apart from `x`) by one panel of packed
/// weights `w` over every tap (byte offsets `taps`) and every group of four input channels,
/// scaled and stored as `out` says.
///
/// # Safety
/// Every byte the taps, pixels and quads address lies in the staged input; `w` holds the
/// panel; `out` addresses `out.channels` channels of `pixels` floats and as many factors.
pub(super) unsafe fn tile(
    x: *const u8,
    pixel_step: usize,
    taps: &[usize],
    quads: usize,
    w: *const i8,
    pixels: usize,
    out: &TileOut,
) {
    let mut sums = [[0i32; CHANNELS]; super::PIXELS];
    let mut wp = w;
    for &tap in taps {
        for q in 0..quads {
            let weights = std::slice::from_raw_parts(wp, CHANNELS * 4);
            for (p, sums) in sums.iter_mut().enumerate().take(pixels) {
                let a = std::slice::from_raw_parts(x.add(tap + p * pixel_step + 4 * q), 4);
                for (sum, w) in sums.iter_mut().zip(weights.chunks_exact(4)) {
                    *sum += (0..4).map(|j| a[j] as i32 * w[j] as i32).sum::<i32>();
                }
            }
            wp = wp.add(CHANNELS * 4);
        }
    }
    for c in 0..out.channels {
        for (p, sums) in sums.iter().enumerate().take(pixels) {
            *out.y.add(c * out.channel_stride + p * out.pixel_stride) = out.finish(sums[c], c);
        }
    }
}

/// `v` on the unsigned 8-bit grid: QuantizeLinear's rounding (halves to even) and saturation,
/// `zero` already on the unsigned grid; NaN becomes 0.
#[inline(always)]
pub(super) fn quantize_one(v: f32, x_scale: f32, zero: f32) -> u8 {
    ((v / x_scale).round_ties_even() + zero).clamp(0.0, 255.0) as u8
}

/// Matrix row `x` (`len` floats) onto the 8-bit grid, element `i` to `staged[i]`, as
/// [`stage_row`] rounds.
///
/// # Safety
/// `x` holds `len` floats and `staged` `len` bytes.
pub(super) unsafe fn stage_matrix_row(x: *const f32, len: usize, x_scale: f32, zero: f32, staged: *mut u8) {
    for i in 0..len {
        *staged.add(i) = quantize_one(*x.add(i), x_scale, zero);
    }
}

/// Row `x` (channels `plane` floats apart, `width` pixels `step` floats apart) onto the 8-bit
/// grid: pixel `i`'s
/// channel `c` to `staged[i * pixel_bytes + c]`, as QuantizeLinear rounds (halves to even,
/// saturating), `zero` already on the unsigned grid.
///
/// # Safety
/// `x` holds `channels` rows of `(width - 1) * step + 1` floats `plane` apart; `staged` holds
/// `width` pixels.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn stage_row(
    x: *const f32,
    plane: usize,
    (width, step): (usize, usize),
    channels: usize,
    x_scale: f32,
    zero: f32,
    staged: *mut u8,
    pixel_bytes: usize,
) {
    for c in 0..channels {
        for i in 0..width {
            let v = *x.add(c * plane + i * step);
            *staged.add(i * pixel_bytes + c) = quantize_one(v, x_scale, zero);
        }
    }
}
