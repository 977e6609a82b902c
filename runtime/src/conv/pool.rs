//! Max pooling at the CPU's full width, where it has AVX-512 (the JIT's pool programs, 4 lanes
//! and a scalar column pass, run elsewhere): each output row first takes the maximum of the
//! input rows its window covers into a padded row, 16 columns a step, then each 16 output
//! columns the maximum of their window columns in that row (loads for stride 1, gathers
//! otherwise). NaN inputs are skipped, as the reference's maximum skips them.

use super::Window;

/// Max pools planes `planes` of `x` (`h x w` each) into `y` (`ho x wo` each).
///
/// # Safety
/// `x` and `y` hold every plane of `planes` at the window's sizes; [`has_full_width_max`].
pub unsafe fn max_planes(g: &Window, x: *const f32, y: *mut f32, planes: std::ops::Range<usize>) {
    debug_assert!(has_full_width_max());
    #[cfg(target_arch = "x86_64")]
    avx512::max_planes(g, x, y, planes);
}

/// Whether [`max_planes`] has a path on this CPU.
pub fn has_full_width_max() -> bool {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        return true;
    }
    false
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Window;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn max_planes(g: &Window, x: *const f32, y: *mut f32, planes: std::ops::Range<usize>) {
        let [kh, kw] = g.kernel;
        let (sw, dw, pw) = (g.strides[1], g.dilations[1], g.pads[1]);
        // Row index = input column + left padding; outside the input it holds -inf.
        let span = ((g.wo - 1) * sw + (kw - 1) * dw + 1).max(pw + g.w);
        let mut row = vec![f32::NEG_INFINITY; span.next_multiple_of(16) + 16];
        let lowest = _mm512_set1_ps(f32::NEG_INFINITY);
        let columns = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(sw as i32),
        );
        let mask_of = |n: usize| if n >= 16 { 0xffffu16 } else { ((1u32 << n) - 1) as u16 };
        for plane in planes {
            let (xp, yp) = (x.add(plane * g.h * g.w), y.add(plane * g.ho * g.wo));
            for oy in 0..g.ho {
                let dst = row.as_mut_ptr().add(pw);
                let mut i = 0;
                while i < g.w {
                    let mask = mask_of(g.w - i);
                    let mut acc = lowest;
                    for ky in 0..kh {
                        if let Some(iy) = g.input_row(oy, ky) {
                            // max(v, acc): a NaN v leaves acc.
                            acc = _mm512_max_ps(_mm512_maskz_loadu_ps(mask, xp.add(iy * g.w + i)), acc);
                        }
                    }
                    _mm512_mask_storeu_ps(dst.add(i), mask, acc);
                    i += 16;
                }
                let mut ox = 0;
                while ox < g.wo {
                    let mask = mask_of(g.wo - ox);
                    let mut acc = lowest;
                    for kx in 0..kw {
                        let at = row.as_ptr().add(ox * sw + kx * dw);
                        let v = if sw == 1 {
                            _mm512_maskz_loadu_ps(mask, at)
                        } else {
                            _mm512_mask_i32gather_ps::<4>(lowest, mask, columns, at)
                        };
                        acc = _mm512_max_ps(v, acc);
                    }
                    _mm512_mask_storeu_ps(yp.add(oy * g.wo + ox), mask, acc);
                    ox += 16;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: the largest non-NaN value in the window, -inf when there is none.
    fn reference(g: &Window, x: &[f32]) -> Vec<f32> {
        let mut y = vec![f32::NEG_INFINITY; g.ho * g.wo];
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                for ky in 0..g.kernel[0] {
                    for kx in 0..g.kernel[1] {
                        let iy = (oy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                        let ix = (ox * g.strides[1] + kx * g.dilations[1]) as isize - g.pads[1] as isize;
                        if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                            continue;
                        }
                        let v = x[iy as usize * g.w + ix as usize];
                        if v > y[oy * g.wo + ox] {
                            y[oy * g.wo + ox] = v;
                        }
                    }
                }
            }
        }
        y
    }

    #[test]
    fn full_width_max_matches_the_definition() {
        if !has_full_width_max() {
            return;
        }
        let cases = [(112, 112, 3, 2, 1, 1), (7, 37, 2, 2, 0, 1), (9, 20, 3, 1, 1, 2), (5, 5, 5, 3, 2, 1)];
        for (h, w, k, s, p, d) in cases {
            let ho = (h + 2 * p - d * (k - 1) - 1) / s + 1;
            let wo = (w + 2 * p - d * (k - 1) - 1) / s + 1;
            let g = Window { h, w, ho, wo, kernel: [k, k], strides: [s, s], pads: [p, p], dilations: [d, d] };
            let x: Vec<f32> = (0..2 * h * w)
                .map(|i| if i % 17 == 3 { f32::NAN } else { ((i * 7919) % 1000) as f32 - 500.0 })
                .collect();
            let mut y = vec![0.0f32; 2 * ho * wo];
            unsafe { max_planes(&g, x.as_ptr(), y.as_mut_ptr(), 0..2) };
            for plane in 0..2 {
                let want = reference(&g, &x[plane * h * w..][..h * w]);
                assert_eq!(&y[plane * ho * wo..][..ho * wo], &want[..], "{h}x{w} k{k} s{s} p{p} d{d}");
            }
        }
    }
}
