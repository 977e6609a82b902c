//! Convolutions with 8-bit integer products (`smelt.quantized_conv2d`).
//!
//! The input is quantized once per image onto its 8-bit grid, into a padded channels-last
//! buffer of unsigned bytes (an int8 grid shifted by 128, its zero point with it; padding holds
//! the zero point). There is no im2col: a tile of [`PIXELS`] output pixels of one row by
//! [`CHANNELS`] output channels reads, for each tap and each group of four input channels, one
//! 32-bit word per pixel straight from that buffer, broadcast against a vector of the packed
//! weights (four int8 taps per output channel, the `vpdpbusd` layout). Sums are exact in i32;
//! the zero point is taken out per output channel (`zero * sum of the channel's weights`, the
//! padding included since it holds the zero point), then scaled to f32 and stored in NCHW,
//! where the anchor's epilogue (bias, activation, residual, the next quantize round trip) runs
//! on each finished row of the tile's channels.
//!
//! Kernels, one module per ISA, chosen at run time: AVX-512 VNNI ([`avx512`]), AVX2's exact
//! 16-bit products ([`avx2`]), or portable code on the same layout ([`portable`]).

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

use super::Window;
use crate::workers::{parallel_ranges, Shared};

/// Output channels per weight panel (two 16-lane vectors of i32 sums).
pub const CHANNELS: usize = 32;
/// Output pixels per tile, along one output row.
pub const PIXELS: usize = 12;

/// A grid results are rounded to before they are stored: `clamp(round(v / scale), lo, hi) *
/// scale`, the quantize-dequantize pair that follows a QDQ convolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    pub scale: f32,
    pub lo: f32,
    pub hi: f32,
}

/// Where a tile's results go: `(sum - zero * sum of weights) * scale` of channel `c` and pixel
/// `p` to `y[c * channel_stride + p * pixel_stride]`, for the first `channels` channels of the
/// panel (NCHW: pixels 1 apart; a matrix product's rows: channels 1 apart).
#[derive(Clone, Copy)]
pub(crate) struct TileOut {
    pub y: *mut f32,
    pub channel_stride: usize,
    pub pixel_stride: usize,
    pub channels: usize,
    /// Per channel of the panel: `x_scale * w_scale`, and the zero point's share times it.
    pub scale: *const f32,
    pub offset: *const f32,
    pub grid: Option<Grid>,
}

impl TileOut {
    /// The result for `sum`, the integer sum of channel `c`.
    ///
    /// # Safety
    /// `c` is below `channels`.
    #[inline(always)]
    pub(crate) unsafe fn finish(&self, sum: i32, c: usize) -> f32 {
        let v = sum as f32 * *self.scale.add(c) + *self.offset.add(c);
        match self.grid {
            None => v,
            Some(g) => (v / g.scale).round_ties_even().clamp(g.lo, g.hi) * g.scale,
        }
    }
}

/// One tile: `(x, pixel_step, taps, quads, w, pixels, out)`.
type TileFn = unsafe fn(*const u8, usize, &[usize], usize, *const i8, usize, &TileOut);

/// One input row onto the grid: `(x, plane, (width, column_step), channels, x_scale, zero,
/// staged, pixel_bytes)`.
type StageFn = unsafe fn(*const f32, usize, (usize, usize), usize, f32, f32, *mut u8, usize);

/// One matrix row onto the grid, its elements to consecutive bytes: `(x, len, x_scale, zero,
/// staged)`.
type StageRowFn = unsafe fn(*const f32, usize, f32, f32, *mut u8);

/// A convolution planned for integer products: weights packed, per-channel factors computed.
pub struct Int8Conv {
    /// The window the tiles run: a 1x1 convolution with strides runs unstrided on the pixels
    /// it samples, which alone are staged.
    window: Window,
    /// The input's rows and columns, and every how many of them are staged.
    input: [usize; 2],
    sample: [usize; 2],
    in_channels: usize,
    out_channels: usize,
    /// Input channels in groups of four (the last padded with zero weights).
    quads: usize,
    /// Per panel of [`CHANNELS`] output channels: `[tap][quad][channel][4]` int8.
    weights: Vec<i8>,
    /// Per output channel: `x_scale * w_scale`.
    scale: Vec<f32>,
    /// Per output channel: `-zero * sum of weights * scale`, plus the bias.
    offset: Vec<f32>,
    grid: Option<Grid>,
    x_scale: f32,
    /// The zero point on the unsigned grid (an int8 grid's plus 128).
    zero: u8,
    tile: TileFn,
    stage_row: StageFn,
    stage_matrix_row: StageRowFn,
    pub isa: &'static str,
}

