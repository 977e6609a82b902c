//! Winograd F(2x2, 3x3) convolution (Lavin and Gray, 2015) for 3x3, stride-1, undilated,
//! ungrouped convolutions with constant weights.
//!
//! Each 2x2 block of outputs (a *tile*) is computed from the 4x4 input patch under it as
//! `A^T [(G g G^T) . (B^T d B)] A`: the filter and patch transforms turn the 3x3 correlation
//! into 16 elementwise products, and summing those over input channels is 16 independent
//! products `M_xi = U_xi V_xi` of `[out channels x in channels] x [in channels x tiles]`, run on
//! the packed GEMM. 16 multiply-adds per tile per channel pair instead of 36: 2.25x fewer
//! FLOPs, for a transform of the input and of the output around the products.
//!
//! The filter transform happens once, at compile time (`U` packed as the GEMM's left operand).

use crate::gemm::{sgemm_prepacked, Packed, Post, Prepacked, View};
use crate::workers::{parallel_ranges, Shared};

/// `G`, `B^T` and `A^T` of F(2x2, 3x3).
const G: [[f32; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// A convolution prepared for Winograd execution.
#[derive(Clone)]
pub struct Winograd {
    cin: usize,
    cout: usize,
    /// Input plane.
    h: usize,
    w: usize,
    /// Output plane.
    ho: usize,
    wo: usize,
    /// Top and left padding.
    top: usize,
    left: usize,
    /// Tile rows and columns.
    th: usize,
    tw: usize,
    /// `U_xi = (G g G^T)_xi` per transformed position xi, `[cout x cin]`, packed.
    filters: Vec<Packed>,
}

impl Winograd {
    /// Whether a convolution of this geometry runs this way: 3x3 kernel, stride 1, no dilation,
    /// one group, and at least `MIN_TILES` tiles, below which the 16 products are too thin to
    /// beat one im2col product.
    pub fn applies(
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
        group: usize,
        out: [usize; 2],
    ) -> bool {
        kernel == [3, 3]
            && strides == [1, 1]
            && dilations == [1, 1]
            && group == 1
            && out[0].div_ceil(2) * out[1].div_ceil(2) >= MIN_TILES
    }

    /// Transforms `weights` (`[cout, cin, 3, 3]`, row-major) for an input plane `h x w` padded
    /// by `top`, `left` into an output plane `ho x wo`.
    pub fn new(
        weights: &[f32],
        (cout, cin): (usize, usize),
        (h, w): (usize, usize),
        (ho, wo): (usize, usize),
        (top, left): (usize, usize),
    ) -> Winograd {
        let mut u = vec![vec![0.0f32; cout * cin]; 16];
        for o in 0..cout {
            for c in 0..cin {
                let g = &weights[(o * cin + c) * 9..][..9];
                // Gg: 4x3, then (Gg) G^T: 4x4.
                let mut gg = [[0.0f32; 3]; 4];
                for (i, row) in gg.iter_mut().enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (0..3).map(|k| G[i][k] * g[k * 3 + j]).sum();
                    }
                }
                for i in 0..4 {
                    for j in 0..4 {
                        u[i * 4 + j][o * cin + c] = (0..3).map(|k| gg[i][k] * G[j][k]).sum();
                    }
                }
            }
        }
        let filters = u.iter().map(|m| Packed::a(&View::row_major(m, cout, cin))).collect();
        Winograd { cin, cout, h, w, ho, wo, top, left, th: ho.div_ceil(2), tw: wo.div_ceil(2), filters }
    }

    fn tiles(&self) -> usize {
        self.th * self.tw
    }

    /// Floats between consecutive transformed positions' matrices of `rows` rows: one cache
    /// line more than they hold, so the 16 streams a transform writes never sit a multiple of
    /// 4 KiB apart (ResNet's 64 x 784 would, and thrash L1's sets: 2.5x slower).
    fn stride(&self, rows: usize) -> usize {
        rows * self.tiles() + 16
    }

    /// Scratch floats [`Winograd::run`] needs: the transformed input and the products.
    pub fn scratch_len(&self) -> usize {
        16 * (self.stride(self.cin) + self.stride(self.cout))
    }

    /// One image: `x` is `[cin, h, w]`, `y` receives `post([cout, ho, wo])` (the post's bias
    /// indexed by output channel); `finish(o0, o1)` runs on output channels `o0..o1` once they
    /// are complete (the rest of the fused epilogue).
    ///
    /// # Safety
    /// `x`, `y` and `scratch` must hold the sizes above, `y` and `scratch` writable and not
    /// aliasing `x`.
    pub unsafe fn run(
        &self,
        x: *const f32,
        y: *mut f32,
        scratch: *mut f32,
        post: &Post,
        finish: &(dyn Fn(usize, usize) + Sync),
    ) {
        let simd = cfg!(target_arch = "x86_64") && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        self.run_on(x, y, scratch, post, finish, simd)
    }

    /// [`Winograd::run`] with the AVX2 transforms (`simd`, which the caller checked the CPU
    /// has) or the portable ones.
    unsafe fn run_on(
        &self,
        x: *const f32,
        y: *mut f32,
        scratch: *mut f32,
        post: &Post,
        finish: &(dyn Fn(usize, usize) + Sync),
        simd: bool,
    ) {
        let (cin, cout, t) = (self.cin, self.cout, self.tiles());
        let (vs, ms) = (self.stride(cin), self.stride(cout));
        let (v, m) = (Shared(scratch), Shared(scratch.add(16 * vs)));
        let (xs, ys) = (Shared(x as *mut f32), Shared(y));
        // V_xi[c][tile] = (B^T d B)_xi, over a zero-padded copy of each plane whose rows have
        // room for a last group of eight tiles read whole.
        parallel_ranges(cin, 4, |channels| {
            let (pitch, rows) = (2 * self.tw + 2 + 2 * GROUP, 2 * self.th + 2);
            let mut padded = vec![0.0f32; rows * pitch];
            for c in channels {
                let plane = std::slice::from_raw_parts(xs.get().add(c * self.h * self.w), self.h * self.w);
                for r in 0..rows {
                    let Some(iy) = r.checked_sub(self.top).filter(|&iy| iy < self.h) else { continue };
                    let (from, to) = (self.left.min(pitch), (self.left + self.w).min(pitch));
                    padded[r * pitch + from..r * pitch + to].copy_from_slice(&plane[iy * self.w..][..to - from]);
                }
                let out = v.get().add(c * t);
                for ty in 0..self.th {
                    let row = padded[2 * ty * pitch..].as_ptr();
                    #[cfg(target_arch = "x86_64")]
                    if simd {
                        // SAFETY: the features were checked; rows hold 2 * GROUP floats past the
                        // last tile, and stores past the channel's tiles are masked.
                        input_row_avx2(row, pitch, self.tw, out.add(ty * self.tw), vs, t - ty * self.tw);
                        continue;
                    }
                    for tx in 0..self.tw {
                        input_tile(row.add(2 * tx), pitch, out.add(ty * self.tw + tx), vs);
                    }
                }
            }
        });
        // M_xi = U_xi V_xi: 16 independent products, split over the workers whole (one split
        // instead of sixteen).
        parallel_ranges(16, 1, |positions| {
            for xi in positions {
                let vx = std::slice::from_raw_parts(v.get().add(xi * vs), cin * t);
                let mx = std::slice::from_raw_parts_mut(m.get().add(xi * ms), cout * t);
                let (a, b) = (View::packed_elsewhere(cout, cin), View::row_major(vx, cin, t));
                let pre = Prepacked { a: Some(&self.filters[xi]), b: None, pack_b: false };
                sgemm_prepacked(&a, &b, pre, mx, t, false, Post::NONE, &|_, _, _, _| {});
            }
        });
        // Y = post(A^T M A) per tile, clipped to the output plane; then the epilogue.
        parallel_ranges(cout, 4, |channels| {
            let (first, last) = (channels.start, channels.end);
            for o in channels {
                let at = m.get().add(o * t);
                let plane = ys.get().add(o * self.ho * self.wo);
                let bias = post.bias_at(o, 0);
                for ty in 0..self.th {
                    let rows = (self.ho - 2 * ty).min(2);
                    let tiles = at.add(ty * self.tw);
                    let to = plane.add(2 * ty * self.wo);
                    #[cfg(target_arch = "x86_64")]
                    if simd {
                        // SAFETY: the features were checked; reads past the row's tiles stay in
                        // the scratch (each position's matrix is followed by 16 spare floats).
                        output_row_avx2(tiles, ms, self.tw, to, self.wo, rows, post, bias);
                        continue;
                    }
                    for tx in 0..self.tw {
                        let out = output_tile(tiles.add(tx), ms);
                        for (a, row) in out.iter().enumerate().take(rows) {
                            for (b, &value) in row.iter().enumerate().take(self.wo - 2 * tx) {
                                *to.add(a * self.wo + 2 * tx + b) = post.apply(value, bias);
                            }
                        }
                    }
                }
            }
            finish(first, last);
        });
    }
}

