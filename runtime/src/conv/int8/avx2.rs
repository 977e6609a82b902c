//! The tile with AVX2 (no VNNI): input bytes and weights widened to i16, `vpmaddwd` sums
//! pairs of products exactly into i32 (`vpmaddubsw` would saturate at 16 bits). One pixel at
//! a time: its 32 channels take eight accumulators of pair sums.

use super::{TileOut, CHANNELS};
use std::arch::x86_64::*;

/// As [`super::portable::tile`].
///
/// # Safety
/// As there, on a CPU with AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn tile(
    x: *const u8,
    pixel_step: usize,
    taps: &[usize],
    quads: usize,
    w: *const i8,
    pixels: usize,
    out: &TileOut,
) {
    for p in 0..pixels {
        let mut acc = [_mm256_setzero_si256(); 8];
        let mut wp = w;
        for &tap in taps {
            let at = x.add(tap + p * pixel_step);
            for q in 0..quads {
                let word = (at.add(4 * q) as *const i32).read_unaligned();
                // The pixel's four bytes, widened, once per group of four channels' weights.
                let a = _mm256_cvtepu8_epi16(_mm_set1_epi32(word));
                for (j, acc) in acc.iter_mut().enumerate() {
                    let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(16 * j) as *const __m128i));
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(a, wv));
                }
                wp = wp.add(CHANNELS * 4);
            }
        }
        // Accumulator j's lanes 2i and 2i + 1 are channel 4j + i's two pair sums.
        let mut parts = [0i32; 2 * CHANNELS];
        for (j, acc) in acc.iter().enumerate() {
            _mm256_storeu_si256(parts.as_mut_ptr().add(8 * j) as *mut __m256i, *acc);
        }
        for c in 0..out.channels {
            let sum = parts[2 * c] + parts[2 * c + 1];
            *out.y.add(c * out.channel_stride + p * out.pixel_stride) = out.finish(sum, c);
        }
    }
}

/// As [`super::portable::stage_row`], eight pixels of one channel a step.
///
/// # Safety
/// As there, on a CPU with AVX2.
#[target_feature(enable = "avx2")]
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
    let (scale, zero_v, top) = (_mm256_set1_ps(x_scale), _mm256_set1_ps(zero), _mm256_set1_ps(255.0));
    let mut bytes = [0i32; 8];
    for c in 0..channels {
        let row = x.add(c * plane);
        let mut i = 0;
        while step == 1 && i + 8 <= width {
            let v = _mm256_div_ps(_mm256_loadu_ps(row.add(i)), scale);
            let r = _mm256_add_ps(_mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v), zero_v);
            // max first: a NaN becomes 0, as the scalar conversion makes it.
            let b = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, _mm256_setzero_ps()), top));
            _mm256_storeu_si256(bytes.as_mut_ptr() as *mut __m256i, b);
            for (k, &q) in bytes.iter().enumerate() {
                *staged.add((i + k) * pixel_bytes + c) = q as u8;
            }
            i += 8;
        }
        for i in i..width {
            let v = *row.add(i * step);
            *staged.add(i * pixel_bytes + c) = super::portable::quantize_one(v, x_scale, zero);
        }
    }
}