/// The padded channels-last input: `[row][column][quad * 4]` bytes.
struct Staged {
    data: Vec<u8>,
    row_bytes: usize,
    pixel_bytes: usize,
}

impl Int8Conv {
    /// Sums of `weights` (`[out][in][kh][kw]`, int8) over `in * kh * kw` must fit in i32:
    /// at most this many taps per output (255 * 128 per tap).
    pub const MAX_REDUCTION: usize = 65_000;

    /// The plan for a convolution of `window` from `in_channels` to `out_channels` with int8
    /// `weights`, input grid (`x_scale`, `zero`, `signed` for an int8 grid), and weight scales
    /// (`w_scale`: one, or one per output channel).
    pub fn new(
        window: Window,
        (in_channels, out_channels): (usize, usize),
        weights: &[i8],
        (x_scale, zero, signed): (f32, i64, bool),
        w_scale: &[f32],
    ) -> Int8Conv {
        let input = [window.h, window.w];
        let pointwise = window.kernel == [1, 1] && window.pads == [0, 0] && window.strides != [1, 1];
        let (window, sample) = if pointwise {
            let (ho, wo) = (window.ho, window.wo);
            let unstrided =
                Window { h: ho, w: wo, ho, wo, kernel: [1, 1], strides: [1, 1], pads: [0, 0], dilations: [1, 1] };
            (unstrided, window.strides)
        } else {
            (window, [1, 1])
        };
        let [kh, kw] = window.kernel;
        let taps = kh * kw;
        let quads = in_channels.div_ceil(4);
        let panels = out_channels.div_ceil(CHANNELS);
        let mut packed = vec![0i8; panels * taps * quads * CHANNELS * 4];
        let mut sums = vec![0i64; out_channels];
        for (o, sum) in sums.iter_mut().enumerate() {
            let (panel, lane) = (o / CHANNELS, o % CHANNELS);
            for c in 0..in_channels {
                for t in 0..taps {
                    let w = weights[(o * in_channels + c) * taps + t];
                    *sum += w as i64;
                    let at = (((panel * taps + t) * quads + c / 4) * CHANNELS + lane) * 4 + c % 4;
                    packed[at] = w;
                }
            }
        }
        let shift = if signed { 128 } else { 0 };
        let zero = (zero + shift) as u8;
        let scale: Vec<f32> =
            (0..out_channels).map(|o| x_scale * w_scale[if w_scale.len() == 1 { 0 } else { o }]).collect();
        let offset = sums.iter().zip(&scale).map(|(&s, &k)| -((zero as i64 * s) as f32) * k).collect();
        let (tile, stage_row, stage_matrix_row, isa) = kernel();
        Int8Conv {
            window,
            input,
            sample,
            in_channels,
            out_channels,
            quads,
            weights: packed,
            scale,
            offset,
            x_scale,
            zero,
            grid: None,
            tile,
            stage_row,
            stage_matrix_row,
            isa,
        }
    }

    /// Adds `bias` (one per output channel) to every result, then rounds it to `grid`.
    pub fn finish_in_tile(&mut self, bias: Option<&[f32]>, grid: Option<Grid>) {
        if let Some(bias) = bias {
            for (o, b) in self.offset.iter_mut().zip(bias) {
                *o += b;
            }
        }
        self.grid = grid;
    }

    /// The plan for a matrix product `a [M, K] x b [K, N]` with int8 `b_transposed` ([N, K]):
    /// a 1x1 convolution whose pixels are a's rows and whose channels are its columns.
    pub fn matrix(k: usize, n: usize, b_transposed: &[i8], grid: (f32, i64, bool), b_scale: &[f32]) -> Int8Conv {
        let window =
            Window { h: 1, w: 1, ho: 1, wo: 1, kernel: [1, 1], strides: [1, 1], pads: [0, 0], dilations: [1, 1] };
        Int8Conv::new(window, (k, n), b_transposed, grid, b_scale)
    }

