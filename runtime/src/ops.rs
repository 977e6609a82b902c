//! Native f32 routines the JIT programs do not cover: depthwise convolution planes and
//! im2col packing (beside the GEMM micro-kernel), the attention head's two products around
//! its JIT softmax, and gathers by indices known only at run time. Each works on dense
//! row-major slices whose shapes the executor checked at compile time.

use crate::gemm::{sgemm, RightOperand, View, NR};

/// Rows of `x` (`row_len` elements each) picked by `indices` (negative counts from the end).
pub fn gather_rows(x: &[f32], rows: usize, row_len: usize, indices: &[i64], out: &mut [f32]) -> Result<(), String> {
    for (k, &i) in indices.iter().enumerate() {
        let r = if i < 0 { i + rows as i64 } else { i };
        if r < 0 || r >= rows as i64 {
            return Err(format!("gather index {i} is out of range for {rows} rows"));
        }
        let r = r as usize;
        out[k * row_len..(k + 1) * row_len].copy_from_slice(&x[r * row_len..(r + 1) * row_len]);
    }
    Ok(())
}

/// The geometry of a 2-D window over one plane.
#[derive(Clone, Debug)]
pub struct Window {
    pub h: usize,
    pub w: usize,
    pub ho: usize,
    pub wo: usize,
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// Top and left padding (the bottom and right follow from the output size).
    pub pads: [usize; 2],
    pub dilations: [usize; 2],
}

impl Window {
    /// The input row window row `ky` of output row `oy` reads, if inside the input.
    pub(crate) fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.strides[0] + ky * self.dilations[0]) as isize - self.pads[0] as isize;
        (iy >= 0 && iy < self.h as isize).then_some(iy as usize)
    }

    /// Output columns `lo..hi` whose input column `ox * stride + shift` for window column
    /// `kx` lies inside the input, and that shift.
    pub(crate) fn columns(&self, kx: usize) -> (usize, usize, isize) {
        let sw = self.strides[1];
        let shift = (kx * self.dilations[1]) as isize - self.pads[1] as isize;
        let lo = if shift >= 0 { 0 } else { ((-shift) as usize).div_ceil(sw) };
        let end = self.w as isize - shift;
        let hi = if end <= 0 { 0 } else { (end as usize).div_ceil(sw).min(self.wo) };
        (lo, hi, shift)
    }
}

/// `channels` planes of an image seen as the im2col matrix of a convolution over `window`:
/// row `(c, ky, kx)`, column `(oy, ox)` holds the input under that tap (zero in the padding).
/// It packs straight from the image, so no im2col buffer is written and read back.
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

    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>) {
        let g = &self.window;
        let [kh, kw] = g.kernel;
        let sw = g.strides[1];
        let plane = g.h * g.w;
        // Per packed row, decoded once for every panel: where its channel starts, its kernel
        // row, and the output columns its kernel column keeps inside the input.
        let taps: Vec<(usize, usize, usize, usize, isize)> = (k0..k0 + kc)
            .map(|k| {
                let (c, tap) = (k / (kh * kw), k % (kh * kw));
                let (lo, hi, shift) = g.columns(tap % kw);
                (c * plane, tap / kw, lo, hi, shift)
            })
            .collect();
        let panels = nc.div_ceil(NR);
        out.clear();
        out.resize(panels * NR * kc, 0.0);
        for p in 0..panels {
            // The panel's columns as runs along one output row: (first column, length, oy, ox).
            let mut runs = [(0usize, 0usize, 0usize, 0usize); NR];
            let mut count = 0;
            let (q0, cols) = (n0 + p * NR, NR.min(nc - p * NR));
            let mut j = 0;
            while j < cols {
                let (oy, ox) = ((q0 + j) / g.wo, (q0 + j) % g.wo);
                let len = (g.wo - ox).min(cols - j);
                runs[count] = (j, len, oy, ox);
                count += 1;
                j += len;
            }
            let panel = &mut out[p * NR * kc..(p + 1) * NR * kc];
            for (dst, &(channel, ky, lo, hi, shift)) in panel.chunks_exact_mut(NR).zip(&taps) {
                for &(j0, len, oy, ox0) in &runs[..count] {
                    let Some(iy) = g.input_row(oy, ky) else { continue };
                    let row = &self.x[channel + iy * g.w..channel + (iy + 1) * g.w];
                    let (a, b) = (ox0.max(lo), (ox0 + len).min(hi));
                    if a >= b {
                        continue;
                    }
                    let first = ((a * sw) as isize + shift) as usize;
                    let to = &mut dst[j0 + a - ox0..j0 + b - ox0];
                    if sw == 1 && to.len() == NR {
                        // The common case, a whole panel from one row: a fixed-size copy.
                        let to: &mut [f32; NR] = to.try_into().expect("NR long");
                        *to = row[first..first + NR].try_into().expect("NR long");
                    } else {
                        let src = &row[first..first + (to.len() - 1) * sw + 1];
                        for (t, v) in to.iter_mut().enumerate() {
                            // SAFETY: t < to.len(), so t * sw < src.len() (checked above).
                            *v = unsafe { *src.get_unchecked(t * sw) };
                        }
                    }
                }
            }
        }
    }
}

