//! The tile with AVX-512 VNNI: `vpdpbusd` multiplies four unsigned input bytes (one 32-bit
//! word, broadcast) by four int8 weights of each of 16 output channels and adds to i32 sums.
//! A tile's vector holds one pixel of 16 channels; NCHW wants each channel's pixels together,
//! so results are transposed in registers before they are stored (scatters cost about 10% of
//! a convolution's time).

use super::{TileOut, CHANNELS, PIXELS};
use std::arch::x86_64::*;

/// As [`super::portable::tile`].
///
/// # Safety
/// As there, on a CPU with AVX-512 F, BW and VNNI.
pub(super) unsafe fn tile(
    x: *const u8,
    pixel_step: usize,
    taps: &[usize],
    quads: usize,
    w: *const i8,
    pixels: usize,
    out: &TileOut,
) {
    macro_rules! with_pixels {
        ($($n:literal)*) => {
            match pixels {
                $($n => tile_of::<$n>(x, pixel_step, taps, quads, w, out),)*
                _ => tile_of::<PIXELS>(x, pixel_step, taps, quads, w, out),
            }
        };
    }
    with_pixels!(1 2 3 4 5 6 7 8 9 10 11)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_of<const P: usize>(
    x: *const u8,
    pixel_step: usize,
    taps: &[usize],
    quads: usize,
    w: *const i8,
    out: &TileOut,
) {
    let mut lo = [_mm512_setzero_si512(); P];
    let mut hi = [_mm512_setzero_si512(); P];
    let mut wp = w;
    for &tap in taps {
        let base = x.add(tap);
        for q in 0..quads {
            let w0 = _mm512_loadu_si512(wp as *const _);
            let w1 = _mm512_loadu_si512(wp.add(64) as *const _);
            wp = wp.add(CHANNELS * 4);
            let at = base.add(4 * q);
            for p in 0..P {
                let a = _mm512_set1_epi32((at.add(p * pixel_step) as *const i32).read_unaligned());
                lo[p] = _mm512_dpbusd_epi32(lo[p], a, w0);
                hi[p] = _mm512_dpbusd_epi32(hi[p], a, w1);
            }
        }
    }
    // Out of the registers in one unrolled pass (indexing them in the loop below would keep
    // a stack copy of every sum updated in the loop above).
    let mut sums = [0i32; PIXELS * CHANNELS];
    for p in 0..P {
        _mm512_storeu_si512(sums.as_mut_ptr().add(p * CHANNELS) as *mut _, lo[p]);
        _mm512_storeu_si512(sums.as_mut_ptr().add(p * CHANNELS + 16) as *mut _, hi[p]);
    }
    let sum = |p: usize, half: usize| _mm512_loadu_si512(sums.as_ptr().add(p * CHANNELS + 16 * half) as *const _);
    let first = |n: usize| if n >= 16 { 0xffffu16 } else { ((1u32 << n) - 1) as u16 };
    let (m0, m1) = (first(out.channels), first(out.channels.saturating_sub(16)));
    let (k0, b0) = (_mm512_maskz_loadu_ps(m0, out.scale), _mm512_maskz_loadu_ps(m0, out.offset));
    let (k1, b1) = (_mm512_maskz_loadu_ps(m1, out.scale.add(16)), _mm512_maskz_loadu_ps(m1, out.offset.add(16)));
    let grid = out.grid.unwrap_or(super::Grid { scale: 1.0, lo: f32::NEG_INFINITY, hi: f32::INFINITY });
    let (step, lowest, highest) = (_mm512_set1_ps(grid.scale), _mm512_set1_ps(grid.lo), _mm512_set1_ps(grid.hi));
    let finish = |sum: __m512i, k: __m512, b: __m512| {
        let v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), k, b);
        if out.grid.is_none() {
            return v;
        }
        let steps = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_div_ps(v, step));
        _mm512_mul_ps(_mm512_min_ps(_mm512_max_ps(steps, lowest), highest), step)
    };
    if out.channel_stride == 1 {
        // Row-major results: each pixel's channels are consecutive.
        for p in 0..P {
            let at = out.y.add(p * out.pixel_stride);
            _mm512_mask_storeu_ps(at, m0, finish(sum(p, 0), k0, b0));
            if m1 != 0 {
                _mm512_mask_storeu_ps(at.add(16), m1, finish(sum(p, 1), k1, b1));
            }
        }
        return;
    }
    // NCHW: each half's 16 channels by the tile's pixels, transposed in registers, then one
    // masked store of the pixels per channel.
    let pixels = first(P);
    for (half, mask, k, b) in [(0, m0, k0, b0), (1, m1, k1, b1)] {
        if mask == 0 {
            continue;
        }
        let mut rows = [_mm512_setzero_ps(); 16];
        for (p, row) in rows.iter_mut().enumerate().take(P) {
            *row = finish(sum(p, half), k, b);
        }
        transpose16(&mut rows);
        let y = out.y.add(16 * half * out.channel_stride);
        for (c, row) in rows.iter().enumerate().take(out.channels.saturating_sub(16 * half).min(16)) {
            _mm512_mask_storeu_ps(y.add(c * out.channel_stride), pixels, *row);
        }
    }
}

