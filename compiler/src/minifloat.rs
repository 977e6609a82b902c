//! The narrow float formats ONNX stores (`float8e4m3fn`, `float8e4m3fnuz`, `float8e5m2`,
//! `float8e5m2fnuz`, `float4e2m1`, `float8e8m0`): decoding a code to its value and encoding a
//! value to the nearest code, halves to even, saturating or not as ONNX's Cast `saturate` says.
//!
//! "FN" formats have no infinities (E4M3FN's all-ones code is its NaN); "UZ" formats have no
//! negative zero (their 0x80 is the NaN); E2M1 has neither infinities nor NaN (it saturates,
//! and NaN becomes its negative zero, as ONNX's reference does). E8M0 is a bare exponent: no
//! sign, no zero, 0xFF its NaN, rounded as Cast's `round_mode` says. Smelt holds every code in
//! one byte (E2M1's in the low four bits; files pack two a byte).

use crate::types::ElementType;

/// A format with a sign, an exponent and a mantissa.
#[derive(Clone, Copy, Debug)]
pub struct Format {
    /// Bits of a code: 8, or 4 (E2M1).
    bits: u32,
    exponent_bits: u32,
    mantissa_bits: u32,
    bias: i32,
    /// Has infinities (E5M2): the all-ones exponent holds inf and NaNs.
    infinities: bool,
    /// No negative zero; 0x80 is the NaN (the FNUZ formats).
    unsigned_zero: bool,
    /// Has a NaN code (every format but E2M1).
    nan: bool,
}

pub const E4M3FN: Format =
    Format { bits: 8, exponent_bits: 4, mantissa_bits: 3, bias: 7, infinities: false, unsigned_zero: false, nan: true };
pub const E4M3FNUZ: Format =
    Format { bits: 8, exponent_bits: 4, mantissa_bits: 3, bias: 8, infinities: false, unsigned_zero: true, nan: true };
pub const E5M2: Format =
    Format { bits: 8, exponent_bits: 5, mantissa_bits: 2, bias: 15, infinities: true, unsigned_zero: false, nan: true };
pub const E5M2FNUZ: Format =
    Format { bits: 8, exponent_bits: 5, mantissa_bits: 2, bias: 16, infinities: false, unsigned_zero: true, nan: true };

pub const E2M1: Format = Format {
    bits: 4,
    exponent_bits: 2,
    mantissa_bits: 1,
    bias: 1,
    infinities: false,
    unsigned_zero: false,
    nan: false,
};

/// How a value between two E8M0 codes rounds (ONNX Cast's `round_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundMode {
    /// Away from zero (ONNX's default).
    Up,
    /// Toward zero.
    Down,
    /// To the nearer value; ties up.
    Nearest,
}

impl RoundMode {
    /// ONNX's spelling (`up`, `down`, `nearest`).
    pub fn parse(s: &str) -> Option<RoundMode> {
        match s {
            "up" => Some(RoundMode::Up),
            "down" => Some(RoundMode::Down),
            "nearest" => Some(RoundMode::Nearest),
            _ => None,
        }
    }
}

/// A narrow float format.
#[derive(Clone, Copy, Debug)]
pub enum Minifloat {
    /// Sign, exponent and mantissa.
    Signed(Format),
    /// E8M0: an exponent alone (2^(code - 127)), 0xFF the NaN.
    E8M0,
}

/// The format of a narrow float element type.
pub fn format(e: ElementType) -> Option<Minifloat> {
    Some(Minifloat::Signed(match e {
        ElementType::F8E4M3FN => E4M3FN,
        ElementType::F8E4M3FNUZ => E4M3FNUZ,
        ElementType::F8E5M2 => E5M2,
        ElementType::F8E5M2FNUZ => E5M2FNUZ,
        ElementType::F4E2M1FN => E2M1,
        ElementType::F8E8M0FNU => return Some(Minifloat::E8M0),
        _ => return None,
    }))
}

impl Minifloat {
    /// The value of `code`.
    pub fn decode(self, code: u8) -> f64 {
        match self {
            Minifloat::Signed(f) => f.decode(code),
            Minifloat::E8M0 if code == 0xFF => f64::NAN,
            Minifloat::E8M0 => 2f64.powi(code as i32 - 127),
        }
    }

    /// The code nearest `x` (E8M0: rounded up); see [`Format::encode`].
    pub fn encode(self, x: f64, saturate: bool) -> u8 {
        self.encode_rounded(x, saturate, RoundMode::Up)
    }

    /// The code of `x`, E8M0 rounded as `mode` says (the other formats round to nearest even).
    pub fn encode_rounded(self, x: f64, saturate: bool, mode: RoundMode) -> u8 {
        match self {
            Minifloat::Signed(f) => f.encode(x, saturate),
            Minifloat::E8M0 => encode_e8m0(x, saturate, mode),
        }
    }
}

