//! Depthwise convolution over blocks of channels: a block's planes interleaved, so one vector
//! holds one pixel of every channel of the block and every tap is one full-width
//! multiply-add, however narrow the plane. A plane of 7 to 28 columns (the later stages of
//! MobileNet, EfficientNet and ConvNeXt) fills vectors of its own columns badly; a vector of
//! channels is always full.
//!
//! A block is interleaved into a zero-padded scratch, convolved there (eight output pixels a
//! step, each tap's weights loaded once for all eight), and de-interleaved into its output
//! planes with the bias and clamp applied; both moves are in-register transposes of
//! `lanes x lanes` tiles over the planes' pixels in order.

use super::Window;
#[cfg(target_arch = "x86_64")]
use crate::vmath::Lanes;
use std::cell::RefCell;

/// A depthwise convolution's plan over blocks of [`ChannelBlocked::lanes`] channels.
pub struct ChannelBlocked {
    window: Window,
    lanes: usize,
    /// Rows and columns of the padded block: every cell some output reads.
    hp: usize,
    wp: usize,
    /// Per input pixel (row-major), its cell in the padded block.
    cells: Vec<u32>,
    /// The padding cells (those no input pixel fills): zeroed before each block.
    padding: Vec<u32>,
}

/// A block's working memory (the thread's [`SCRATCH`]) and its epilogue.
struct Scratch<'s> {
    padded: &'s mut [f32],
    weights: &'s [f32],
    bias: &'s [f32],
    lo: f32,
    hi: f32,
    result: &'s mut [f32],
}

