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

use crate::gemm::{parallel_ranges, sgemm_prepacked, Packed, Post, Prepacked, Shared, View};

/// `G`, `B^T` and `A^T` of F(2x2, 3x3).
const G: [[f32; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// A convolution prepared for Winograd execution.
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

    /// One image: `x` is `[cin, h, w]`, `y` receives `[cout, ho, wo]`; `finish(o0, o1)` runs on
    /// output channels `o0..o1` once they are complete (the fused epilogue).
    ///
    /// # Safety
    /// `x`, `y` and `scratch` must hold the sizes above, `y` and `scratch` writable and not
    /// aliasing `x`.
    pub unsafe fn run(&self, x: *const f32, y: *mut f32, scratch: *mut f32, finish: &(dyn Fn(usize, usize) + Sync)) {
        let (cin, cout, t) = (self.cin, self.cout, self.tiles());
        let (vs, ms) = (self.stride(cin), self.stride(cout));
        let (v, m) = (Shared(scratch), Shared(scratch.add(16 * vs)));
        let (xs, ys) = (Shared(x as *mut f32), Shared(y));
        // V_xi[c][tile] = (B^T d B)_xi, over a zero-padded copy of each plane.
        parallel_ranges(cin, 4, |channels| {
            let (pitch, rows) = (2 * self.tw + 2, 2 * self.th + 2);
            let mut padded = vec![0.0f32; rows * pitch];
            for c in channels {
                padded.fill(0.0);
                let plane = std::slice::from_raw_parts(xs.get().add(c * self.h * self.w), self.h * self.w);
                for r in 0..rows {
                    let Some(iy) = r.checked_sub(self.top).filter(|&iy| iy < self.h) else { continue };
                    let (from, to) = (self.left.min(pitch), (self.left + self.w).min(pitch));
                    padded[r * pitch + from..r * pitch + to].copy_from_slice(&plane[iy * self.w..][..to - from]);
                }
                let out = |xi: usize| v.get().add(xi * vs + c * t);
                for ty in 0..self.th {
                    for tx in 0..self.tw {
                        let mut d = [[0.0f32; 4]; 4];
                        for (i, row) in d.iter_mut().enumerate() {
                            row.copy_from_slice(&padded[(2 * ty + i) * pitch + 2 * tx..][..4]);
                        }
                        // B^T d, then (B^T d) B.
                        let bd = [sub(d[0], d[2]), add(d[1], d[2]), sub(d[2], d[1]), sub(d[1], d[3])];
                        let tile = ty * self.tw + tx;
                        for (i, r) in bd.iter().enumerate() {
                            *out(i * 4).add(tile) = r[0] - r[2];
                            *out(i * 4 + 1).add(tile) = r[1] + r[2];
                            *out(i * 4 + 2).add(tile) = r[2] - r[1];
                            *out(i * 4 + 3).add(tile) = r[1] - r[3];
                        }
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
                let pre = Prepacked { a: Some(&self.filters[xi]), b: None };
                sgemm_prepacked(&a, &b, pre, mx, t, false, Post::NONE, &|_, _, _, _| {});
            }
        });
        // Y = A^T M A per tile, clipped to the output plane; then the epilogue.
        parallel_ranges(cout, 4, |channels| {
            let (first, last) = (channels.start, channels.end);
            for o in channels {
                let at = |xi: usize| m.get().add(xi * ms + o * t);
                let plane = ys.get().add(o * self.ho * self.wo);
                for ty in 0..self.th {
                    for tx in 0..self.tw {
                        let tile = ty * self.tw + tx;
                        let mut s = [[0.0f32; 4]; 4];
                        for (i, row) in s.iter_mut().enumerate() {
                            for (j, e) in row.iter_mut().enumerate() {
                                *e = *at(i * 4 + j).add(tile);
                            }
                        }
                        // A^T s, then (A^T s) A.
                        let r0 = add(add(s[0], s[1]), s[2]);
                        let r1 = sub(sub(s[1], s[2]), s[3]);
                        let out = [
                            [r0[0] + r0[1] + r0[2], r0[1] - r0[2] - r0[3]],
                            [r1[0] + r1[1] + r1[2], r1[1] - r1[2] - r1[3]],
                        ];
                        for (a, row) in out.iter().enumerate() {
                            let oy = 2 * ty + a;
                            if oy >= self.ho {
                                continue;
                            }
                            for (b, &value) in row.iter().enumerate() {
                                let ox = 2 * tx + b;
                                if ox < self.wo {
                                    *plane.add(oy * self.wo + ox) = value;
                                }
                            }
                        }
                    }
                }
            }
            finish(first, last);
        });
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
        for (cin, cout, h, w, (top, left), (ho, wo)) in
            [(2, 3, 5, 6, (1, 1), (5, 6)), (3, 2, 7, 4, (0, 2), (5, 5)), (1, 1, 3, 3, (0, 0), (1, 1))]
        {
            let x: Vec<f32> = (0..cin * h * w).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let g: Vec<f32> = (0..cout * cin * 9).map(|i| ((i * 5) % 11) as f32 * 0.25 - 1.0).collect();
            let wino = Winograd::new(&g, (cout, cin), (h, w), (ho, wo), (top, left));
            let mut y = vec![f32::NAN; cout * ho * wo];
            let mut scratch = vec![f32::NAN; wino.scratch_len()];
            let finished = std::sync::Mutex::new(Vec::new());
            unsafe {
                wino.run(x.as_ptr(), y.as_mut_ptr(), scratch.as_mut_ptr(), &|a, b| {
                    finished.lock().unwrap().push((a, b))
                });
            }
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
