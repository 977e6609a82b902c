//! Depthwise convolution planes: every tap a contiguous read, four output vectors a step,
//! bias and clamp in registers before the only store.

use super::every_nth;
use super::Window;
#[cfg(target_arch = "x86_64")]
use super::{evens_odds, every_second_avx2};
use crate::gemm::Post;

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
    /// Output columns a step computes: [`DW_LANES`] (AVX2) or [`WIDE_LANES`] (AVX-512, where
    /// the CPU has it and the executor measured it faster for this geometry).
    lanes: usize,
    phases: Phases,
    /// Per tap (row-major over the kernel): its element offset for output (0, 0).
    taps: Vec<usize>,
    /// Every `lanes`-wide output vector, row-major: (offset in a phase, offset in the
    /// output). A row's last vector may run past the row into the next ones, which later
    /// vectors then overwrite; only vectors running past the plane are stored masked.
    vectors: Vec<(u32, u32)>,
    /// One zero input row when the AVX2 path reads the input in place (see
    /// [`Depthwise::in_place_avx2`]), else empty.
    zeros: Vec<f32>,
}

impl Depthwise {
    /// The AVX2 plan ([`DW_LANES`] columns a step).
    pub fn new(window: Window) -> Depthwise {
        Depthwise::with_lanes(window, DW_LANES)
    }

    /// [`WIDE_LANES`] columns a step on AVX-512 CPUs (elsewhere the same as [`Depthwise::new`]).
    pub fn wide(window: Window) -> Depthwise {
        Depthwise::with_lanes(window, WIDE_LANES)
    }

    /// Whether this plan computes [`WIDE_LANES`] columns a step.
    pub fn is_wide(&self) -> bool {
        self.lanes == WIDE_LANES
    }

    fn with_lanes(window: Window, lanes: usize) -> Depthwise {
        let phases = Phases::new(&window, lanes);
        let [kh, kw] = window.kernel;
        let taps = (0..kh * kw).map(|t| phases.tap(t / kw, t % kw)).collect();
        let pitch = phases.pitch;
        let vectors = (0..window.ho)
            .flat_map(|oy| (0..window.wo).step_by(lanes).map(move |ox| (oy * pitch + ox, oy * window.wo + ox)))
            .map(|(from, to)| (from as u32, to as u32))
            .collect();
        // Stride-1 3x3 windows read the input in place (AVX2): `zeros` stands in for the rows
        // above and below the plane.
        let in_place =
            lanes == DW_LANES && window.strides == [1, 1] && window.dilations == [1, 1] && window.kernel == [3, 3];
        let zeros = if in_place { vec![0.0; window.w] } else { Vec::new() };
        Depthwise { window, lanes, phases, taps, vectors, zeros }
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
        if self.lanes == WIDE_LANES && is_x86_feature_detected!("avx512f") {
            // SAFETY: the features were just detected.
            return unsafe { self.plane_avx512(x, k, out, post, scratch) };
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
        self.fill_phases_avx2(x, scratch);
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

    /// The zero-padded, stride-phase-split copies both vector paths convolve.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fill_phases_avx2(&self, x: &[f32], scratch: &mut Vec<f32>) {
        if self.phases.whole_vectors {
            self.phases.fill_avx2(x, &self.window, scratch);
        } else {
            self.phases.fill(x, &self.window, scratch, |from, stride, to, n| {
                let to = &mut to[..n];
                let done = if stride == 2 { every_second_avx2(from, to) } else { 0 };
                every_nth(&from[done * stride..], stride, &mut to[done..]);
            });
        }
    }

    /// [`Depthwise::plane_avx2`] at 16 lanes: the phases filled as there, then every output
    /// vector 512 bits wide.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn plane_avx512(&self, x: &[f32], k: &[f32], out: &mut [f32], post: &Post, scratch: &mut Vec<f32>) {
        self.fill_phases_avx2(x, scratch);
        let taps: Vec<(usize, f32)> = (0..self.taps.len()).map(|t| (self.taps[t], k[t])).collect();
        self.convolve_avx512(&taps, scratch, out, post)
    }