thread_local! {
    /// Per thread: the padded block, the output block and the interleaved taps.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl ChannelBlocked {
    /// The plan at the widest vector the CPU has (16 channels with AVX-512, else 8), or `None`
    /// where the CPU has neither AVX-512 nor AVX2 with FMA.
    pub fn new(window: Window) -> Option<ChannelBlocked> {
        Some(ChannelBlocked::with_lanes(window, widest_lanes()?))
    }

    /// The plan for blocks of `lanes` channels: 16 needs AVX-512, 8 AVX2 and FMA.
    fn with_lanes(window: Window, lanes: usize) -> ChannelBlocked {
        let g = &window;
        let [kh, kw] = g.kernel;
        let [sh, sw] = g.strides;
        let [dh, dw] = g.dilations;
        let [top, left] = g.pads;
        let reach =
            |out: usize, stride: usize, k: usize, dilation: usize| (out.max(1) - 1) * stride + (k - 1) * dilation + 1;
        let hp = (top + g.h).max(reach(g.ho, sh, kh, dh));
        let wp = (left + g.w).max(reach(g.wo, sw, kw, dw));
        let cells: Vec<u32> =
            (0..g.h).flat_map(|iy| (0..g.w).map(move |ix| ((iy + top) * wp + ix + left) as u32)).collect();
        let mut filled = vec![false; hp * wp];
        for &c in &cells {
            filled[c as usize] = true;
        }
        let padding = (0..hp * wp).filter(|&c| !filled[c]).map(|c| c as u32).collect();
        ChannelBlocked { window, lanes, hp, wp, cells, padding }
    }

    /// Channels a block holds.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// One block of `channels <= lanes` channels: `x` their input planes (`h * w` each, one
    /// after another), `k` their taps (`kh * kw` each), `out` their output planes; `bias` per
    /// channel, then the result clamped to `[lo, hi]`.
    pub fn block(&self, x: &[f32], k: &[f32], out: &mut [f32], channels: usize, bias: &[f32], (lo, hi): (f32, f32)) {
        let g = &self.window;
        let (taps, hw, out_hw) = (g.kernel[0] * g.kernel[1], g.h * g.w, g.ho * g.wo);
        assert!(
            channels <= self.lanes
                && x.len() >= channels * hw
                && k.len() >= channels * taps
                && out.len() >= channels * out_hw
                && bias.len() >= channels,
            "ChannelBlocked::block: the block does not fit its plan"
        );
        if channels == 0 || out_hw == 0 {
            return;
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let l = self.lanes;
            let need = (self.hp * self.wp + out_hw + taps + 1) * l;
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
            let (padded, rest) = scratch.split_at_mut(self.hp * self.wp * l);
            let (result, rest) = rest.split_at_mut(out_hw * l);
            let (weights, lane_bias) = rest.split_at_mut(taps * l);
            for (t, w) in weights.chunks_exact_mut(l).enumerate() {
                for (c, w) in w.iter_mut().enumerate() {
                    *w = if c < channels { k[c * taps + t] } else { 0.0 };
                }
            }
            for (c, b) in lane_bias[..l].iter_mut().enumerate() {
                *b = if c < channels { bias[c] } else { 0.0 };
            }
            let scratch = Scratch { padded, weights, bias: &lane_bias[..l], lo, hi, result };
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the plan's lanes were chosen for features this CPU has; every buffer has
            // the size the steps read and write (checked and sized above).
            unsafe {
                if l == 16 {
                    return self.run_avx512(x, channels, scratch, out);
                }
                self.run_avx2(x, channels, scratch, out)
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("no channel-blocked plan without AVX2 or AVX-512 ({} lanes)", scratch.bias.len())
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(&self, x: &[f32], channels: usize, s: Scratch, out: &mut [f32]) {
        use crate::vmath::Avx512;
        self.interleave::<Avx512, 16>(x, channels, s.padded, |t| transpose16(t));
        self.convolve::<Avx512, 16>(s.padded, s.weights, s.bias, (s.lo, s.hi), s.result);
        self.deinterleave::<Avx512, 16>(s.result, channels, out, |t| transpose16(t));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, x: &[f32], channels: usize, s: Scratch, out: &mut [f32]) {
        use crate::vmath::Avx2;
        self.interleave::<Avx2, 8>(x, channels, s.padded, |t| transpose8(t));
        self.convolve::<Avx2, 8>(s.padded, s.weights, s.bias, (s.lo, s.hi), s.result);
        self.deinterleave::<Avx2, 8>(s.result, channels, out, |t| transpose8(t));
    }

    /// The block's input planes into the padded block: `L` pixels of every plane at a time,
    /// transposed into `L` pixel vectors; padding cells zero, lanes past `channels` zero.
    /// (Loops over a tile run to the constant `L`, so the tile stays in registers.)
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn interleave<V: Lanes, const L: usize>(
        &self,
        x: &[f32],
        channels: usize,
        padded: &mut [f32],
        transpose: impl Fn([V; L]) -> [V; L],
    ) {
        let hw = self.window.h * self.window.w;
        let (src, dst) = (x.as_ptr(), padded.as_mut_ptr());
        for &cell in &self.padding {
            V::splat(0.0).store(dst.add(cell as usize * L));
        }
        for (t, cells) in self.cells.chunks(L).enumerate() {
            let (q, n) = (t * L, cells.len());
            let mut tile = [V::splat(0.0); L];
            for (c, row) in tile.iter_mut().enumerate() {
                if c < channels {
                    *row = if n == L { V::load(src.add(c * hw + q)) } else { V::load_first(src.add(c * hw + q), n) };
                }
            }
            let tile = transpose(tile);
            for (p, pixel) in tile.iter().enumerate() {
                if p < n {
                    pixel.store(dst.add(cells[p] as usize * L));
                }
            }
        }
    }

    /// Every output pixel of the block: eight at a time along a row (the last eight of a row
    /// overlap the ones before them), each tap's weight vector loaded once for the eight.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn convolve<V: Lanes, const L: usize>(
        &self,
        padded: &[f32],
        weights: &[f32],
        bias: &[f32],
        (lo, hi): (f32, f32),
        result: &mut [f32],
    ) {
        let g = &self.window;
        let (src, w, dst) = (padded.as_ptr(), weights.as_ptr(), result.as_mut_ptr());
        let bias = V::load(bias.as_ptr());
        let clamped = lo > f32::NEG_INFINITY || hi < f32::INFINITY;
        let step = Step { g, wp: self.wp, lanes: L, bias, lo, hi, clamped };
        for oy in 0..g.ho {
            let rows = src.add(oy * g.strides[0] * self.wp * L);
            let to = dst.add(oy * g.wo * L);
            macro_rules! row {
                ($r:literal) => {{
                    let mut ox = 0;
                    loop {
                        let start = ox.min(g.wo - $r);
                        step.pixels::<$r>(rows, w, to, start);
                        if start + $r >= g.wo {
                            break;
                        }
                        ox += $r;
                    }
                }};
            }
            match g.wo {
                1 => row!(1),
                2 => row!(2),
                3 => row!(3),
                4 => row!(4),
                5 => row!(5),
                6 => row!(6),
                7 => row!(7),
                _ => row!(8),
            }
        }
    }

    /// The result block into the output planes: `L` pixel vectors at a time, transposed into
    /// `L` pixels of every plane.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn deinterleave<V: Lanes, const L: usize>(
        &self,
        result: &[f32],
        channels: usize,
        out: &mut [f32],
        transpose: impl Fn([V; L]) -> [V; L],
    ) {
        let hw = self.window.ho * self.window.wo;
        let (src, dst) = (result.as_ptr(), out.as_mut_ptr());
        for q in (0..hw).step_by(L) {
            let n = (hw - q).min(L);
            let mut tile = [V::splat(0.0); L];
            for (p, pixel) in tile.iter_mut().enumerate() {
                if p < n {
                    *pixel = V::load(src.add((q + p) * L));
                }
            }
            let tile = transpose(tile);
            for (c, row) in tile.iter().enumerate() {
                if c < channels {
                    if n == L {
                        row.store(dst.add(c * hw + q));
                    } else {
                        row.store_first(dst.add(c * hw + q), n);
                    }
                }
            }
        }
    }
}

/// What computing a run of output pixels needs: the geometry and the epilogue's registers.
#[cfg(target_arch = "x86_64")]
struct Step<'g, V> {
    g: &'g Window,
    wp: usize,
    lanes: usize,
    bias: V,
    lo: f32,
    hi: f32,
    clamped: bool,
}