/// One depthwise-convolution plane: `out = x (*) k`, `scratch` reused between planes.
///
/// Stride 1: the input is copied once into a zero-padded plane whose rows are as wide as an
/// output row plus the kernel, so every tap is one long multiply-add over the whole plane
/// (MobileNet's 7- and 14-wide rows would otherwise be all loop overhead and remainders);
/// the columns past each output row are computed and dropped. Other strides accumulate rows
/// one tap at a time over the output columns whose input is in range.
pub fn depthwise_plane(x: &[f32], k: &[f32], out: &mut [f32], g: &Window, scratch: &mut Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected.
        return unsafe { depthwise_plane_avx2(x, k, out, g, scratch) };
    }
    depthwise_dispatch(x, k, out, g, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_plane_avx2(x: &[f32], k: &[f32], out: &mut [f32], g: &Window, scratch: &mut Vec<f32>) {
    depthwise_dispatch(x, k, out, g, scratch)
}

#[inline(always)]
fn depthwise_dispatch(x: &[f32], k: &[f32], out: &mut [f32], g: &Window, scratch: &mut Vec<f32>) {
    match (g.strides, g.dilations) {
        ([1, 1], [1, 1]) => depthwise_wide_body(x, k, out, g, scratch),
        (_, [1, 1]) => depthwise_phased_body(x, k, out, g, scratch),
        _ => depthwise_plane_body(x, k, out, g),
    }
}

/// Strided: the padded input split into `stride` column phases (phase p holds columns
/// p, p + stride, ...), so each tap reads its phase contiguously: output column ox of tap kx is
/// phase kx % stride, column ox + kx / stride.
#[inline(always)]
fn depthwise_phased_body(x: &[f32], k: &[f32], out: &mut [f32], g: &Window, scratch: &mut Vec<f32>) {
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.strides;
    let [top, left] = g.pads;
    let rows = (g.ho - 1) * sh + kh;
    let pitch = g.wo + (kw - 1) / sw;
    scratch.clear();
    scratch.resize(sw * rows * pitch, 0.0);
    for r in 0..rows {
        let Some(iy) = (r as isize - top as isize).try_into().ok().filter(|&iy: &usize| iy < g.h) else { continue };
        let input = &x[iy * g.w..(iy + 1) * g.w];
        for phase in 0..sw {
            let row = &mut scratch[(phase * rows + r) * pitch..][..pitch];
            for (c, v) in row.iter_mut().enumerate() {
                // Padded column c * sw + phase is input column c * sw + phase - left.
                if let Some(&x) = (c * sw + phase).checked_sub(left).and_then(|ix| input.get(ix)) {
                    *v = x;
                }
            }
        }
    }
    out.fill(0.0);
    for (oy, o) in out.chunks_exact_mut(g.wo).enumerate() {
        for ky in 0..kh {
            for kx in 0..kw {
                let weight = k[ky * kw + kx];
                let row = ((kx % sw) * rows + oy * sh + ky) * pitch + kx / sw;
                for (o, &v) in o.iter_mut().zip(&scratch[row..row + g.wo]) {
                    *o = v.mul_add(weight, *o);
                }
            }
        }
    }
}

#[inline(always)]
fn depthwise_wide_body(x: &[f32], k: &[f32], out: &mut [f32], g: &Window, scratch: &mut Vec<f32>) {
    let [kh, kw] = g.kernel;
    let [top, left] = g.pads;
    let (pitch, rows) = (g.wo + kw - 1, g.ho + kh - 1);
    // The padded plane (plus kw - 1 zeros the last tap reads past its end), then the wide output.
    let padded_len = rows * pitch + kw - 1;
    scratch.clear();
    scratch.resize(padded_len + g.ho * pitch, 0.0);
    let (padded, wide) = scratch.split_at_mut(padded_len);
    for (r, row) in padded.chunks_exact_mut(pitch).enumerate().take(rows) {
        let Some(iy) = (r as isize - top as isize).try_into().ok().filter(|&iy: &usize| iy < g.h) else { continue };
        let (from, to) = (left.min(pitch), (left + g.w).min(pitch));
        row[from..to].copy_from_slice(&x[iy * g.w..iy * g.w + (to - from)]);
    }
    for ky in 0..kh {
        for kx in 0..kw {
            let weight = k[ky * kw + kx];
            let src = &padded[ky * pitch + kx..][..wide.len()];
            for (o, &v) in wide.iter_mut().zip(src) {
                *o = v.mul_add(weight, *o);
            }
        }
    }
    for (o, w) in out.chunks_exact_mut(g.wo).zip(wide.chunks_exact(pitch)) {
        o.copy_from_slice(&w[..g.wo]);
    }
}

#[inline(always)]
fn depthwise_plane_body(x: &[f32], k: &[f32], out: &mut [f32], g: &Window) {
    let [kh, kw] = g.kernel;
    let sw = g.strides[1];

    for oy in 0..g.ho {
        let row = &mut out[oy * g.wo..(oy + 1) * g.wo];
        row.fill(0.0);
        for ky in 0..kh {
            let Some(iy) = g.input_row(oy, ky) else { continue };
            let xin = &x[iy * g.w..(iy + 1) * g.w];
            for kx in 0..kw {
                let wgt = k[ky * kw + kx];
                let (lo, hi, shift) = g.columns(kx);
                if lo >= hi {
                    continue;
                }
                let start = (lo * sw) as isize + shift;
                if sw == 1 {
                    let src = &xin[start as usize..start as usize + (hi - lo)];
                    for (o, &v) in row[lo..hi].iter_mut().zip(src) {
                        *o += wgt * v;
                    }
                } else {
                    for (j, o) in row[lo..hi].iter_mut().enumerate() {
                        *o += wgt * xin[start as usize + j * sw];
                    }
                }
            }
        }
    }
}

/// `normalize(q k_t) v` for one (batch, head): q [lq, d], k_t [d, lk], v [lk, dv]; `scores`
/// is scratch, and `normalize` turns the scores into probabilities in place (the executor's
/// JIT softmax with the scale and mask).
pub fn attention_head(
    q: View,
    kt: View,
    v: View,
    normalize: impl FnOnce(&mut [f32]),
    scores: &mut [f32],
    out: &mut [f32],
) {
    let (lq, lk, dv) = (q.rows, kt.cols, v.cols);
    sgemm(&q, &kt, scores, lk, false, &|_, _, _, _| {});
    normalize(scores);
    let p = View { data: scores, rows: lq, cols: lk, row_stride: lk, col_stride: 1 };
    sgemm(&p, &v, out, dv, false, &|_, _, _, _| {});
}

/// Calls `f` with every index of `dims` (row-major); once with `[]` for no dims.
pub fn for_each_index(dims: &[u64], mut f: impl FnMut(&[u64])) {
    if dims.contains(&0) {
        return;
    }
    let mut idx = vec![0u64; dims.len()];
    loop {
        f(&idx);
        let mut d = dims.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depthwise_planes_match_a_direct_loop() {
        let (h, w) = (7, 6);
        let x: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let k: Vec<f32> = (0..9).map(|i| i as f32 * 0.25 - 1.0).collect();
        for (stride, pad, dilation) in [(1, 1, 1), (2, 0, 1), (2, 2, 2), (1, 0, 2), (1, 0, 1), (1, 2, 1)] {
            let span = dilation * 2 + 1;
            let ho = (h + 2 * pad - span) / stride + 1;
            let wo = (w + 2 * pad - span) / stride + 1;
            let g = Window {
                h,
                w,
                ho,
                wo,
                kernel: [3, 3],
                strides: [stride, stride],
                pads: [pad, pad],
                dilations: [dilation, dilation],
            };
            let mut conv = vec![f32::NAN; ho * wo];
            depthwise_plane(&x, &k, &mut conv, &g, &mut Vec::new());
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut sum = 0.0f32;
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let iy = (oy * stride + ky * dilation) as isize - pad as isize;
                            let ix = (ox * stride + kx * dilation) as isize - pad as isize;
                            if iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize {
                                let v = x[iy as usize * w + ix as usize];
                                sum += v * k[ky * 3 + kx];
                            }
                        }
                    }
                    assert!((conv[oy * wo + ox] - sum).abs() < 1e-5, "conv {stride} {pad} {dilation}");
                }
            }
        }
    }

    /// Packed blocks at any offset equal the im2col matrix written out, panels straddling output
    /// rows and padding included.
    #[test]
    fn im2col_packs_what_the_written_out_matrix_holds() {
        let (c, h, w) = (2, 5, 7);
        let x: Vec<f32> = (0..c * h * w).map(|i| i as f32 + 1.0).collect();
        for (stride, pad, dilation, (kh, kw)) in
            [(1, 1, 1, (3, 3)), (2, 1, 1, (3, 2)), (1, 0, 2, (2, 3)), (3, 2, 1, (1, 1))]
        {
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
            for (k0, n0) in [(0, 0), (1, 3), (rows / 2, cols / 3)] {
                let (kc, nc) = (rows - k0, cols - n0);
                let mut out = Vec::new();
                im.pack(k0, kc, n0, nc, &mut out);
                for k in 0..kc {
                    for j in 0..nc.div_ceil(NR) * NR {
                        let got = out[(j / NR) * NR * kc + k * NR + j % NR];
                        let want = if j < nc { at(k0 + k, n0 + j) } else { 0.0 };
                        assert_eq!(got, want, "stride {stride} pad {pad} row {} column {}", k0 + k, n0 + j);
                    }
                }
            }
        }
    }
}
