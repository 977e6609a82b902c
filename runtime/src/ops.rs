//! Native f32 routines the JIT programs do not cover: depthwise convolution planes and
//! im2col packing (beside the GEMM micro-kernel), the attention head's two products around
//! its JIT softmax, and gathers by indices known only at run time. Each works on dense
//! row-major slices whose shapes the executor checked at compile time.

use crate::gemm::{sgemm, Post, RightOperand, View, NR};

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

/// A depthwise convolution's per-plane routine, planned once for its geometry:
/// `out = post(x (*) k)` for one channel.
///
/// Undilated windows of any stride: the zero-padded input is split into `sh x sw` phases (phase
/// (py, px) holds padded rows py, py + sh, ... and columns px, px + sw, ...), so tap (ky, kx) of
/// output row oy reads phase (ky % sh, kx % sw) contiguously at row oy + ky / sh, column
/// ox + kx / sw. Every output vector is then one register accumulating all taps, with the
/// bias and clamp applied before its only store. Dilated windows take a row-by-row loop.
/// With AVX2, stride-1 3x3 windows (most of MobileNet's) skip the phase copy and read the
/// input in place ([`Depthwise::in_place_avx2`]).
pub struct Depthwise {
    window: Window,
    phases: Phases,
    /// Per tap (row-major over the kernel): its element offset for output (0, 0).
    taps: Vec<usize>,
    /// Every [`DW_LANES`]-wide output vector, row-major: (offset in a phase, offset in the
    /// output). A row's last vector may run past the row into the next ones, which later
    /// vectors then overwrite; only vectors running past the plane are stored masked.
    vectors: Vec<(u32, u32)>,
    /// One zero input row when the AVX2 path reads the input in place (see
    /// [`Depthwise::in_place_avx2`]), else empty.
    zeros: Vec<f32>,
}

impl Depthwise {
    pub fn new(window: Window) -> Depthwise {
        let phases = Phases::new(&window);
        let [kh, kw] = window.kernel;
        let taps = (0..kh * kw).map(|t| phases.tap(t / kw, t % kw)).collect();
        let vectors = (0..window.ho)
            .flat_map(|oy| {
                (0..window.wo).step_by(DW_LANES).map(move |ox| (oy * phases.pitch + ox, oy * window.wo + ox))
            })
            .map(|(from, to)| (from as u32, to as u32))
            .collect();
        // Stride-1 3x3 windows read the input in place (AVX2): `zeros` stands in for the rows
        // above and below the plane.
        let in_place = window.strides == [1, 1] && window.dilations == [1, 1] && window.kernel == [3, 3];
        let zeros = if in_place { vec![0.0; window.w] } else { Vec::new() };
        Depthwise { window, phases, taps, vectors, zeros }
    }