#[cfg(target_arch = "x86_64")]
impl<V: Lanes> Step<'_, V> {
    /// Output pixels `start..start + R` of the row whose window rows start at `rows`.
    #[inline(always)]
    unsafe fn pixels<const R: usize>(&self, rows: *const f32, weights: *const f32, to: *mut f32, start: usize) {
        let (g, l) = (self.g, self.lanes);
        let [kh, kw] = g.kernel;
        let (sw, dh, dw) = (g.strides[1], g.dilations[0], g.dilations[1]);
        let mut acc = [V::splat(0.0); R];
        for ky in 0..kh {
            let row = rows.add(ky * dh * self.wp * l);
            for kx in 0..kw {
                let w = V::load(weights.add((ky * kw + kx) * l));
                let first = row.add((kx * dw + start * sw) * l);
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = V::load(first.add(j * sw * l)).mul_add(w, *a);
                }
            }
        }
        for (j, a) in acc.into_iter().enumerate() {
            let v = a.add(self.bias);
            let v = if self.clamped { crate::vmath::clamp(v, self.lo, self.hi) } else { v };
            v.store(to.add((start + j) * l));
        }
    }
}

/// Lanes a block holds on this CPU: 16 with AVX-512, 8 with AVX2 and FMA.
fn widest_lanes() -> Option<usize> {
    match crate::vmath::isa() {
        "avx512f" => Some(16),
        "avx2+fma" => Some(8),
        _ => None,
    }
}