/// Tiles the vectorized transforms handle at once.
const GROUP: usize = 8;

/// The input transform of one tile: `d` is its 4x4 patch (rows `pitch` apart); position xi's
/// value goes to `out + xi * stride`.
#[inline(always)]
unsafe fn input_tile(d: *const f32, pitch: usize, out: *mut f32, stride: usize) {
    let mut p = [[0.0f32; 4]; 4];
    for (i, row) in p.iter_mut().enumerate() {
        row.copy_from_slice(std::slice::from_raw_parts(d.add(i * pitch), 4));
    }
    // B^T d, then (B^T d) B.
    let bd = [sub(p[0], p[2]), add(p[1], p[2]), sub(p[2], p[1]), sub(p[1], p[3])];
    for (i, r) in bd.iter().enumerate() {
        *out.add(i * 4 * stride) = r[0] - r[2];
        *out.add((i * 4 + 1) * stride) = r[1] + r[2];
        *out.add((i * 4 + 2) * stride) = r[2] - r[1];
        *out.add((i * 4 + 3) * stride) = r[1] - r[3];
    }
}

/// The output transform of one tile whose position xi's product is at `s + xi * stride`.
#[inline(always)]
unsafe fn output_tile(s: *const f32, stride: usize) -> [[f32; 2]; 2] {
    let m: [[f32; 4]; 4] = std::array::from_fn(|i| std::array::from_fn(|j| *s.add((i * 4 + j) * stride)));
    // A^T m, then (A^T m) A.
    let r0 = add(add(m[0], m[1]), m[2]);
    let r1 = sub(sub(m[1], m[2]), m[3]);
    [[r0[0] + r0[1] + r0[2], r0[1] - r0[2] - r0[3]], [r1[0] + r1[1] + r1[2], r1[1] - r1[2] - r1[3]]]
}

