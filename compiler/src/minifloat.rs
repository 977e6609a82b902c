//! The 8-bit float formats ONNX stores (`float8e4m3fn`, `float8e4m3fnuz`, `float8e5m2`,
//! `float8e5m2fnuz`): decoding a code to its value and encoding a value to the nearest code,
//! halves to even, saturating or not as ONNX's Cast `saturate` says.
//!
//! "FN" formats have no infinities (E4M3FN's all-ones code is its NaN); "UZ" formats have no
//! negative zero (their 0x80 is the NaN). Every format is one byte.

use crate::types::ElementType;

#[derive(Clone, Copy, Debug)]
pub struct Format {
    exponent_bits: u32,
    mantissa_bits: u32,
    bias: i32,
    /// Has infinities (E5M2): the all-ones exponent holds inf and NaNs.
    infinities: bool,
    /// No negative zero; 0x80 is the NaN (the FNUZ formats).
    unsigned_zero: bool,
}

pub const E4M3FN: Format =
    Format { exponent_bits: 4, mantissa_bits: 3, bias: 7, infinities: false, unsigned_zero: false };
pub const E4M3FNUZ: Format =
    Format { exponent_bits: 4, mantissa_bits: 3, bias: 8, infinities: false, unsigned_zero: true };
pub const E5M2: Format =
    Format { exponent_bits: 5, mantissa_bits: 2, bias: 15, infinities: true, unsigned_zero: false };
pub const E5M2FNUZ: Format =
    Format { exponent_bits: 5, mantissa_bits: 2, bias: 16, infinities: false, unsigned_zero: true };

/// The format of an 8-bit float element type.
pub fn format(e: ElementType) -> Option<Format> {
    Some(match e {
        ElementType::F8E4M3FN => E4M3FN,
        ElementType::F8E4M3FNUZ => E4M3FNUZ,
        ElementType::F8E5M2 => E5M2,
        ElementType::F8E5M2FNUZ => E5M2FNUZ,
        _ => return None,
    })
}

impl Format {
    fn nan_code(self) -> u8 {
        if self.unsigned_zero {
            0x80
        } else {
            0x7F
        }
    }

    /// The value of `code`.
    pub fn decode(self, code: u8) -> f64 {
        let (m_bits, e_bits) = (self.mantissa_bits, self.exponent_bits);
        if self.unsigned_zero && code == 0x80 {
            return f64::NAN;
        }
        let negative = code & 0x80 != 0;
        let exponent = ((code >> m_bits) & ((1 << e_bits) - 1) as u8) as i32;
        let mantissa = (code & ((1 << m_bits) - 1) as u8) as f64;
        let all_ones = exponent == (1 << e_bits) - 1;
        let magnitude = if self.infinities && all_ones {
            if mantissa == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        } else if !self.infinities && !self.unsigned_zero && all_ones && mantissa as u32 == (1 << m_bits) - 1 {
            f64::NAN
        } else if exponent == 0 {
            mantissa * 2f64.powi(1 - self.bias - m_bits as i32)
        } else {
            (1.0 + mantissa / (1 << m_bits) as f64) * 2f64.powi(exponent - self.bias)
        };
        if negative {
            -magnitude
        } else {
            magnitude
        }
    }

    /// The largest finite code (positive).
    fn max_code(self) -> u8 {
        match (self.infinities, self.unsigned_zero) {
            (true, _) => {
                (((1u32 << self.exponent_bits) - 2) << self.mantissa_bits | ((1 << self.mantissa_bits) - 1)) as u8
            }
            (false, true) => 0x7F,
            (false, false) => 0x7E,
        }
    }

    /// The code nearest `x` (halves to the even code). Beyond the largest finite value:
    /// that value when `saturate`, else infinity where the format has one and NaN otherwise.
    pub fn encode(self, x: f64, saturate: bool) -> u8 {
        if x.is_nan() {
            return self.nan_code();
        }
        let sign = if x < 0.0 { 0x80 } else { 0 };
        let magnitude = x.abs();
        let max = self.max_code();
        let overflow = || {
            if saturate {
                sign | max
            } else if self.infinities {
                sign | (max + 1)
            } else {
                self.nan_code()
            }
        };
        let top = self.decode(max);
        if magnitude > top {
            // Past the top, rounding goes to the top value or to the (infinite) next one.
            let half_ulp = (top - self.decode(max - 1)) / 2.0;
            let rounds_down = magnitude < top + half_ulp || (magnitude == top + half_ulp && max.is_multiple_of(2));
            return if rounds_down && magnitude.is_finite() { sign | max } else { overflow() };
        }
        // Codes 0..=max are the non-negative values in increasing order.
        let (mut lo, mut hi) = (0u8, max);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.decode(mid) <= magnitude {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (to_lo, to_hi) = (magnitude - self.decode(lo), self.decode(hi) - magnitude);
        let code = if to_lo < to_hi || (to_lo == to_hi && lo.is_multiple_of(2)) { lo } else { hi };
        match code {
            // Zero keeps its sign only where the format has a negative zero.
            0 if self.unsigned_zero || !x.is_sign_negative() => 0,
            _ => sign | code | if code == 0 { 0x80 } else { 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formats_have_their_documented_extremes() {
        assert_eq!(E4M3FN.decode(0x7E), 448.0);
        assert_eq!(E4M3FNUZ.decode(0x7F), 240.0);
        assert_eq!(E5M2.decode(0x7B), 57344.0);
        assert_eq!(E5M2FNUZ.decode(0x7F), 57344.0);
        assert!(E4M3FN.decode(0x7F).is_nan() && E4M3FNUZ.decode(0x80).is_nan() && E5M2.decode(0x7F).is_nan());
        assert_eq!(E5M2.decode(0x7C), f64::INFINITY);
        // The smallest subnormals.
        assert_eq!(E4M3FN.decode(0x01), 2f64.powi(-9));
        assert_eq!(E5M2.decode(0x01), 2f64.powi(-16));
    }

    #[test]
    fn every_code_round_trips_and_ties_go_to_even() {
        for f in [E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ] {
            for code in 0..=255u8 {
                let v = f.decode(code);
                if v.is_finite() && !(f.unsigned_zero && code == 0x80) {
                    assert_eq!(f.encode(v, false), code, "{f:?} code {code:#x} value {v}");
                }
            }
        }
        // 1.0625 lies halfway between 1.0 (mantissa 0) and 1.125 (mantissa 1) in E4M3.
        assert_eq!(E4M3FN.decode(E4M3FN.encode(1.0625, true)), 1.0);
        assert_eq!(E4M3FN.encode(1e6, true), 0x7E);
        assert!(E4M3FN.decode(E4M3FN.encode(1e6, false)).is_nan());
        assert_eq!(E5M2.decode(E5M2.encode(1e6, false)), f64::INFINITY);
    }
}
