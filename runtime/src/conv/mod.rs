//! Convolutions beside the GEMM: the window geometry every convolution and pool shares, and
//! the ways a convolution runs besides a plain product: im2col packing that reads the image as
//! its im2col matrix ([`im2col`]), depthwise convolution plane by plane ([`depthwise`]) or over
//! blocks of channels ([`blocked`]), and Winograd F(2x2, 3x3) ([`winograd`]).

pub mod blocked;
pub mod depthwise;
pub mod im2col;
pub mod int8;
pub mod pool;
pub mod winograd;

pub use blocked::ChannelBlocked;
pub use depthwise::Depthwise;
pub use im2col::Im2col;
pub use winograd::Winograd;

/// How a depthwise convolution runs (chosen by measurement per shape).
pub enum DepthwisePlan {
    /// Plane by plane, a vector holding output columns.
    Columns(Depthwise),
    /// Over blocks of channels, a vector holding one pixel of each.
    Channels(ChannelBlocked),
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

/// `to[j] = from[j * stride]` for every `j` of `to`.
#[inline(always)]
pub(crate) fn every_nth(from: &[f32], stride: usize, to: &mut [f32]) {
    for (j, t) in to.iter_mut().enumerate() {
        *t = from[j * stride];
    }
}

/// The even elements of `from` into `to`, eight at a time while 16 remain; returns how many.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn every_second_avx2(from: &[f32], to: &mut [f32]) -> usize {
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