/// E8M0 has no sign and no zero: negative values and NaN are its NaN, zero and values below
/// 2^-127 its smallest code. Past 2^127: the top code when `saturate`, else NaN.
fn encode_e8m0(x: f64, saturate: bool, mode: RoundMode) -> u8 {
    let overflow = if saturate { 0xFE } else { 0xFF };
    if x.is_nan() || x < 0.0 {
        return 0xFF;
    }
    if x == 0.0 {
        return 0;
    }
    if x.is_infinite() {
        return overflow;
    }
    let mut exponent = x.log2().floor() as i32;
    // log2 may round across a power of two; settle on 2^e <= x < 2^(e+1).
    while 2f64.powi(exponent) > x {
        exponent -= 1;
    }
    while 2f64.powi(exponent + 1) <= x {
        exponent += 1;
    }
    let below = 2f64.powi(exponent);
    let up = match mode {
        RoundMode::Up => x > below,
        RoundMode::Down => false,
        RoundMode::Nearest => x >= 1.5 * below,
    };
    let code = exponent + 127 + up as i32;
    if code < 0 {
        0
    } else if code > 0xFE {
        overflow
    } else {
        code as u8
    }
}

impl Format {
    fn sign_bit(self) -> u8 {
        1 << (self.bits - 1)
    }

    fn nan_code(self) -> u8 {
        if !self.nan {
            self.sign_bit()
        } else if self.unsigned_zero {
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
        let negative = code & self.sign_bit() != 0;
        let exponent = ((code >> m_bits) & ((1 << e_bits) - 1) as u8) as i32;
        let mantissa = (code & ((1 << m_bits) - 1) as u8) as f64;
        let all_ones = exponent == (1 << e_bits) - 1;
        let magnitude = if self.infinities && all_ones {
            if mantissa == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        } else if self.nan
            && !self.infinities
            && !self.unsigned_zero
            && all_ones
            && mantissa as u32 == (1 << m_bits) - 1
        {
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
        let all_ones = self.sign_bit() - 1;
        match (self.infinities, self.unsigned_zero, self.nan) {
            (true, _, _) => {
                (((1u32 << self.exponent_bits) - 2) << self.mantissa_bits | ((1 << self.mantissa_bits) - 1)) as u8
            }
            (false, true, _) | (false, false, false) => all_ones,
            (false, false, true) => all_ones - 1,
        }
    }

    /// The code nearest `x` (halves to the even code). Beyond the largest finite value:
    /// that value when `saturate`, else infinity where the format has one and NaN otherwise.
    pub fn encode(self, x: f64, saturate: bool) -> u8 {
        if x.is_nan() {
            return self.nan_code();
        }
        let sign = if x < 0.0 { self.sign_bit() } else { 0 };
        let magnitude = x.abs();
        let max = self.max_code();
        let overflow = || {
            if saturate || !self.nan {
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
            _ => sign | code | if code == 0 { self.sign_bit() } else { 0 },
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

    #[test]
    fn e2m1_has_eight_magnitudes_and_saturates() {
        let values: Vec<f64> = (0..8).map(|c| E2M1.decode(c)).collect();
        assert_eq!(values, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]);
        assert_eq!(E2M1.decode(0xF), -6.0);
        for code in 0..16u8 {
            assert_eq!(E2M1.encode(E2M1.decode(code), false), code, "code {code:#x}");
        }
        // Ties to even: 3.5 lies between 3 (mantissa 1) and 4 (mantissa 0); 0.25 between 0 and 0.5.
        assert_eq!(E2M1.decode(E2M1.encode(-3.5, true)), -4.0);
        assert_eq!(E2M1.encode(0.25, true), 0);
        // No infinities and no NaN: both saturate, NaN becomes negative zero.
        assert_eq!(E2M1.decode(E2M1.encode(f64::INFINITY, false)), 6.0);
        assert_eq!(E2M1.decode(E2M1.encode(-1e9, false)), -6.0);
        assert_eq!(E2M1.encode(f64::NAN, true), 0x8);
    }

    #[test]
    fn e8m0_is_a_bare_exponent_rounded_as_asked() {
        let f = Minifloat::E8M0;
        assert_eq!(f.decode(127), 1.0);
        assert_eq!(f.decode(0), 2f64.powi(-127));
        assert!(f.decode(0xFF).is_nan());
        let code = |x: f64, mode| f.encode_rounded(x, true, mode);
        assert_eq!(
            [code(1.1, RoundMode::Up), code(1.1, RoundMode::Down), code(1.1, RoundMode::Nearest)],
            [128, 127, 127]
        );
        assert_eq!(
            [code(1.5, RoundMode::Nearest), code(0.124, RoundMode::Up), code(4.0, RoundMode::Up)],
            [128, 124, 129]
        );
        assert_eq!([code(0.0, RoundMode::Up), code(1e-300, RoundMode::Up)], [0, 0]);
        assert_eq!(code(f64::INFINITY, RoundMode::Up), 0xFE);
        assert_eq!(f.encode_rounded(f64::INFINITY, false, RoundMode::Up), 0xFF);
        assert_eq!([code(-1.0, RoundMode::Up), code(f64::NAN, RoundMode::Up)], [0xFF, 0xFF]);
    }
}