    /// One plane: input `x`, taps `k` (`kh x kw`), output `out`; `scratch` is reused between
    /// planes.
    pub fn plane(&self, x: &[f32], k: &[f32], out: &mut [f32], post: &Post, scratch: &mut Vec<f32>) {
        let g = &self.window;
        if out.is_empty() {
            return;
        }
        if g.dilations != [1, 1] {
            depthwise_plane_body(x, k, out, g);
            let bias = post.bias_at(0, 0);
            for v in out.iter_mut() {
                *v = post.apply(*v, bias);
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the features were just detected.
            return unsafe { self.plane_avx2(x, k, out, post, scratch) };
        }
        self.phases.fill(x, g, scratch, |from, stride, to, n| every_nth(from, stride, &mut to[..n]));
        self.convolve(scratch, k, out, post)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn plane_avx2(&self, x: &[f32], k: &[f32], out: &mut [f32], post: &Post, scratch: &mut Vec<f32>) {
        use std::arch::x86_64::__m256;
        if !self.zeros.is_empty() {
            return self.in_place_avx2(x, k, out, post);
        }
        if self.phases.whole_vectors {
            self.phases.fill_avx2(x, &self.window, scratch);
        } else {
            self.phases.fill(x, &self.window, scratch, |from, stride, to, n| {
                let to = &mut to[..n];
                let done = if stride == 2 { every_second_avx2(from, to) } else { 0 };
                every_nth(&from[done * stride..], stride, &mut to[done..]);
            });
        }
        let weight = |t: usize| (self.taps[t], std::arch::x86_64::_mm256_set1_ps(k[t]));
        // A 3x3 window's taps in an array, so the tap loop unrolls with its offsets in registers.
        if self.taps.len() == 9 {
            let taps: [(usize, __m256); 9] = std::array::from_fn(weight);
            self.convolve_avx2(&taps, scratch, out, post)
        } else {
            let taps: Vec<(usize, __m256)> = (0..self.taps.len()).map(weight).collect();
            self.convolve_avx2(&taps, scratch, out, post)
        }
    }

    /// A stride-1 3x3 window straight from the input, no phase copy: per column of
    /// output vectors, four output rows at a time, each input row loaded once per tap column
    /// and multiplied into every output row that reads it (4.5 loads per output vector instead
    /// of nine). Loads at the plane's left and right edges are masked, their padding lanes
    /// reading as zeros; rows above and below the plane read `zeros`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn in_place_avx2(&self, x: &[f32], k: &[f32], out: &mut [f32], post: &Post) {
        use std::arch::x86_64::*;
        const K: usize = 3;
        let g = &self.window;
        let (h, w, ho, wo) = (g.h, g.w, g.ho, g.wo);
        assert!(
            g.kernel == [K, K] && x.len() >= h * w && out.len() == ho * wo && k.len() >= K * K && self.zeros.len() >= w,
            "in_place_avx2: the plane does not fit its window"
        );
        let weights: [[__m256; K]; K] =
            std::array::from_fn(|ky| std::array::from_fn(|kx| _mm256_set1_ps(k[ky * K + kx])));
        let (bias, lo, hi) = (_mm256_set1_ps(post.bias_at(0, 0)), _mm256_set1_ps(post.lo), _mm256_set1_ps(post.hi));
        let finish = |acc: __m256| _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(acc, bias)));
        let (top, left) = (g.pads[0] as isize, g.pads[1] as isize);
        let row = |iy: isize| {
            if (0..h as isize).contains(&iy) {
                x.as_ptr().add(iy as usize * w)
            } else {
                self.zeros.as_ptr()
            }
        };
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let dst = out.as_mut_ptr();
        // Four rows a group; the last group overlaps the one before it (rows are stored in
        // order, so a vector running past its row is overwritten by the next row's).
        let groups = ho.div_ceil(4);
        // Column by column, right to left: the last column's vectors run past their rows into
        // the first column's, which is stored after them. (Row groups outside and columns
        // inside streamed the input better in isolation but ran MobileNet-V2 slower.)
        for ox in (0..wo).step_by(DW_LANES).rev() {
            // Lane l of tap column kx reads input column c + l: inside the row, or masked.
            let first = |kx: usize| ox as isize + kx as isize - left;
            let masks: [__m256i; K] = std::array::from_fn(|kx| {
                let c = first(kx);
                let (lo, hi) = (_mm256_set1_epi32((-c - 1) as i32), _mm256_set1_epi32((w as isize - c) as i32));
                _mm256_and_si256(_mm256_cmpgt_epi32(lanes, lo), _mm256_cmpgt_epi32(hi, lanes))
            });
            let whole = (0..K).all(|kx| first(kx) >= 0 && first(kx) + DW_LANES as isize <= w as isize);
            for group in 0..groups {
                let oy = if ho >= 4 { (group * 4).min(ho - 4) } else { 0 };
                let mut acc = [_mm256_setzero_ps(); 4];
                // Input row r of the group feeds output rows r - K + 1 ..= r.
                for r in 0..4 + K - 1 {
                    let from = row(oy as isize + r as isize - top);
                    for kx in 0..K {
                        // SAFETY: unmasked lanes read columns inside the row (`masks`).
                        let at = from.wrapping_offset(first(kx));
                        let v = if whole { _mm256_loadu_ps(at) } else { _mm256_maskload_ps(at, masks[kx]) };
                        for (j, a) in acc.iter_mut().enumerate() {
                            if (j..j + K).contains(&r) {
                                *a = _mm256_fmadd_ps(v, weights[r - j][kx], *a);
                            }
                        }
                    }
                }
                for (j, &a) in acc.iter().enumerate().take(ho - oy) {
                    let to = (oy + j) * wo + ox;
                    let room = out.len() - to;
                    if room >= DW_LANES {
                        _mm256_storeu_ps(dst.add(to), finish(a));
                    } else {
                        // Not into the next plane.
                        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(room as i32), lanes);
                        _mm256_maskstore_ps(dst.add(to), mask, finish(a));
                    }
                }
            }
        }
    }

    fn convolve(&self, phases: &[f32], k: &[f32], out: &mut [f32], post: &Post) {
        let bias = post.bias_at(0, 0);
        for (oy, row) in out.chunks_exact_mut(self.window.wo).enumerate() {
            for (ox, o) in row.iter_mut().enumerate() {
                let at = oy * self.phases.pitch + ox;
                let sum = self.taps.iter().zip(k).fold(0.0f32, |acc, (&off, &w)| phases[at + off].mul_add(w, acc));
                *o = post.apply(sum, bias);
            }
        }
    }

    /// Four output vectors at a time, four independent multiply-add chains (the planes of
    /// MobileNet's later layers are 7 to 28 wide: a row alone has too few vectors to hide
    /// the chains' latency).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn convolve_avx2(
        &self,
        taps: &[(usize, std::arch::x86_64::__m256)],
        phases: &[f32],
        out: &mut [f32],
        post: &Post,
    ) {
        use std::arch::x86_64::*;
        let (bias, lo, hi) = (_mm256_set1_ps(post.bias_at(0, 0)), _mm256_set1_ps(post.lo), _mm256_set1_ps(post.hi));
        let (src, dst) = (phases.as_ptr(), out.as_mut_ptr());
        let finish = |acc: __m256| _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(acc, bias)));
        let vector = |from: u32| {
            let from = src.add(from as usize);
            taps.iter()
                .fold(_mm256_setzero_ps(), |acc, &(off, w)| _mm256_fmadd_ps(_mm256_loadu_ps(from.add(off)), w, acc))
        };
        // A vector ending past the plane (the last, if any) is stored masked, not into the
        // next plane.
        let store = |a: __m256, to: u32| {
            let (to, lanes) = (to as usize, out.len() - to as usize);
            if lanes >= DW_LANES {
                _mm256_storeu_ps(dst.add(to), finish(a))
            } else {
                let mask =
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                _mm256_maskstore_ps(dst.add(to), mask, finish(a))
            }
        };
        let group = |group: &[(u32, u32)], store: &dyn Fn(__m256, u32)| {
            let from: [*const f32; 4] = std::array::from_fn(|i| src.add(group[i].0 as usize));
            let mut acc = [_mm256_setzero_ps(); 4];
            for &(off, w) in taps {
                for (a, f) in acc.iter_mut().zip(from) {
                    *a = _mm256_fmadd_ps(_mm256_loadu_ps(f.add(off)), w, *a);
                }
            }
            // In row order: a vector running past its row is overwritten by the next.
            for (a, &(_, to)) in acc.into_iter().zip(group) {
                store(a, to);
            }
        };
        let vectors = &self.vectors;
        if vectors.len() < 4 {
            for &(from, to) in vectors {
                store(vector(from), to);
            }
            return;
        }
        // Whole groups of four inside the plane, then the last four vectors: rather than one to
        // three single chains (a 7x7 plane has seven vectors), that group overlaps the one
        // before it, storing its repeated vectors' same values again, still in row order.
        let whole = vectors.partition_point(|&(_, to)| to as usize + DW_LANES <= out.len()) / 4 * 4;
        for four in vectors[..whole].chunks_exact(4) {
            group(four, &|a, to| _mm256_storeu_ps(dst.add(to as usize), finish(a)));
        }
        if whole < vectors.len() {
            group(&vectors[vectors.len() - 4..], &store);
        }
    }
}