    /// Runs a matrix plan on `rows` rows of `a` ([rows, K] f32) into `y` ([rows, N]);
    /// `epilogue(row0, rows, col0, cols)` runs on each finished block of y.
    ///
    /// # Safety
    /// `a` and `y` hold `rows` rows of the planned widths.
    pub unsafe fn run_matrix(
        &self,
        a: &[f32],
        rows: usize,
        y: *mut f32,
        epilogue: &(dyn Fn(usize, usize, usize, usize) + Sync),
    ) {
        let (k, n) = (self.in_channels, self.out_channels);
        let pixel_bytes = self.quads * 4;
        let mut staged = vec![self.zero; rows * pixel_bytes];
        let to = Shared(staged.as_mut_ptr());
        parallel_ranges(rows, 64, |range| {
            for r in range {
                // SAFETY: row r of a and of the staged copy; workers write disjoint rows.
                unsafe {
                    (self.stage_matrix_row)(
                        a[r * k..].as_ptr(),
                        k,
                        self.x_scale,
                        self.zero as f32,
                        to.get().add(r * pixel_bytes),
                    )
                };
            }
        });
        let (panels, tiles) = (n.div_ceil(CHANNELS), rows.div_ceil(PIXELS));
        let out = Shared(y);
        // Units of one panel by one tile of rows, panel-major: a worker keeps its panel's
        // weights in cache over consecutive tiles.
        parallel_ranges(panels * tiles, 4, |units| {
            for unit in units {
                let (panel, tile) = (unit / tiles, unit % tiles);
                let (c0, r0) = (panel * CHANNELS, tile * PIXELS);
                let (channels, pixels) = (CHANNELS.min(n - c0), PIXELS.min(rows - r0));
                let w = self.weights[panel * self.quads * CHANNELS * 4..].as_ptr();
                let to = TileOut {
                    y: out.get().add(r0 * n + c0),
                    channel_stride: 1,
                    pixel_stride: n,
                    channels,
                    scale: self.scale[c0..].as_ptr(),
                    offset: self.offset[c0..].as_ptr(),
                    grid: self.grid,
                };
                (self.tile)(staged.as_ptr().add(r0 * pixel_bytes), pixel_bytes, &[0], self.quads, w, pixels, &to);
                epilogue(r0, pixels, c0, channels);
            }
        });
    }

    /// Quantizes one image `x` (`[in][h][w]` f32) into the padded channels-last buffer.
    fn stage(&self, x: &[f32]) -> Staged {
        let g = &self.window;
        let [kh, kw] = g.kernel;
        // Rows and columns every window may read, padding included.
        let rows = ((g.ho - 1) * g.strides[0] + (kh - 1) * g.dilations[0] + 1).max(g.pads[0] + g.h);
        let width = ((g.wo - 1) * g.strides[1] + (kw - 1) * g.dilations[1] + 1).max(g.pads[1] + g.w);
        let pixel_bytes = self.quads * 4;
        let row_bytes = width * pixel_bytes;
        let mut data = vec![self.zero; rows * row_bytes];
        let out = Shared(data.as_mut_ptr());
        let ([h, w], [sh, sw]) = (self.input, self.sample);
        let (hw, zero) = (h * w, self.zero as f32);
        // Rows of the input split over the workers; each writes its own rows of the buffer.
        parallel_ranges(g.h, 8, |range| {
            for y in range {
                let row = (y + g.pads[0]) * row_bytes + g.pads[1] * pixel_bytes;
                // SAFETY: row y * sh of every channel lies in x, and its columns up to
                // (g.w - 1) * sw; its pixels in the buffer sized above; workers write
                // disjoint rows.
                unsafe {
                    let src = x[y * sh * w..].as_ptr();
                    debug_assert!(x.len() > (self.in_channels - 1) * hw + y * sh * w + (g.w - 1) * sw);
                    (self.stage_row)(
                        src,
                        hw,
                        (g.w, sw),
                        self.in_channels,
                        self.x_scale,
                        zero,
                        out.get().add(row),
                        pixel_bytes,
                    );
                }
            }
        });
        Staged { data, row_bytes, pixel_bytes }
    }