/// [`input_tile`] for a row of `tw` tiles, eight at a time: each patch row's columns 2tx + j
/// are the even and odd elements of two loads. At most `room` tiles are stored; a group
/// running past the row writes the next row's first tiles, which that row then overwrites.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn input_row_avx2(row: *const f32, pitch: usize, tw: usize, out: *mut f32, stride: usize, room: usize) {
    use crate::conv::evens_odds;
    use std::arch::x86_64::*;
    for tx in (0..tw).step_by(GROUP) {
        let mut d = [[_mm256_setzero_ps(); 4]; 4];
        for (i, di) in d.iter_mut().enumerate() {
            let r = row.add(i * pitch + 2 * tx);
            let (e0, o0) = evens_odds(_mm256_loadu_ps(r), _mm256_loadu_ps(r.add(8)));
            let (e2, o2) = evens_odds(_mm256_loadu_ps(r.add(2)), _mm256_loadu_ps(r.add(10)));
            *di = [e0, o0, e2, o2];
        }
        let (s, a) = (_mm256_sub_ps, _mm256_add_ps);
        // B^T d, row by row.
        let row_of = |f: fn(__m256, __m256) -> __m256, x: usize, y: usize| -> [__m256; 4] {
            std::array::from_fn(|j| f(d[x][j], d[y][j]))
        };
        let bd = [row_of(s, 0, 2), row_of(a, 1, 2), row_of(s, 2, 1), row_of(s, 1, 3)];
        let lanes = (room - tx).min(GROUP);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (i, r) in bd.iter().enumerate() {
            // (B^T d) B.
            let values = [s(r[0], r[2]), a(r[1], r[2]), s(r[2], r[1]), s(r[1], r[3])];
            for (j, value) in values.into_iter().enumerate() {
                let to = out.add((i * 4 + j) * stride + tx);
                if lanes == GROUP {
                    _mm256_storeu_ps(to, value);
                } else {
                    _mm256_maskstore_ps(to, mask, value);
                }
            }
        }
    }
}