/// A 16 x 16 tile transposed in registers: lane `j` of row `i` becomes lane `i` of row `j`.
/// Pairs of rows interleaved, then pairs of pairs (each 128-bit lane then holds four rows of
/// one column), then the 128-bit lanes gathered. Written out step by step: built with
/// closures over indices, the steps were not unrolled and went through memory.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transpose16(rows: [crate::vmath::Avx512; 16]) -> [crate::vmath::Avx512; 16] {
    use std::arch::x86_64::*;
    macro_rules! pairs {
        ($lo:path, $hi:path, $src:expr, $a:literal, $b:literal) => {
            ($lo($src[$a], $src[$b]), $hi($src[$a], $src[$b]))
        };
    }
    let r: [__m512; 16] = [
        rows[0].0, rows[1].0, rows[2].0, rows[3].0, rows[4].0, rows[5].0, rows[6].0, rows[7].0, rows[8].0, rows[9].0,
        rows[10].0, rows[11].0, rows[12].0, rows[13].0, rows[14].0, rows[15].0,
    ];
    let (t0, t1) = pairs!(_mm512_unpacklo_ps, _mm512_unpackhi_ps, r, 0, 1);
    let (t2, t3) = pairs!(_mm512_unpacklo_ps, _mm512_unpackhi_ps, r, 2, 3);
    let (t4, t5) = pairs!(_mm512_unpacklo_ps, _mm512_unpackhi_ps, r, 4, 5);
    let (t6, t7) = pairs!(_mm512_unpacklo_ps, _mm512_unpackhi_ps, r, 6, 7);
    let (t8, t9) = pairs!(_mm512_unpacklo_ps, _mm512_unpackhi_ps, r, 8, 9);
    let (t10, t11) = pairs!(_mm512_unpacklo_ps, _mm512_unpackhi_ps, r, 10, 11);
    let (t12, t13) = pairs!(_mm512_unpacklo_ps, _mm512_unpackhi_ps, r, 12, 13);
    let (t14, t15) = pairs!(_mm512_unpacklo_ps, _mm512_unpackhi_ps, r, 14, 15);
    // Per 128-bit lane L: u[4i + c] holds rows 4i..4i + 4 of column 4L + c.
    let even = |a, b| _mm512_shuffle_ps::<0x44>(a, b);
    let odd = |a, b| _mm512_shuffle_ps::<0xEE>(a, b);
    let u = [
        even(t0, t2),
        odd(t0, t2),
        even(t1, t3),
        odd(t1, t3),
        even(t4, t6),
        odd(t4, t6),
        even(t5, t7),
        odd(t5, t7),
        even(t8, t10),
        odd(t8, t10),
        even(t9, t11),
        odd(t9, t11),
        even(t12, t14),
        odd(t12, t14),
        even(t13, t15),
        odd(t13, t15),
    ];
    let mut out = rows;
    for c in 0..4 {
        let (x0, x1) = (_mm512_shuffle_f32x4::<0x44>(u[c], u[4 + c]), _mm512_shuffle_f32x4::<0xEE>(u[c], u[4 + c]));
        let (y0, y1) =
            (_mm512_shuffle_f32x4::<0x44>(u[8 + c], u[12 + c]), _mm512_shuffle_f32x4::<0xEE>(u[8 + c], u[12 + c]));
        out[c].0 = _mm512_shuffle_f32x4::<0x88>(x0, y0);
        out[4 + c].0 = _mm512_shuffle_f32x4::<0xDD>(x0, y0);
        out[8 + c].0 = _mm512_shuffle_f32x4::<0x88>(x1, y1);
        out[12 + c].0 = _mm512_shuffle_f32x4::<0xDD>(x1, y1);
    }
    out
}