    /// Runs on one image: `x` is `[in][h][w]`, `y` `[out][ho][wo]`; `epilogue(c0, channels,
    /// column, columns)` runs on each finished block of y's `[out][ho * wo]` view.
    ///
    /// # Safety
    /// `x` and `y` hold the image and the output of the planned shapes.
    pub unsafe fn run(&self, x: &[f32], y: *mut f32, epilogue: &(dyn Fn(usize, usize, usize, usize) + Sync)) {
        let staged = self.stage(x);
        let g = &self.window;
        let [kh, kw] = g.kernel;
        let taps: Vec<usize> = (0..kh * kw)
            .map(|t| (t / kw) * g.dilations[0] * staged.row_bytes + (t % kw) * g.dilations[1] * staged.pixel_bytes)
            .collect();
        let panels = self.out_channels.div_ceil(CHANNELS);
        let hw = g.ho * g.wo;
        let pixel_step = g.strides[1] * staged.pixel_bytes;
        let out = Shared(y);
        // Units of one panel by one output row, split over the workers: a worker keeps its
        // panel's weights in cache over consecutive rows.
        parallel_ranges(panels * g.ho, 4, |units| {
            for unit in units {
                let (panel, oy) = (unit / g.ho, unit % g.ho);
                let c0 = panel * CHANNELS;
                let channels = CHANNELS.min(self.out_channels - c0);
                let w = self.weights[panel * taps.len() * self.quads * CHANNELS * 4..].as_ptr();
                let row = staged.data.as_ptr().add(oy * g.strides[0] * staged.row_bytes);
                let mut ox = 0;
                while ox < g.wo {
                    let pixels = PIXELS.min(g.wo - ox);
                    let to = TileOut {
                        y: out.get().add(c0 * hw + oy * g.wo + ox),
                        channel_stride: hw,
                        pixel_stride: 1,
                        channels,
                        scale: self.scale[c0..].as_ptr(),
                        offset: self.offset[c0..].as_ptr(),
                        grid: self.grid,
                    };
                    (self.tile)(row.add(ox * pixel_step), pixel_step, &taps, self.quads, w, pixels, &to);
                    ox += pixels;
                }
                epilogue(c0, channels, oy * g.wo, g.wo);
            }
        });
    }
}

/// QuantizeLinear with one scale and zero point: `saturate(round_half_even(x / scale) + zero)`
/// into bytes of the grid's type (`signed`: i8, else u8), at the CPU's full width.
pub fn quantize(x: &[f32], scale: f32, zero: i64, signed: bool, out: &mut [u8]) {
    let (_, _, stage, _) = kernel();
    let shift = if signed { 128 } else { 0 };
    let chunk = 1 << 14;
    let to = Shared(out.as_mut_ptr());
    parallel_ranges(x.len().div_ceil(chunk), 4, |range| {
        for c in range {
            let (start, end) = (c * chunk, ((c + 1) * chunk).min(x.len()));
            // SAFETY: elements start..end of x and out; workers take disjoint chunks.
            unsafe {
                let out = to.get().add(start);
                stage(x[start..].as_ptr(), end - start, scale, (zero + shift) as f32, out);
                if signed {
                    // The unsigned grid shifted back: u - 128 as a two's-complement byte; NaN
                    // is 0, as the reference semantics convert it.
                    for i in 0..end - start {
                        *out.add(i) = if x[start + i].is_nan() { 0 } else { *out.add(i) ^ 0x80 };
                    }
                }
            }
        }
    });
}