/// [`output_tile`] for a row of `tw` tiles, eight at a time, with the post applied; writes
/// `rows` (1 or 2) output rows `wo` wide at `to`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_row_avx2(
    tiles: *const f32,
    stride: usize,
    tw: usize,
    to: *mut f32,
    wo: usize,
    rows: usize,
    post: &Post,
    bias: f32,
) {
    use std::arch::x86_64::*;
    let (lo, hi, b) = (_mm256_set1_ps(post.lo), _mm256_set1_ps(post.hi), _mm256_set1_ps(bias));
    let finish = |v: __m256| _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(v, b)));
    let (s, a) = (_mm256_sub_ps, _mm256_add_ps);
    for tx in (0..tw).step_by(GROUP) {
        let m: [[__m256; 4]; 4] =
            std::array::from_fn(|i| std::array::from_fn(|j| _mm256_loadu_ps(tiles.add((i * 4 + j) * stride + tx))));
        let r0: [__m256; 4] = std::array::from_fn(|j| a(a(m[0][j], m[1][j]), m[2][j]));
        let r1: [__m256; 4] = std::array::from_fn(|j| s(s(m[1][j], m[2][j]), m[3][j]));
        for (row, r) in [r0, r1].iter().enumerate().take(rows) {
            let left = finish(a(a(r[0], r[1]), r[2]));
            let right = finish(s(s(r[1], r[2]), r[3]));
            // Tile lanes to output columns: left0 right0 left1 right1 ...
            let (l, h) = (_mm256_unpacklo_ps(left, right), _mm256_unpackhi_ps(left, right));
            let (first, second) = (_mm256_permute2f128_ps::<0x20>(l, h), _mm256_permute2f128_ps::<0x31>(l, h));
            let dst = to.add(row * wo + 2 * tx);
            let columns = wo - 2 * tx;
            if columns >= 2 * GROUP {
                _mm256_storeu_ps(dst, first);
                _mm256_storeu_ps(dst.add(GROUP), second);
            } else {
                let mut buffer = [0.0f32; 2 * GROUP];
                _mm256_storeu_ps(buffer.as_mut_ptr(), first);
                _mm256_storeu_ps(buffer.as_mut_ptr().add(GROUP), second);
                std::ptr::copy_nonoverlapping(buffer.as_ptr(), dst, columns);
            }
        }
    }
}

/// Below this many tiles the 16 thin products lose to one im2col product (measured on
/// ResNet-18's 7x7 maps: 16 tiles).
pub const MIN_TILES: usize = 16;

#[inline(always)]
fn add(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
}

#[inline(always)]
fn sub(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the direct correlation, odd sizes and asymmetric padding included; small enough
    /// for Miri.
    #[test]
    fn small_winograd_matches_the_direct_convolution() {
        for (cin, cout, h, w, (top, left), (ho, wo)) in [
            (2, 3, 5, 6, (1, 1), (5, 6)),
            (3, 2, 7, 4, (0, 2), (5, 5)),
            (1, 1, 3, 3, (0, 0), (1, 1)),
            (2, 2, 9, 37, (1, 1), (9, 37)),
        ] {
            let x: Vec<f32> = (0..cin * h * w).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let g: Vec<f32> = (0..cout * cin * 9).map(|i| ((i * 5) % 11) as f32 * 0.25 - 1.0).collect();
            let wino = Winograd::new(&g, (cout, cin), (h, w), (ho, wo), (top, left));
            let mut y = vec![f32::NAN; cout * ho * wo];
            let mut portable = vec![f32::NAN; cout * ho * wo];
            let mut scratch = vec![f32::NAN; wino.scratch_len()];
            let finished = std::sync::Mutex::new(Vec::new());
            unsafe {
                wino.run(x.as_ptr(), y.as_mut_ptr(), scratch.as_mut_ptr(), &Post::NONE, &|a, b| {
                    finished.lock().unwrap().push((a, b))
                });
                wino.run_on(x.as_ptr(), portable.as_mut_ptr(), scratch.as_mut_ptr(), &Post::NONE, &|_, _| {}, false);
            }
            assert_eq!(y, portable, "the vector and portable transforms agree");
            let mut covered: Vec<usize> = finished.into_inner().unwrap().iter().flat_map(|&(a, b)| a..b).collect();
            covered.sort();
            assert_eq!(covered, (0..cout).collect::<Vec<_>>());
            for o in 0..cout {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut want = 0.0f32;
                        for c in 0..cin {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) =
                                        ((oy + ky) as isize - top as isize, (ox + kx) as isize - left as isize);
                                    if iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize {
                                        want += x[(c * h + iy as usize) * w + ix as usize]
                                            * g[((o * cin + c) * 3 + ky) * 3 + kx];
                                    }
                                }
                            }
                        }
                        let got = y[(o * ho + oy) * wo + ox];
                        assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "{o},{oy},{ox}: {got} vs {want}");
                    }
                }
            }
        }
    }
}