/// An 8 x 8 tile transposed in registers, as [`transpose16`] with two 128-bit lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transpose8(rows: [crate::vmath::Avx2; 8]) -> [crate::vmath::Avx2; 8] {
    use std::arch::x86_64::*;
    let r = [rows[0].0, rows[1].0, rows[2].0, rows[3].0, rows[4].0, rows[5].0, rows[6].0, rows[7].0];
    let (t0, t1) = (_mm256_unpacklo_ps(r[0], r[1]), _mm256_unpackhi_ps(r[0], r[1]));
    let (t2, t3) = (_mm256_unpacklo_ps(r[2], r[3]), _mm256_unpackhi_ps(r[2], r[3]));
    let (t4, t5) = (_mm256_unpacklo_ps(r[4], r[5]), _mm256_unpackhi_ps(r[4], r[5]));
    let (t6, t7) = (_mm256_unpacklo_ps(r[6], r[7]), _mm256_unpackhi_ps(r[6], r[7]));
    let even = |a, b| _mm256_shuffle_ps::<0x44>(a, b);
    let odd = |a, b| _mm256_shuffle_ps::<0xEE>(a, b);
    let u =
        [even(t0, t2), odd(t0, t2), even(t1, t3), odd(t1, t3), even(t4, t6), odd(t4, t6), even(t5, t7), odd(t5, t7)];
    let mut out = rows;
    for c in 0..4 {
        out[c].0 = _mm256_permute2f128_ps::<0x20>(u[c], u[4 + c]);
        out[4 + c].0 = _mm256_permute2f128_ps::<0x31>(u[c], u[4 + c]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct loop: bias, then the clamp.
    fn direct(g: &Window, x: &[f32], k: &[f32], bias: f32, lo: f32, hi: f32) -> Vec<f32> {
        let [kh, kw] = g.kernel;
        let mut out = Vec::with_capacity(g.ho * g.wo);
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let mut sum = 0.0f32;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let iy = (oy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                        let ix = (ox * g.strides[1] + kx * g.dilations[1]) as isize - g.pads[1] as isize;
                        if (0..g.h as isize).contains(&iy) && (0..g.w as isize).contains(&ix) {
                            sum = x[iy as usize * g.w + ix as usize].mul_add(k[ky * kw + kx], sum);
                        }
                    }
                }
                out.push((sum + bias).clamp(lo, hi));
            }
        }
        out
    }

    /// Blocks of every channel count up to the lanes, over windows of every kind (narrow and
    /// wide planes, strides, dilations, uneven padding, rows shorter than a step), match the
    /// direct loop; planes past the block are not written.
    #[test]
    fn small_channel_blocks_match_the_direct_loop() {
        let mut widths = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                widths.push(8);
            }
            if is_x86_feature_detected!("avx512f") {
                widths.push(16);
            }
        }
        for lanes in widths {
            blocks_match_the_direct_loop(lanes);
        }
    }

    fn blocks_match_the_direct_loop(lanes: usize) {
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 9) as f32 / (1u32 << 23) as f32 - 0.5
        };
        // Under Miri (minutes a block) a few windows and one partial block.
        let windows = [
            (7, 7, [5, 5], [1, 1], [2, 2], [1, 1]),
            (9, 11, [3, 3], [2, 2], [1, 1], [1, 1]),
            (6, 19, [3, 3], [1, 1], [1, 1], [1, 1]),
            (5, 4, [3, 5], [1, 2], [0, 2], [1, 1]),
            (8, 8, [3, 3], [1, 1], [2, 2], [2, 2]),
            (3, 2, [3, 3], [1, 1], [1, 1], [1, 1]),
            (10, 9, [7, 7], [2, 1], [3, 3], [1, 1]),
        ];
        let few = cfg!(miri);
        for (i, &(h, w, [kh, kw], [sh, sw], [pt, pl], [dh, dw])) in windows.iter().enumerate() {
            if few && ![1, 3, 4].contains(&i) {
                continue;
            }
            let ho = (h + 2 * pt - dh * (kh - 1) - 1) / sh + 1;
            let wo = (w + 2 * pl - dw * (kw - 1) - 1) / sw + 1;
            let g = Window { h, w, ho, wo, kernel: [kh, kw], strides: [sh, sw], pads: [pt, pl], dilations: [dh, dw] };
            let plan = ChannelBlocked::with_lanes(g.clone(), lanes);
            let counts = if few { vec![lanes - 3] } else { vec![lanes, 1, lanes - 3] };
            for channels in counts {
                let x: Vec<f32> = (0..channels * h * w).map(|_| next()).collect();
                let k: Vec<f32> = (0..channels * kh * kw).map(|_| next()).collect();
                let bias: Vec<f32> = (0..channels).map(|_| next()).collect();
                for (lo, hi) in [(f32::NEG_INFINITY, f32::INFINITY), (-0.2, 0.3)] {
                    let mut out = vec![f32::NAN; (channels + 1) * ho * wo];
                    plan.block(&x, &k, &mut out, channels, &bias, (lo, hi));
                    for c in 0..channels {
                        let want = direct(&g, &x[c * h * w..], &k[c * kh * kw..], bias[c], lo, hi);
                        let got = &out[c * ho * wo..][..ho * wo];
                        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                (a - b).abs() <= 1e-5,
                                "{lanes} lanes, {h}x{w} k{kh}x{kw} s{sh}x{sw} p{pt}x{pl} d{dh}x{dw}, channel {c} of {channels}, at {i}: {a} vs {b}"
                            );
                        }
                    }
                    assert!(out[channels * ho * wo..].iter().all(|v| v.is_nan()), "wrote past the block");
                }
            }
        }
    }
}
