//! Sixteen lanes: AVX-512F. Tails are masked loads and stores, not scalar loops.

use super::{chain, Activation, Lanes, MAGIC};
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct Avx512(pub(crate) __m512);

impl Lanes for Avx512 {
    type Mask = __mmask16;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Avx512(_mm512_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Avx512(_mm512_loadu_ps(p))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm512_storeu_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> Self {
        Avx512(_mm512_maskz_loadu_ps(first_lanes(n), p))
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        _mm512_mask_storeu_ps(p, first_lanes(n), self.0)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Avx512(_mm512_add_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Avx512(_mm512_sub_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Avx512(_mm512_mul_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Avx512(_mm512_div_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul_add(self, m: Self, a: Self) -> Self {
        Avx512(_mm512_fmadd_ps(self.0, m.0, a.0))
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        if cfg!(miri) {
            // Miri does not model vrndscaleps: add and take away 2^23 with x's sign (the sum
            // rounds halves to even); from 2^23 on every float is an integer already.
            let sign = _mm512_and_si512(_mm512_castps_si512(self.0), _mm512_set1_epi32(i32::MIN));
            let magic = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(8_388_608.0))));
            let rounded = Avx512(_mm512_sub_ps(_mm512_add_ps(self.0, magic), magic));
            return Avx512::select(self.abs().lt(Avx512::splat(8_388_608.0)), rounded, self);
        }
        Avx512(_mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        Avx512(_mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(self.0), _mm512_set1_epi32(0x7fff_ffff))))
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> __mmask16 {
        compare::<_CMP_LT_OQ>(self.0, o.0, |a, b| a < b)
    }
    #[inline(always)]
    unsafe fn gt(self, o: Self) -> __mmask16 {
        compare::<_CMP_GT_OQ>(self.0, o.0, |a, b| a > b)
    }
    #[inline(always)]
    unsafe fn ge(self, o: Self) -> __mmask16 {
        compare::<_CMP_GE_OQ>(self.0, o.0, |a, b| a >= b)
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> __mmask16 {
        compare::<_CMP_EQ_OQ>(self.0, o.0, |a, b| a == b)
    }
    #[inline(always)]
    unsafe fn select(m: __mmask16, yes: Self, no: Self) -> Self {
        Avx512(_mm512_mask_blend_ps(m, no.0, yes.0))
    }
    #[inline(always)]
    unsafe fn clamp(self, lo: f32, hi: f32) -> Self {
        if cfg!(miri) {
            return super::clamp_by_select(self, lo, hi);
        }
        // maxps / minps return the second operand when either is NaN: the bound goes first.
        Avx512(_mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), self.0)))
    }
    /// The polynomial scaled by `2^n` in one instruction (`vscalefps`), which also makes
    /// infinity past the top of the range; below f32's normal range the result is 0, as
    /// [`super::exp_by_bits`] makes it.
    #[inline(always)]
    unsafe fn exp(self) -> Self {
        if cfg!(miri) {
            return super::exp_by_bits(self);
        }
        let c = _mm512_min_ps(_mm512_set1_ps(89.0), _mm512_max_ps(_mm512_set1_ps(-104.0), self.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            c,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693_145_75), c);
        let r = Avx512(_mm512_fmadd_ps(n, _mm512_set1_ps(-1.428_606_8e-6), r));
        let p = super::poly(r, &[1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0]);
        let e = _mm512_scalef_ps(p.0, n);
        let below = compare::<_CMP_LT_OQ>(self.0, _mm512_set1_ps(super::EXP_MIN), |a, b| a < b);
        Avx512(_mm512_mask_blend_ps(below, e, _mm512_setzero_ps()))
    }
    #[inline(always)]
    unsafe fn recip(self) -> Self {
        if cfg!(miri) {
            return Avx512::splat(1.0).div(self);
        }
        // 14 bits, then 28 after one step: within an ulp of the division.
        super::refine_recip(self, Avx512(_mm512_rcp14_ps(self.0)))
    }
    #[inline(always)]
    unsafe fn pow2_of_magic(self) -> Self {
        let bias = _mm512_set1_epi32(127 - MAGIC.to_bits() as i32);
        let e = _mm512_add_epi32(_mm512_castps_si512(self.0), bias);
        Avx512(_mm512_castsi512_ps(_mm512_slli_epi32::<23>(e)))
    }
    #[inline(always)]
    unsafe fn split_exponent(self, offset: i32) -> (Self, Self) {
        let bits = _mm512_castps_si512(self.0);
        let e = _mm512_srai_epi32::<23>(_mm512_sub_epi32(bits, _mm512_set1_epi32(offset)));
        let m = _mm512_sub_epi32(bits, _mm512_slli_epi32::<23>(e));
        (Avx512(_mm512_cvtepi32_ps(e)), Avx512(_mm512_castsi512_ps(m)))
    }
}

/// `_mm512_cmp_ps_mask::<P>(a, b)`; Miri, which has no model of that instruction, compares
/// lane by lane with `f` instead (the same mask: only the loads and stores around it are what
/// Miri checks).
#[inline(always)]
unsafe fn compare<const P: i32>(a: __m512, b: __m512, f: impl Fn(f32, f32) -> bool) -> __mmask16 {
    if cfg!(miri) {
        let lanes = |v: __m512| std::mem::transmute::<__m512, [f32; 16]>(v);
        let (a, b) = (lanes(a), lanes(b));
        (0..16).filter(|&i| f(a[i], b[i])).fold(0, |m, i| m | 1 << i)
    } else {
        _mm512_cmp_ps_mask::<P>(a, b)
    }
}

/// The mask of the first `n` of 16 lanes.
#[inline(always)]
fn first_lanes(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

/// Sixteen elements at a time, two vectors an iteration; the tail under a lane mask.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn apply(acts: &[Activation], from: *const f32, to: *mut f32, n: usize) {
    let mut i = 0;
    while i + 32 <= n {
        let (a, b) = (Avx512::load(from.add(i)), Avx512::load(from.add(i + 16)));
        chain(acts, a).store(to.add(i));
        chain(acts, b).store(to.add(i + 16));
        i += 32;
    }
    while i < n {
        let left = n - i;
        if left >= 16 {
            chain(acts, Avx512::load(from.add(i))).store(to.add(i));
        } else {
            // Masked-off lanes read zeros (no fault past the end) and are not stored.
            chain(acts, Avx512::load_first(from.add(i), left)).store_first(to.add(i), left);
        }
        i += 16;
    }
}
