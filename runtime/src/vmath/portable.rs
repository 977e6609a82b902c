//! One lane: the reference the vector widths are held to, and the tail of every row.

use super::{chain, Activation, Lanes, MAGIC};

#[derive(Clone, Copy)]
pub(crate) struct Scalar(pub f32);

impl Lanes for Scalar {
    type Mask = bool;
    unsafe fn splat(x: f32) -> Self {
        Scalar(x)
    }
    unsafe fn load(p: *const f32) -> Self {
        Scalar(*p)
    }
    unsafe fn store(self, p: *mut f32) {
        *p = self.0
    }
    unsafe fn load_first(p: *const f32, n: usize) -> Self {
        Scalar(if n > 0 { *p } else { 0.0 })
    }
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        if n > 0 {
            *p = self.0
        }
    }
    unsafe fn add(self, o: Self) -> Self {
        Scalar(self.0 + o.0)
    }
    unsafe fn sub(self, o: Self) -> Self {
        Scalar(self.0 - o.0)
    }
    unsafe fn mul(self, o: Self) -> Self {
        Scalar(self.0 * o.0)
    }
    unsafe fn div(self, o: Self) -> Self {
        Scalar(self.0 / o.0)
    }
    unsafe fn mul_add(self, m: Self, a: Self) -> Self {
        Scalar(self.0.mul_add(m.0, a.0))
    }
    unsafe fn round(self) -> Self {
        Scalar(self.0.round_ties_even())
    }
    unsafe fn abs(self) -> Self {
        Scalar(self.0.abs())
    }
    unsafe fn lt(self, o: Self) -> bool {
        self.0 < o.0
    }
    unsafe fn gt(self, o: Self) -> bool {
        self.0 > o.0
    }
    unsafe fn ge(self, o: Self) -> bool {
        self.0 >= o.0
    }
    unsafe fn eq(self, o: Self) -> bool {
        self.0 == o.0
    }
    unsafe fn select(m: bool, yes: Self, no: Self) -> Self {
        if m {
            yes
        } else {
            no
        }
    }
    unsafe fn clamp(self, lo: f32, hi: f32) -> Self {
        super::clamp_by_select(self, lo, hi)
    }
    unsafe fn recip(self) -> Self {
        Scalar(1.0 / self.0)
    }
    unsafe fn pow2_of_magic(self) -> Self {
        let e = (self.0.to_bits() as i32).wrapping_add(127 - MAGIC.to_bits() as i32);
        Scalar(f32::from_bits((e << 23) as u32))
    }
    unsafe fn split_exponent(self, offset: i32) -> (Self, Self) {
        let bits = self.0.to_bits() as i32;
        let e = bits.wrapping_sub(offset) >> 23;
        (Scalar(e as f32), Scalar(f32::from_bits(bits.wrapping_sub(e << 23) as u32)))
    }
}

/// One element at a time (the tails of the vector paths, and CPUs without them).
pub(crate) unsafe fn apply(acts: &[Activation], from: *const f32, to: *mut f32, n: usize) {
    for i in 0..n {
        chain(acts, Scalar::load(from.add(i))).store(to.add(i));
    }
}