    /// [`Depthwise::convolve_avx2`] at 16 lanes: four output vectors at a time, the last ones
    /// stored under a lane mask where they would run past the plane.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn convolve_avx512(&self, taps: &[(usize, f32)], phases: &[f32], out: &mut [f32], post: &Post) {
        use std::arch::x86_64::*;
        let (bias, lo, hi) = (_mm512_set1_ps(post.bias_at(0, 0)), _mm512_set1_ps(post.lo), _mm512_set1_ps(post.hi));
        let (src, dst) = (phases.as_ptr(), out.as_mut_ptr());
        // maxps / minps with the bound first: a NaN sum stays NaN, as in the AVX2 path.
        let finish = |acc: __m512| _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_add_ps(acc, bias)));
        let store = |a: __m512, to: u32| {
            let (to, lanes) = (to as usize, out.len() - to as usize);
            if lanes >= WIDE_LANES {
                _mm512_storeu_ps(dst.add(to), finish(a))
            } else {
                _mm512_mask_storeu_ps(dst.add(to), ((1u32 << lanes) - 1) as __mmask16, finish(a))
            }
        };
        let weights: Vec<(usize, __m512)> = taps.iter().map(|&(off, w)| (off, _mm512_set1_ps(w))).collect();
        let group = |group: &[(u32, u32)]| {
            let mut acc = [_mm512_setzero_ps(); 4];
            let from: [*const f32; 4] = std::array::from_fn(|i| src.add(group[i.min(group.len() - 1)].0 as usize));
            for &(off, w) in &weights {
                for (a, f) in acc.iter_mut().zip(from).take(group.len()) {
                    *a = _mm512_fmadd_ps(_mm512_loadu_ps(f.add(off)), w, *a);
                }
            }
            // In row order: a vector running past its row is overwritten by the next.
            for (a, &(_, to)) in acc.into_iter().zip(group) {
                store(a, to);
            }
        };
        for four in self.vectors.chunks(4) {
            group(four);
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

/// Output columns an AVX-512 step computes.
const WIDE_LANES: usize = 16;

impl Phases {
    /// The phases of `g` for steps of `lanes` output columns.
    fn new(g: &Window, lanes: usize) -> Phases {
        let [kh, kw] = g.kernel;
        let [sh, sw] = g.strides;
        let rows = ((g.ho.max(1) - 1) * sh + kh).div_ceil(sh);
        let pitch = g.wo.div_ceil(lanes) * lanes + (kw - 1) / sw;
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
        if scratch.len() != self.len() + WIDE_LANES {
            scratch.clear();
            scratch.resize(self.len() + WIDE_LANES, 0.0);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depthwise_planes_match_a_direct_loop() {
        let k: Vec<f32> = (0..15).map(|i| i as f32 * 0.25 - 1.0).collect();
        let post = Post { scale: 1.0, bias: crate::gemm::Bias::Rows(&[0.5]), residual: None, lo: -2.0, hi: 3.0 };
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
                // 8 columns a step, and 16 (AVX-512 where the CPU has it, else the same as 8).
                for plan in [Depthwise::new(g.clone()), Depthwise::wide(g.clone())] {
                    let mut conv = vec![f32::NAN; ho * wo];
                    let mut clamped = vec![f32::NAN; ho * wo];
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
                        assert_eq!(
                            portable, clamped,
                            "the portable loop agrees: {h}x{w} {sh},{sw} pad {pad} k {kh}x{kw}"
                        );
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
                            let lanes = plan.lanes;
                            let case = format!(
                                "{h}x{w} strides {sh},{sw} pad {pad} dilation {dilation} at {oy},{ox}, {lanes} lanes"
                            );
                            assert!((conv[at] - sum).abs() < 1e-4, "{case}: {} vs {sum}", conv[at]);
                            assert!((clamped[at] - (sum + 0.5).clamp(-2.0, 3.0)).abs() < 1e-4, "{case} clamped");
                        }
                    }
                }
            }
        }
        assert!(fills[0] > 0 && fills[1] > 10, "both fills ran: {fills:?}");
    }
}
