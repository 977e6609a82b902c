//! A convolution's image read as its im2col matrix, packed (or lent in place) block by block
//! as the product reaches it, never written out whole.

#[cfg(target_arch = "x86_64")]
use super::every_second_avx2;
use super::{every_nth, Window};
use crate::gemm::{RightOperand, NR};

/// `channels` planes of an image seen as the im2col matrix of a convolution over `window`:
/// row `(c, ky, kx)`, column `(oy, ox)` holds the input under that tap (zero in the padding).
/// Its blocks are packed from, or read in place in, shifted planes gathered from the image per
/// block ([`Im2col::gather`]), so the whole matrix is never written out.
pub struct Im2col<'a> {
    pub x: &'a [f32],
    pub channels: usize,
    pub window: Window,
}

impl RightOperand for Im2col<'_> {
    fn rows(&self) -> usize {
        self.channels * self.window.kernel[0] * self.window.kernel[1]
    }

    fn cols(&self) -> usize {
        self.window.ho * self.window.wo
    }

    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>, scratch: &mut Vec<f32>) {
        let planes = self.gather((k0, kc), (n0, nc), scratch);
        // Every element is written below: a partial last panel's padding columns explicitly.
        let panels = nc.div_ceil(NR);
        out.truncate(panels * NR * kc);
        out.resize(panels * NR * kc, 0.0);
        for (kk, k) in (k0..k0 + kc).enumerate() {
            let from = &scratch[planes.row_start(k)..][..nc];
            for (p, from) in from.chunks(NR).enumerate() {
                let to = &mut out[p * NR * kc + kk * NR..][..NR];
                // Whole panels as fixed-size copies: a 64-byte move, not a memmove call.
                match (<&mut [f32; NR]>::try_from(&mut *to), <&[f32; NR]>::try_from(from)) {
                    (Ok(to), Ok(from)) => *to = *from,
                    _ => {
                        to[..from.len()].copy_from_slice(from);
                        to[from.len()..].fill(0.0);
                    }
                }
            }
        }
    }

    /// The block's rows in its shifted planes ([`Im2col::gather`]).
    fn in_place<'s>(
        &'s self,
        (k0, kc): (usize, usize),
        columns: (usize, usize),
        scratch: &'s mut Vec<f32>,
        offsets: &mut Vec<usize>,
    ) -> Option<&'s [f32]> {
        let planes = self.gather((k0, kc), columns, scratch);
        offsets.clear();
        offsets.extend((k0..k0 + kc).map(|k| planes.row_start(k)));
        Some(scratch)
    }
}

/// Floats per cache line.
const LINE: usize = 16;

/// Where [`Im2col::gather`] put a block's shifted planes.
struct ShiftedPlanes<'w> {
    window: &'w Window,
    /// The block's first channel, whose planes come first.
    first_channel: usize,
    /// Elements per plane: whole output rows, the block's and `(kh - 1) * dh / sh` after,
    /// then padding to a whole cache line.
    plane_len: usize,
    /// Where the first plane starts.
    base: usize,
    /// The block's first column from its first output row's start.
    skip: usize,
}

impl ShiftedPlanes<'_> {
    fn plane(&self, c: usize, kx: usize, phase: usize) -> usize {
        ((c - self.first_channel) * self.window.kernel[1] + kx) * self.window.strides[0] + phase
    }

    /// Where row `k` (tap (c, ky, kx)) of the block starts: `q` rows down its plane, with
    /// `ky * dh = q * sh + phase`.
    fn row_start(&self, k: usize) -> usize {
        let g = self.window;
        let ([kh, kw], sh, dh) = (g.kernel, g.strides[0], g.dilations[0]);
        let (c, ky, kx) = (k / (kh * kw), k % (kh * kw) / kw, k % kw);
        let (q, phase) = (ky * dh / sh, ky * dh % sh);
        self.base + self.plane(c, kx, phase) * self.plane_len + q * g.wo + self.skip
    }
}

