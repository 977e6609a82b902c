//! Native f32 routines the JIT programs do not cover: the attention head's two products
//! around its JIT softmax, gathers by indices known only at run time, transposed convolutions,
//! local response and group normalization, and the floating-point remainder. Each works on dense row-major slices whose
//! shapes the executor checked at compile time.

use crate::gemm::{sgemm, View};

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

/// C's `fmod` (exact, the sign of the dividend) of `x` and `y` broadcast to `dims`: `sx` and
/// `sy` are their element strides along each dimension (0 where broadcast).
pub fn fmod_broadcast(x: &[f32], sx: &[i64], y: &[f32], sy: &[i64], dims: &[u64], out: &mut [f32]) {
    let mut k = 0;
    for_each_index(dims, |idx| {
        let at = |strides: &[i64]| idx.iter().zip(strides).map(|(&i, &s)| i as i64 * s).sum::<i64>() as usize;
        out[k] = x[at(sx)] % y[at(sy)];
        k += 1;
    });
}

/// Local response normalization of `x` ([batch, channels, plane] row-major) across channels:
/// `x / (bias + alpha / size * sum of x^2 over the channels c - (size - 1) / 2 ..= c + size / 2)^beta`,
/// one output plane a task split over the workers.
pub struct Lrn {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

impl Lrn {
    pub fn run(&self, x: &[f32], out: &mut [f32]) {
        let (c, plane) = (self.channels, self.plane);
        let (before, after) = ((self.size - 1) / 2, self.size / 2);
        let scale = self.alpha / self.size as f32;
        crate::workers::parallel_chunks(out, plane, 4, |p, dst| {
            let (b, ch) = (p / c, p % c);
            let mut sum = vec![0f32; plane];
            for k in ch.saturating_sub(before)..(ch + after + 1).min(c) {
                let src = &x[(b * c + k) * plane..][..plane];
                sum.iter_mut().zip(src).for_each(|(s, &v)| *s += v * v);
            }
            let src = &x[p * plane..][..plane];
            let base = |s: f32| self.bias + scale * s;
            match self.beta {
                0.75 => dst.iter_mut().zip(src).zip(&sum).for_each(|((o, &v), &s)| {
                    let r = base(s).sqrt();
                    *o = v / (r * r.sqrt());
                }),
                0.5 => dst.iter_mut().zip(src).zip(&sum).for_each(|((o, &v), &s)| *o = v / base(s).sqrt()),
                1.0 => dst.iter_mut().zip(src).zip(&sum).for_each(|((o, &v), &s)| *o = v / base(s)),
                beta => dst.iter_mut().zip(src).zip(&sum).for_each(|((o, &v), &s)| *o = v * base(s).powf(-beta)),
            }
        });
    }
}

/// Resampling of a row-major tensor (ONNX Resize) as separable passes, one per axis that
/// changes: output index `j` of a pass's axis is the weighted sum of its taps' input indices
/// (weights and indices computed once, by the reference's rules: `eval::resize_axes`). Rows
/// after the axis combine as whole vectors; the last axis gathers. One outer index a task.
pub struct Resample {
    /// The input's shape.
    pub shape: Vec<usize>,
    /// The passes, in the order they apply (identity axes left out).
    pub passes: Vec<ResamplePass>,
}

/// One axis of a [`Resample`]: output index `j`'s taps are `index[ranges[j]]` with weights
/// `weight[ranges[j]]`; an output with no taps takes `fill`.
pub struct ResamplePass {
    pub axis: usize,
    pub n_out: usize,
    ranges: Vec<std::ops::Range<usize>>,
    index: Vec<usize>,
    weight: Vec<f32>,
    fill: f32,
}

impl ResamplePass {
    /// `taps[j]`: output `j`'s (input index, weight) pairs, or `None` where it takes `fill`;
    /// zero weights are dropped.
    pub fn new(axis: usize, taps: Vec<Option<Vec<(usize, f32)>>>, fill: f32) -> ResamplePass {
        let (mut ranges, mut index, mut weight) = (Vec::new(), Vec::new(), Vec::new());
        let n_out = taps.len();
        for t in taps {
            let start = index.len();
            if let Some(t) = t {
                for (k, w) in t.into_iter().filter(|t| t.1 != 0.0) {
                    index.push(k);
                    weight.push(w);
                }
                // An output whose taps all weigh 0 is 0, not `fill`: one zero tap marks it.
                if index.len() == start {
                    index.push(0);
                    weight.push(0.0);
                }
            }
            ranges.push(start..index.len());
        }
        ResamplePass { axis, n_out, ranges, index, weight, fill }
    }
}

impl Resample {
    pub fn run(&self, x: &[f32], out: &mut [f32]) {
        if let Some(picks) = self.picks() {
            return self.gather(&picks, x, out);
        }
        let mut shape = self.shape.clone();
        let mut current: std::borrow::Cow<[f32]> = std::borrow::Cow::Borrowed(x);
        for (i, pass) in self.passes.iter().enumerate() {
            let (outer, n_in) = (shape[..pass.axis].iter().product::<usize>(), shape[pass.axis]);
            let inner: usize = shape[pass.axis + 1..].iter().product();
            let len = outer * pass.n_out * inner;
            let mut scratch = Vec::new();
            let dst: &mut [f32] = if i + 1 == self.passes.len() {
                &mut out[..len]
            } else {
                scratch.resize(len, 0.0);
                &mut scratch
            };
            let src = &current[..];
            crate::workers::parallel_chunks(dst, pass.n_out * inner, 1, |o, dst| {
                let src = &src[o * n_in * inner..][..n_in * inner];
                for (j, range) in pass.ranges.iter().enumerate() {
                    let (index, weight) = (&pass.index[range.clone()], &pass.weight[range.clone()]);
                    let row = &mut dst[j * inner..][..inner];
                    if index.is_empty() {
                        row.fill(pass.fill);
                    } else if inner == 1 {
                        row[0] = index.iter().zip(weight).map(|(&k, &w)| w * src[k]).sum();
                    } else {
                        let first = &src[index[0] * inner..][..inner];
                        row.iter_mut().zip(first).for_each(|(r, &v)| *r = weight[0] * v);
                        for (&k, &w) in index.iter().zip(weight).skip(1) {
                            let from = &src[k * inner..][..inner];
                            row.iter_mut().zip(from).for_each(|(r, &v)| *r += w * v);
                        }
                    }
                }
            });
            shape[pass.axis] = pass.n_out;
            if i + 1 < self.passes.len() {
                current = std::borrow::Cow::Owned(scratch);
            }
        }
        if self.passes.is_empty() {
            out.copy_from_slice(x);
        }
    }