/// Transposes 16 rows of 16 lanes in place (row `i` lane `j` to row `j` lane `i`): pairs,
/// then quads within 128-bit lanes, then 128-bit lanes across registers twice.
#[inline(always)]
unsafe fn transpose16(r: &mut [__m512; 16]) {
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for i in 0..4 {
        let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
        r[4 * i] = _mm512_shuffle_ps::<0x44>(a, c);
        r[4 * i + 1] = _mm512_shuffle_ps::<0xEE>(a, c);
        r[4 * i + 2] = _mm512_shuffle_ps::<0x44>(b, d);
        r[4 * i + 3] = _mm512_shuffle_ps::<0xEE>(b, d);
    }
    for i in 0..2 {
        for j in 0..4 {
            t[8 * i + j] = _mm512_shuffle_f32x4::<0x88>(r[8 * i + j], r[8 * i + j + 4]);
            t[8 * i + j + 4] = _mm512_shuffle_f32x4::<0xDD>(r[8 * i + j], r[8 * i + j + 4]);
        }
    }
    for j in 0..8 {
        r[j] = _mm512_shuffle_f32x4::<0x88>(t[j], t[j + 8]);
        r[j + 8] = _mm512_shuffle_f32x4::<0xDD>(t[j], t[j + 8]);
    }
}

/// As [`super::portable::stage_matrix_row`], 16 elements a step.
///
/// # Safety
/// As there, on a CPU with AVX-512 F and BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn stage_matrix_row(x: *const f32, len: usize, x_scale: f32, zero: f32, staged: *mut u8) {
    let (scale, zero_v, top) = (_mm512_set1_ps(x_scale), _mm512_set1_ps(zero), _mm512_set1_ps(255.0));
    let mut i = 0;
    while i < len {
        let n = (len - i).min(16);
        let mask = if n == 16 { 0xffffu16 } else { ((1u32 << n) - 1) as u16 };
        let v = _mm512_div_ps(_mm512_maskz_loadu_ps(mask, x.add(i)), scale);
        let r = _mm512_add_ps(_mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v), zero_v);
        let b = _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(r, _mm512_setzero_ps()), top));
        _mm512_mask_cvtepi32_storeu_epi8(staged.add(i) as *mut _, mask, b);
        i += 16;
    }
}

/// As [`super::portable::stage_row`], 16 pixels of four channels a step: each pixel's four
/// bytes leave as one 32-bit word, scattered `pixel_bytes` apart.
///
/// # Safety
/// As there, on a CPU with AVX-512 F and BW.
#[target_feature(enable = "avx512f,avx512bw")]
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
    let (scale, zero_v, top) = (_mm512_set1_ps(x_scale), _mm512_set1_ps(zero), _mm512_set1_ps(255.0));
    let columns = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(step as i32),
    );
    let words = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(pixel_bytes as i32),
    );
    for q in 0..channels.div_ceil(4) {
        let mut i = 0;
        while i < width {
            let n = (width - i).min(16);
            let mask = if n == 16 { 0xffffu16 } else { ((1u32 << n) - 1) as u16 };
            let mut word = _mm512_setzero_si512();
            for j in 0..4 {
                let c = 4 * q + j;
                if c >= channels {
                    break;
                }
                let at = x.add(c * plane + i * step);
                let v = if step == 1 {
                    _mm512_maskz_loadu_ps(mask, at)
                } else {
                    _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, columns, at)
                };
                let v = _mm512_div_ps(v, scale);
                let r =
                    _mm512_add_ps(_mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v), zero_v);
                // max first: a NaN becomes 0, as the scalar conversion makes it.
                let b = _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(r, _mm512_setzero_ps()), top));
                word = _mm512_or_si512(word, _mm512_sllv_epi32(b, _mm512_set1_epi32(8 * j as i32)));
            }
            _mm512_mask_i32scatter_epi32::<1>(staged.add(i * pixel_bytes + 4 * q) as *mut i32, mask, words, word);
            i += 16;
        }
    }
}
