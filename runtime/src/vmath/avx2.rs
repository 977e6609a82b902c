//! Eight lanes: AVX2 + FMA.

use super::portable;
use super::{chain, Activation, Lanes, MAGIC};
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct Avx2(pub(crate) __m256);

impl Lanes for Avx2 {
    type Mask = __m256;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Avx2(_mm256_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Avx2(_mm256_loadu_ps(p))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm256_storeu_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> Self {
        Avx2(_mm256_maskload_ps(p, first_lanes(n)))
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        _mm256_maskstore_ps(p, first_lanes(n), self.0)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Avx2(_mm256_add_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Avx2(_mm256_sub_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Avx2(_mm256_mul_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Avx2(_mm256_div_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul_add(self, m: Self, a: Self) -> Self {
        Avx2(_mm256_fmadd_ps(self.0, m.0, a.0))
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        Avx2(_mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        Avx2(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0))
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> __m256 {
        _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn gt(self, o: Self) -> __m256 {
        _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn ge(self, o: Self) -> __m256 {
        _mm256_cmp_ps::<_CMP_GE_OQ>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> __m256 {
        _mm256_cmp_ps::<_CMP_EQ_OQ>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn select(m: __m256, yes: Self, no: Self) -> Self {
        Avx2(_mm256_blendv_ps(no.0, yes.0, m))
    }
    #[inline(always)]
    unsafe fn clamp(self, lo: f32, hi: f32) -> Self {
        if cfg!(miri) {
            return super::clamp_by_select(self, lo, hi);
        }
        // maxps / minps return the second operand when either is NaN: the bound goes first.
        Avx2(_mm256_min_ps(_mm256_set1_ps(hi), _mm256_max_ps(_mm256_set1_ps(lo), self.0)))
    }
    #[inline(always)]
    unsafe fn recip(self) -> Self {
        if cfg!(miri) {
            return Avx2::splat(1.0).div(self);
        }
        // 12 bits, then about 23 after one step.
        super::refine_recip(self, Avx2(_mm256_rcp_ps(self.0)))
    }
    #[inline(always)]
    unsafe fn pow2_of_magic(self) -> Self {
        let bias = _mm256_set1_epi32(127 - MAGIC.to_bits() as i32);
        let e = _mm256_add_epi32(_mm256_castps_si256(self.0), bias);
        Avx2(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(e)))
    }
    #[inline(always)]
    unsafe fn split_exponent(self, offset: i32) -> (Self, Self) {
        let bits = _mm256_castps_si256(self.0);
        let e = _mm256_srai_epi32::<23>(_mm256_sub_epi32(bits, _mm256_set1_epi32(offset)));
        let m = _mm256_sub_epi32(bits, _mm256_slli_epi32::<23>(e));
        (Avx2(_mm256_cvtepi32_ps(e)), Avx2(_mm256_castsi256_ps(m)))
    }
}

/// The mask of the first `n` of 8 lanes.
#[inline(always)]
unsafe fn first_lanes(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// Eight elements at a time, two vectors an iteration; the tail one by one.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn apply(acts: &[Activation], from: *const f32, to: *mut f32, n: usize) {
    let mut i = 0;
    while i + 16 <= n {
        let (a, b) = (Avx2::load(from.add(i)), Avx2::load(from.add(i + 8)));
        chain(acts, a).store(to.add(i));
        chain(acts, b).store(to.add(i + 8));
        i += 16;
    }
    while i + 8 <= n {
        chain(acts, Avx2::load(from.add(i))).store(to.add(i));
        i += 8;
    }
    portable::apply(acts, from.add(i), to.add(i), n - i);
}