/// The phase split of one padded plane (see [`Depthwise`]).
struct Phases {
    /// Row and column strides: the phase grid.
    sh: usize,
    sw: usize,
    /// Rows and pitch of each phase; the pitch leaves room for a whole last vector per row.
    rows: usize,
    pitch: usize,
    /// Input columns a row copies (those some output reads).
    used: usize,
    /// Per column phase: the first input column it takes, where that lands in the phase row,
    /// and how many it takes (padded column c = ix + left is phase c % sw, column c / sw).
    columns: Vec<(usize, usize, usize)>,
    /// Strides 1 or 2 whose phase rows each hold every vector [`Phases::fill_avx2`] stores
    /// into them: rows are then copied in whole vectors, zeros past their input.
    whole_vectors: bool,
}

/// Output columns an AVX2 step computes; the phase pitch is rounded so a row's last step
/// reads inside its phase.
const DW_LANES: usize = 8;

impl Phases {
    fn new(g: &Window) -> Phases {
        let [kh, kw] = g.kernel;
        let [sh, sw] = g.strides;
        let rows = ((g.ho.max(1) - 1) * sh + kh).div_ceil(sh);
        let pitch = g.wo.div_ceil(DW_LANES) * DW_LANES + (kw - 1) / sw;
        let left = g.pads[1];
        let used = g.w.min((pitch * sw).saturating_sub(left));
        let columns = (0..sw)
            .map(|px| {
                let first = (px + sw - left % sw) % sw;
                let at = (first + left) / sw;
                (first, at, (pitch - at).min(used.saturating_sub(first).div_ceil(sw)))
            })
            .collect::<Vec<_>>();
        let chunks = used.div_ceil(DW_LANES * sw);
        let whole_vectors = matches!((sh, sw), (1, 1) | (2, 2))
            && used > 0
            && columns
                .iter()
                .all(|&(first, at, n)| n == used.saturating_sub(first).div_ceil(sw) && at + chunks * DW_LANES <= pitch);
        Phases { sh, sw, rows, pitch, used, columns, whole_vectors }
    }