    /// Per axis, the input index each output index copies, where every pass copies (nearest
    /// mode: one tap of weight 1): the whole resize is then one gather.
    fn picks(&self) -> Option<Vec<Vec<usize>>> {
        let mut picks: Vec<Vec<usize>> = self.shape.iter().map(|&n| (0..n).collect()).collect();
        for pass in &self.passes {
            let mut map = Vec::with_capacity(pass.n_out);
            for range in &pass.ranges {
                if range.len() != 1 || pass.weight[range.start] != 1.0 {
                    return None;
                }
                map.push(pass.index[range.start]);
            }
            picks[pass.axis] = map;
        }
        Some(picks)
    }

    /// `out[i0, .., ik] = x[picks[0][i0], .., picks[k][ik]]`, a row of the last axis at a time.
    fn gather(&self, picks: &[Vec<usize>], x: &[f32], out: &mut [f32]) {
        let rank = self.shape.len();
        if rank == 0 {
            return out.copy_from_slice(x);
        }
        let (last, row_in) = (&picks[rank - 1], self.shape[rank - 1]);
        crate::workers::parallel_chunks(out, last.len().max(1), 16, |row, dst| {
            // The source row: the output row's index on every axis but the last, mapped.
            let (mut rest, mut offset, mut stride) = (row, 0, row_in);
            for axis in (0..rank - 1).rev() {
                let n = picks[axis].len();
                offset += picks[axis][rest % n] * stride;
                rest /= n;
                stride *= self.shape[axis];
            }
            let src = &x[offset..offset + row_in];
            dst.iter_mut().zip(last).for_each(|(d, &k)| *d = src[k]);
        });
    }
}

/// Group normalization of `x` ([batch, channels, plane] row-major): each group of
/// `channels / groups` channels normalized over its channels and positions (mean and variance
/// summed in f64), then `scale[c] * y + bias[c]`; one (batch, group) a task split over the
/// workers.
pub struct GroupNorm {
    pub batch: usize,
    pub channels: usize,
    pub groups: usize,
    pub plane: usize,
    pub epsilon: f32,
}

impl GroupNorm {
    pub fn run(&self, x: &[f32], scale: &[f32], bias: &[f32], out: &mut [f32]) {
        let per_group = self.channels / self.groups;
        let len = per_group * self.plane;
        crate::workers::parallel_chunks(out, len, 1, |row, dst| {
            let src = &x[row * len..][..len];
            let mean = src.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
            let var = src.iter().map(|&v| (v as f64 - mean) * (v as f64 - mean)).sum::<f64>() / len as f64;
            let inv = 1.0 / (var + self.epsilon as f64).sqrt();
            let first = (row % self.groups) * per_group;
            for (k, (d, s)) in dst.chunks_mut(self.plane).zip(src.chunks(self.plane)).enumerate() {
                let c = first + k;
                let mul = (scale[c] as f64 * inv) as f32;
                let add = (bias[c] as f64 - mean * scale[c] as f64 * inv) as f32;
                d.iter_mut().zip(s).for_each(|(o, &v)| *o = v * mul + add);
            }
        });
    }
}

/// A 2-D transposed convolution as a product and a scatter: per (image, group), the columns
/// `w_g^T [Cout/g x kh x kw, Cin/g] x x_g [Cin/g, H x W]` (one GEMM), then each column adds its
/// kernel window into the output at stride, padding and dilation (col2im), then the bias.
pub struct ConvTranspose {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub group: usize,
    pub input: (usize, usize),
    pub output: (usize, usize),
    pub kernel: (usize, usize),
    pub strides: (i64, i64),
    pub dilations: (i64, i64),
    /// Leading padding (top, left): output coordinates shift by it.
    pub pads: (i64, i64),
    /// Each group's transposed weights packed once ([`ConvTranspose::pack`]) when they are
    /// constant; empty to read (and pack) them every run.
    pub packed: Vec<crate::gemm::Packed>,
}

impl ConvTranspose {
    /// Group `g`'s weights of `w` ([Cin, Cout/g, kh, kw]) as the product's left operand:
    /// [Cout/g x kh x kw, Cin/g], read transposed.
    fn weights<'w>(&self, w: &'w [f32], g: usize) -> View<'w> {
        let cig = self.in_channels / self.group;
        let rows = self.out_channels / self.group * self.kernel.0 * self.kernel.1;
        View::strided(&w[g * cig * rows..(g + 1) * cig * rows], (rows, cig), (1, rows))
    }

    /// Packs constant weights once, so runs read them in the micro-kernel's order.
    pub fn pack(&mut self, w: &[f32]) {
        self.packed = (0..self.group).map(|g| crate::gemm::Packed::a(&self.weights(w, g))).collect();
    }

    pub fn run(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
        let (cig, cog) = (self.in_channels / self.group, self.out_channels / self.group);
        let (h, wd) = self.input;
        let (oh, ow) = self.output;
        let (kh, kw) = self.kernel;
        let (pixels, rows) = (h * wd, cog * kh * kw);
        let mut columns = vec![0f32; rows * pixels];
        out.fill(0.0);
        for b in 0..self.batch {
            for g in 0..self.group {
                let xg = View::row_major(&x[(b * self.in_channels + g * cig) * pixels..][..cig * pixels], cig, pixels);
                match self.packed.get(g) {
                    Some(packed) => {
                        let pre = crate::gemm::Prepacked { a: Some(packed), ..Default::default() };
                        let a = View::packed_elsewhere(rows, cig);
                        let post = crate::gemm::Post::NONE;
                        crate::gemm::sgemm_prepacked(&a, &xg, pre, &mut columns, pixels, false, post, &|_, _, _, _| {});
                    }
                    None => sgemm(&self.weights(w, g), &xg, &mut columns, pixels, false, &|_, _, _, _| {}),
                }
                let plane0 = (b * self.out_channels + g * cog) * oh * ow;
                let columns = &columns;
                // Output channels split over the workers: each owns its plane.
                crate::workers::parallel_chunks(&mut out[plane0..plane0 + cog * oh * ow], oh * ow, 2, |co, plane| {
                    for (t, column) in columns[co * kh * kw * pixels..][..kh * kw * pixels].chunks(pixels).enumerate() {
                        self.scatter(column, t / kw, t % kw, plane);
                    }
                });
            }
        }
        if let Some(bias) = bias {
            for (k, plane) in out.chunks_mut(oh * ow).enumerate() {
                let add = bias[k % self.out_channels];
                plane.iter_mut().for_each(|e| *e += add);
            }
        }
    }

    /// Adds `column` (one kernel tap (ki, kj) of one output channel, one value per input
    /// pixel) into that channel's output `plane`.
    fn scatter(&self, column: &[f32], ki: usize, kj: usize, plane: &mut [f32]) {
        let ((h, wd), (oh, ow)) = (self.input, self.output);
        for i in 0..h {
            let y = i as i64 * self.strides.0 - self.pads.0 + ki as i64 * self.dilations.0;
            if y < 0 || y >= oh as i64 {
                continue;
            }
            let row = &mut plane[y as usize * ow..(y as usize + 1) * ow];
            let x0 = kj as i64 * self.dilations.1 - self.pads.1;
            for (j, &v) in column[i * wd..(i + 1) * wd].iter().enumerate() {
                let xo = x0 + j as i64 * self.strides.1;
                if (0..ow as i64).contains(&xo) {
                    row[xo as usize] += v;
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