impl Im2col<'_> {
    /// Most rows of the im2col matrix repeat another's elements a few columns on: window row
    /// `ky` of output row `oy` reads input row `oy * sh + ky * dh`, which another window row
    /// of a later output row reads again. With `ky * dh = q * sh + phase`, the element of tap
    /// (c, ky, kx) at output (oy, ox) is element (oy + q, ox) of the *shifted plane*
    /// (c, kx, phase): input rows `r * sh + phase`, columns `ox * sw + kx * dw`, padding as
    /// zeros. A plane row is `wo` long, so the tap's row of a block is one contiguous run of
    /// its plane, starting `q` rows down. This gathers the planes of rows `k0..k0+kc`,
    /// columns `n0..n0+nc` into `planes` (a 7x7 stride-2 stem: 14 planes per channel where
    /// the im2col matrix has 49 rows). Gathering every packed row straight from the image,
    /// split at panel and output-row boundaries, cost the stem a quarter of its time.
    fn gather(&self, (k0, kc): (usize, usize), (n0, nc): (usize, usize), planes: &mut Vec<f32>) -> ShiftedPlanes<'_> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the feature was just detected.
            return unsafe { self.gather_avx2((k0, kc), (n0, nc), planes) };
        }
        self.gather_with((k0, kc), (n0, nc), planes, every_nth)
    }

    /// Stride 2 (ResNet's stem and downsampling convolutions) de-interleaves eight columns per
    /// two loads.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn gather_avx2(
        &self,
        rows: (usize, usize),
        columns: (usize, usize),
        planes: &mut Vec<f32>,
    ) -> ShiftedPlanes<'_> {
        self.gather_with(rows, columns, planes, |from, stride, to| {
            let done = if stride == 2 { every_second_avx2(from, to) } else { 0 };
            every_nth(&from[done * stride..], stride, &mut to[done..]);
        })
    }

    #[inline(always)]
    fn gather_with(
        &self,
        (k0, kc): (usize, usize),
        (n0, nc): (usize, usize),
        planes: &mut Vec<f32>,
        every_nth: impl Fn(&[f32], usize, &mut [f32]),
    ) -> ShiftedPlanes<'_> {
        let g = &self.window;
        let [kh, kw] = g.kernel;
        let ([sh, sw], [dh, _]) = (g.strides, g.dilations);
        let taps = kh * kw;
        let (first_row, last_row) = (n0 / g.wo, (n0 + nc - 1) / g.wo);
        let (first_channel, end_channel) = (k0 / taps, (k0 + kc - 1) / taps + 1);
        let plane_rows = last_row - first_row + 1 + (kh - 1) * dh / sh;
        // Planes start on a cache line and are whole lines long, so that where `wo` is a
        // multiple of 16 every 16 columns the micro-kernel reads in place are one line (the
        // stem: 76% -> 83% of the FMA peak; packed, it was 77%).
        let plane_len = (plane_rows * g.wo).next_multiple_of(LINE);
        planes.resize((end_channel - first_channel) * kw * sh * plane_len + LINE, 0.0);
        let base = planes.as_ptr().align_offset(LINE * std::mem::size_of::<f32>()).min(LINE);
        let layout = ShiftedPlanes { window: g, first_channel, plane_len, skip: n0 - first_row * g.wo, base };
        for c in first_channel..end_channel {
            let image = &self.x[c * g.h * g.w..][..g.h * g.w];
            for kx in 0..kw {
                let (lo, hi, shift) = g.columns(kx);
                for phase in (0..sh).filter(|&p| (0..kh).any(|ky| ky * dh % sh == p)) {
                    let to =
                        &mut planes[layout.base + layout.plane(c, kx, phase) * layout.plane_len..][..layout.plane_len];
                    for (r, to) in to.chunks_exact_mut(g.wo).take(plane_rows).enumerate() {
                        let iy = ((first_row + r) * sh + phase) as isize - g.pads[0] as isize;
                        if iy < 0 || iy >= g.h as isize || lo >= hi {
                            to.fill(0.0);
                            continue;
                        }
                        let row = &image[iy as usize * g.w..][..g.w];
                        to[..lo].fill(0.0);
                        to[hi..].fill(0.0);
                        let from = &row[((lo * sw) as isize + shift) as usize..];
                        if sw == 1 {
                            to[lo..hi].copy_from_slice(&from[..hi - lo]);
                        } else {
                            every_nth(from, sw, &mut to[lo..hi]);
                        }
                    }
                }
            }
        }
        layout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packed blocks at any offset, and the same blocks read in place, equal the im2col matrix
    /// written out, panels straddling output rows and padding included.
    #[test]
    fn im2col_packs_what_the_written_out_matrix_holds() {
        // The 45-wide plane has stride-2 panels of 16 columns from one row (de-interleaved).
        for (c, h, w, stride, pad, dilation, (kh, kw)) in [
            (2, 5, 7, 1, 1, 1, (3, 3)),
            (2, 5, 7, 2, 1, 1, (3, 2)),
            (2, 5, 7, 1, 0, 2, (2, 3)),
            (2, 5, 7, 3, 2, 1, (1, 1)),
            (2, 6, 45, 2, 3, 1, (7, 7)),
            (3, 9, 8, 2, 2, 2, (3, 3)),
            (2, 9, 8, 3, 1, 1, (2, 3)),
        ] {
            let x: Vec<f32> = (0..c * h * w).map(|i| i as f32 + 1.0).collect();
            let ho = (h + 2 * pad - (dilation * (kh - 1) + 1)) / stride + 1;
            let wo = (w + 2 * pad - (dilation * (kw - 1) + 1)) / stride + 1;
            let window = Window {
                h,
                w,
                ho,
                wo,
                kernel: [kh, kw],
                strides: [stride, stride],
                pads: [pad, pad],
                dilations: [dilation, dilation],
            };
            let im = Im2col { x: &x, channels: c, window };
            let (rows, cols) = (im.rows(), im.cols());
            let at = |k: usize, q: usize| {
                let (ci, ky, kx) = (k / (kh * kw), k / kw % kh, k % kw);
                let iy = ((q / wo) * stride + ky * dilation) as isize - pad as isize;
                let ix = ((q % wo) * stride + kx * dilation) as isize - pad as isize;
                let inside = iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize;
                if inside {
                    x[ci * h * w + iy as usize * w + ix as usize]
                } else {
                    0.0
                }
            };
            // One buffer for every block, largest first: what a block leaves must not show
            // through the next.
            let (mut out, mut scratch, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
            for (k0, n0) in [(0, 0), (1, 3), (rows / 2, cols / 3)] {
                let (kc, nc) = (rows - k0, cols - n0);
                im.pack(k0, kc, n0, nc, &mut out, &mut scratch);
                for k in 0..kc {
                    for j in 0..nc.div_ceil(NR) * NR {
                        let got = out[(j / NR) * NR * kc + k * NR + j % NR];
                        let want = if j < nc { at(k0 + k, n0 + j) } else { 0.0 };
                        assert_eq!(got, want, "stride {stride} pad {pad} row {} column {}", k0 + k, n0 + j);
                    }
                }
                let elements = im.in_place((k0, kc), (n0, nc), &mut scratch, &mut offsets).expect("read in place");
                for k in 0..kc {
                    for j in 0..nc {
                        let got = elements[offsets[k] + j];
                        assert_eq!(
                            got,
                            at(k0 + k, n0 + j),
                            "in place: stride {stride} row {} column {}",
                            k0 + k,
                            n0 + j
                        );
                    }
                }
            }
        }
    }
}