    fn len(&self) -> usize {
        self.sh * self.sw * self.rows * self.pitch
    }

    /// Element offset of tap (ky, kx) for output (0, 0).
    fn tap(&self, ky: usize, kx: usize) -> usize {
        ((ky % self.sh * self.sw + kx % self.sw) * self.rows + ky / self.sh) * self.pitch + kx / self.sw
    }

    /// Scatters `x` into the zero-padded phases (`scratch`), copying each run with
    /// `run(from, stride, to, n)`: `to[j] = from[j * stride]` for `j < n` and nothing else (a
    /// row's last vector stored whole could reach into another phase's rows, filled before it).
    /// Every plane writes the same elements, so the padding is zeroed only when `scratch` is
    /// first sized for these phases.
    #[inline(always)]
    fn fill(&self, x: &[f32], g: &Window, scratch: &mut Vec<f32>, run: impl Fn(&[f32], usize, &mut [f32], usize)) {
        self.size(scratch);
        for (iy, phase_row) in self.input_rows(g) {
            let input = &x[iy * g.w..][..self.used];
            for (px, &(first, at, n)) in self.columns.iter().enumerate() {
                run(&input[first..], self.sw, &mut scratch[self.row_start(phase_row, px) + at..], n);
            }
        }
    }

    /// [`Phases::fill`] for [`Phases::whole_vectors`] phases: each input row in vectors of
    /// `DW_LANES * sw` floats (the last loaded masked), split into the `sw` column phases with
    /// one shuffle. Rows of 7 to 112 floats make per-row setup the cost: offsets, bounds and
    /// masks are settled once per plane.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_avx2(&self, x: &[f32], g: &Window, scratch: &mut Vec<f32>) {
        use std::arch::x86_64::*;
        debug_assert!(self.whole_vectors);
        self.size(scratch);
        assert!(x.len() >= g.h * g.w && self.used <= g.w, "fill_avx2: the plane is shorter than its window");
        let chunk = DW_LANES * self.sw;
        let chunks = self.used.div_ceil(chunk);
        let last = self.used - (chunks - 1) * chunk;
        let mask = |lanes: usize| {
            _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes.min(DW_LANES) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
        };
        let (tail, tail_high) = (mask(last), mask(last.saturating_sub(DW_LANES)));
        // The phases of input columns 0 (evens) and 1 (odds): where each row lands in them.
        let landing = |first: usize| self.columns.iter().position(|c| c.0 == first).map(|px| (px, self.columns[px].1));
        let (evens, odds) = (landing(0).expect("phase of column 0"), landing(1).unwrap_or((0, 0)));
        let dst = scratch.as_mut_ptr();
        for (iy, phase_row) in self.input_rows(g) {
            let from = x.as_ptr().add(iy * g.w);
            // SAFETY (stores): `whole_vectors` keeps `at + chunks * DW_LANES` inside the pitch,
            // and `input_rows` keeps `phase_row` inside the phase.
            let to_evens = dst.add(self.row_start(phase_row, evens.0) + evens.1);
            if self.sw == 1 {
                for c in 0..chunks - 1 {
                    _mm256_storeu_ps(to_evens.add(c * DW_LANES), _mm256_loadu_ps(from.add(c * DW_LANES)));
                }
                let c = chunks - 1;
                _mm256_storeu_ps(to_evens.add(c * DW_LANES), _mm256_maskload_ps(from.add(c * chunk), tail));
            } else {
                let to_odds = dst.add(self.row_start(phase_row, odds.0) + odds.1);
                let split = |c: usize, (a, b): (__m256, __m256)| {
                    let (e, o) = evens_odds(a, b);
                    _mm256_storeu_ps(to_evens.add(c * DW_LANES), e);
                    _mm256_storeu_ps(to_odds.add(c * DW_LANES), o);
                };
                for c in 0..chunks - 1 {
                    let at = from.add(c * chunk);
                    split(c, (_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(DW_LANES))));
                }
                let (c, at) = (chunks - 1, from.add((chunks - 1) * chunk));
                // The high half may start past the row (and the plane): fully masked then.
                let high = _mm256_maskload_ps(at.wrapping_add(DW_LANES), tail_high);
                split(c, (_mm256_maskload_ps(at, tail), high));
            }
        }
    }

    /// Sizes `scratch` for these phases, zeroing it (the padding) only when it was not.
    fn size(&self, scratch: &mut Vec<f32>) {
        if scratch.len() != self.len() + DW_LANES {
            scratch.clear();
            scratch.resize(self.len() + DW_LANES, 0.0);
        }
    }

    /// Every input row some output reads, with the phase row it lands in (its row phase is
    /// `phase_row.0`).
    fn input_rows(&self, g: &Window) -> impl Iterator<Item = (usize, (usize, usize))> {
        let (sh, rows, top) = (self.sh, self.rows, g.pads[0]);
        (0..g.h).map(move |iy| (iy, ((iy + top) % sh, (iy + top) / sh))).take_while(move |&(_, (_, pr))| pr < rows)
    }

    /// Where row `pr` of phase (`py`, `px`) starts.
    fn row_start(&self, (py, pr): (usize, usize), px: usize) -> usize {
        ((py * self.sw + px) * self.rows + pr) * self.pitch
    }
}