/// The best tile kernel this CPU runs, and its name.
fn kernel() -> (TileFn, StageFn, StageRowFn, &'static str) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
    {
        return (avx512::tile, avx512::stage_row, avx512::stage_matrix_row, "avx512vnni 12x32");
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        return (avx2::tile, avx2::stage_row, portable::stage_matrix_row, "avx2 1x32");
    }
    (portable::tile, portable::stage_row, portable::stage_matrix_row, "portable 12x32")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition: quantize, integer sums, scale.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        g: &Window,
        (cin, cout): (usize, usize),
        w: &[i8],
        (xs, zero, signed): (f32, i64, bool),
        ws: &[f32],
    ) -> Vec<f32> {
        let (lo, hi) = if signed { (-128.0, 127.0) } else { (0.0, 255.0) };
        let q = |v: f32| ((v / xs).round_ties_even() + zero as f32).clamp(lo, hi) - zero as f32;
        let [kh, kw] = g.kernel;
        let mut y = vec![0.0f32; cout * g.ho * g.wo];
        for o in 0..cout {
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    let mut acc = 0.0f64;
                    for c in 0..cin {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                                let ix = (ox * g.strides[1] + kx * g.dilations[1]) as isize - g.pads[1] as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let v = q(x[(c * g.h + iy as usize) * g.w + ix as usize]) as f64;
                                acc += v * w[((o * cin + c) * kh + ky) * kw + kx] as f64;
                            }
                        }
                    }
                    y[(o * g.ho + oy) * g.wo + ox] = (acc * (xs * ws[o.min(ws.len() - 1)]) as f64) as f32;
                }
            }
        }
        y
    }

    fn check(g: Window, cin: usize, cout: usize, signed: bool, tile: Option<(TileFn, StageFn, &'static str)>) {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32
        };
        let x: Vec<f32> = (0..cin * g.h * g.w).map(|_| next() * 4.0 - 1.0).collect();
        let w: Vec<i8> = (0..cout * cin * g.kernel[0] * g.kernel[1]).map(|_| (next() * 255.0 - 128.0) as i8).collect();
        let ws: Vec<f32> = (0..cout).map(|_| 0.001 + next() * 0.01).collect();
        let grid = (0.02f32, if signed { -3 } else { 40 }, signed);
        let mut plan = Int8Conv::new(g.clone(), (cin, cout), &w, grid, &ws);
        if let Some((f, stage, name)) = tile {
            (plan.tile, plan.stage_row, plan.isa) = (f, stage, name);
        }
        // Odd output channel counts also get a bias and round to a grid in the tile.
        let finish = (cout % 2 == 1).then(|| {
            let bias: Vec<f32> = (0..cout).map(|o| o as f32 * 0.25 - 1.0).collect();
            (bias, Grid { scale: 0.05, lo: -40.0, hi: 60.0 })
        });
        if let Some((bias, grid)) = &finish {
            plan.finish_in_tile(Some(bias), Some(*grid));
        }
        let mut y = vec![f32::NAN; cout * g.ho * g.wo];
        unsafe { plan.run(&x, y.as_mut_ptr(), &|_, _, _, _| {}) };
        let mut want = reference(&x, &g, (cin, cout), &w, grid, &ws);
        if let Some((bias, grid)) = &finish {
            let hw = g.ho * g.wo;
            for (i, v) in want.iter_mut().enumerate() {
                *v = ((*v + bias[i / hw]) / grid.scale).round_ties_even().clamp(grid.lo, grid.hi) * grid.scale;
            }
        }
        for (i, (a, b)) in y.iter().zip(&want).enumerate() {
            // Within a float rounding, or (a tie decided by it) one step of the grid.
            let step = finish.as_ref().map_or(0.0, |(_, g)| g.scale * 1.001);
            let close = (a - b).abs() <= 1e-4 * b.abs().max(1.0);
            assert!(close || (a - b).abs() <= step, "{}: element {i}: {a} vs {b}", plan.isa);
        }
    }

    fn window(h: usize, w: usize, k: usize, s: usize, p: usize, d: usize) -> Window {
        let ho = (h + 2 * p - d * (k - 1) - 1) / s + 1;
        let wo = (w + 2 * p - d * (k - 1) - 1) / s + 1;
        Window { h, w, ho, wo, kernel: [k, k], strides: [s, s], pads: [p, p], dilations: [d, d] }
    }

    /// QuantizeLinear's definition on halves, saturation and NaN, for both grid types.
    #[test]
    fn quantize_rounds_halves_to_even_and_saturates() {
        let mut x: Vec<f32> = (-700..700).map(|i| i as f32 * 0.25).collect();
        x.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, -0.0]);
        for (zero, signed) in [(3, false), (200, false), (-5, true), (100, true)] {
            let mut out = vec![0u8; x.len()];
            quantize(&x, 0.5, zero, signed, &mut out);
            let (lo, hi) = if signed { (-128.0, 127.0) } else { (0.0, 255.0) };
            for (i, (&v, &q)) in x.iter().zip(&out).enumerate() {
                let want = ((v / 0.5).round_ties_even() as f64 + zero as f64).clamp(lo, hi) as i64;
                let got = if signed { q as i8 as i64 } else { q as i64 };
                assert_eq!(got, want, "{v} (element {i}), zero {zero}, signed {signed}");
            }
        }
    }

    /// A matrix product through every kernel against the plain definition.
    #[test]
    fn matrix_products_match_the_definition() {
        let (rows, k, n) = if cfg!(miri) { (5, 9, 7) } else { (29, 37, 45) };
        let a: Vec<f32> = (0..rows * k).map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0).collect();
        let b: Vec<i8> = (0..k * n).map(|i| ((i * 104_729) % 255) as i32 - 127).map(|v| v as i8).collect();
        let scales: Vec<f32> = (0..n).map(|j| 0.001 * (1 + j % 7) as f32).collect();
        let (xs, zero) = (0.03f32, 9i64);
        let q = |v: f32| ((v / xs).round_ties_even() + zero as f32).clamp(-128.0, 127.0) - zero as f32;
        let transposed: Vec<i8> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut kernels =
            vec![(portable::tile as TileFn, portable::stage_row as StageFn, portable::stage_matrix_row as StageRowFn)];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
        {
            kernels.push((avx512::tile, avx512::stage_row, avx512::stage_matrix_row));
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            kernels.push((avx2::tile, avx2::stage_row, portable::stage_matrix_row));
        }
        for (tile, stage, stage_matrix) in kernels {
            let mut plan = Int8Conv::matrix(k, n, &transposed, (xs, zero, true), &scales);
            (plan.tile, plan.stage_row, plan.stage_matrix_row) = (tile, stage, stage_matrix);
            let mut y = vec![f32::NAN; rows * n];
            unsafe { plan.run_matrix(&a, rows, y.as_mut_ptr(), &|_, _, _, _| {}) };
            for r in 0..rows {
                for j in 0..n {
                    let want: f64 = (0..k).map(|i| q(a[r * k + i]) as f64 * b[i * n + j] as f64).sum::<f64>()
                        * (xs * scales[j]) as f64;
                    let got = y[r * n + j];
                    assert!((got as f64 - want).abs() <= 1e-4 * want.abs().max(1.0), "({r}, {j}): {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn every_kernel_matches_the_definition() {
        let mut kernels = vec![(portable::tile as TileFn, portable::stage_row as StageFn, "portable")];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
        {
            kernels.push((avx512::tile as TileFn, avx512::stage_row as StageFn, "avx512vnni"));
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            kernels.push((avx2::tile as TileFn, avx2::stage_row as StageFn, "avx2"));
        }
        // Miri interprets every product: a few small shapes there.
        type Case = (Window, usize, usize, bool);
        let cases: Vec<Case> = if cfg!(miri) {
            vec![(window(5, 6, 3, 1, 1, 1), 5, 3, false), (window(6, 7, 1, 2, 0, 1), 4, 2, true)]
        } else {
            vec![
                (window(9, 17, 3, 1, 1, 1), 5, 37, false),
                (window(14, 14, 3, 2, 1, 1), 8, 32, true),
                (window(7, 30, 1, 1, 0, 1), 13, 70, false),
                (window(11, 11, 3, 1, 2, 2), 4, 3, true),
                (window(12, 12, 7, 2, 3, 1), 3, 16, false),
                (window(13, 21, 1, 2, 0, 1), 6, 21, true),
                (window(10, 17, 1, 3, 0, 1), 9, 33, false),
            ]
        };
        for k in kernels {
            for (g, cin, cout, signed) in &cases {
                check(g.clone(), *cin, *cout, *signed, Some(k));
            }
        }
    }
}