/// `to[j] = from[j * stride]` for every `j` of `to`.
#[inline(always)]
fn every_nth(from: &[f32], stride: usize, to: &mut [f32]) {
    for (j, t) in to.iter_mut().enumerate() {
        *t = from[j * stride];
    }
}

/// The even elements of `from` into `to`, eight at a time while 16 remain; returns how many.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn every_second_avx2(from: &[f32], to: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let mut j = 0;
    while j + 8 <= to.len() && 2 * j + 16 <= from.len() {
        let (a, b) = (_mm256_loadu_ps(from.as_ptr().add(2 * j)), _mm256_loadu_ps(from.as_ptr().add(2 * j + 8)));
        _mm256_storeu_ps(to.as_mut_ptr().add(j), evens_odds(a, b).0);
        j += 8;
    }
    j
}

/// The even and the odd elements of `a` then `b`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn evens_odds(
    a: std::arch::x86_64::__m256,
    b: std::arch::x86_64::__m256,
) -> (std::arch::x86_64::__m256, std::arch::x86_64::__m256) {
    use std::arch::x86_64::*;
    // Per 128-bit lane a0 a2 b0 b2 | a4 a6 b4 b6, then the middle 64-bit pairs swapped.
    let order = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
    (order(_mm256_shuffle_ps::<0b10_00_10_00>(a, b)), order(_mm256_shuffle_ps::<0b11_01_11_01>(a, b)))
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
        let k: Vec<f32> = (0..15).map(|i| i as f32 * 0.25 - 1.0).collect();
        let post = Post { scale: 1.0, bias: crate::gemm::Bias::Rows(&[0.5]), lo: -2.0, hi: 3.0 };
        // Whole-vector fills (rows of one or two vectors, tails of 1 to 15 floats) and the rest.
        let mut fills = [0, 0];
        for (h, w) in [(7, 6), (13, 37), (7, 7), (14, 14), (9, 24), (5, 17)] {
            let x: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
            for ([sh, sw], pad, dilation, [kh, kw]) in [
                ([1, 1], 1, 1, [3, 3]),
                ([2, 2], 0, 1, [3, 3]),
                ([2, 2], 2, 2, [3, 3]),
                ([1, 1], 0, 2, [3, 3]),
                ([1, 1], 0, 1, [3, 3]),
                ([1, 1], 2, 1, [3, 3]),
                ([2, 2], 1, 1, [3, 3]),
                ([1, 2], 2, 1, [5, 3]),
                ([3, 1], 1, 1, [3, 5]),
            ] {
                let ho = (h + 2 * pad - dilation * (kh - 1) - 1) / sh + 1;
                let wo = (w + 2 * pad - dilation * (kw - 1) - 1) / sw + 1;
                let g = Window {
                    h,
                    w,
                    ho,
                    wo,
                    kernel: [kh, kw],
                    strides: [sh, sw],
                    pads: [pad, pad],
                    dilations: [dilation, dilation],
                };
                let mut conv = vec![f32::NAN; ho * wo];
                let mut clamped = vec![f32::NAN; ho * wo];
                let plan = Depthwise::new(g);
                fills[plan.phases.whole_vectors as usize] += (dilation == 1) as usize;
                plan.plane(&x, &k, &mut conv, &Post::NONE, &mut Vec::new());
                plan.plane(&x, &k, &mut clamped, &post, &mut Vec::new());
                let mut portable = vec![f32::NAN; ho * wo];
                if dilation == 1 {
                    let mut phases = Vec::new();
                    plan.phases.fill(&x, &plan.window, &mut phases, |from, stride, to, n| {
                        every_nth(from, stride, &mut to[..n])
                    });
                    plan.convolve(&phases, &k, &mut portable, &post);
                    assert_eq!(portable, clamped, "the portable loop agrees: {h}x{w} {sh},{sw} pad {pad} k {kh}x{kw}");
                }
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut sum = 0.0f32;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * sh + ky * dilation) as isize - pad as isize;
                                let ix = (ox * sw + kx * dilation) as isize - pad as isize;
                                if iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize {
                                    sum += x[iy as usize * w + ix as usize] * k[ky * kw + kx];
                                }
                            }
                        }
                        let at = oy * wo + ox;
                        let case = format!("{h}x{w} strides {sh},{sw} pad {pad} dilation {dilation} at {oy},{ox}");
                        assert!((conv[at] - sum).abs() < 1e-4, "{case}: {} vs {sum}", conv[at]);
                        assert!((clamped[at] - (sum + 0.5).clamp(-2.0, 3.0)).abs() < 1e-4, "{case} clamped");
                    }
                }
            }
        }
        assert!(fills[0] > 0 && fills[1] > 10, "both fills ran: {fills:?}");
    }

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
