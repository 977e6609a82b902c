//! Little-endian encoding of single elements, shared by dense attributes, constant folding and
//! the importers. Values travel as f64 (floats) or i64 (integers) and are rounded to the element
//! type on encode.

use crate::types::ElementType;

pub fn encode(ty: ElementType, value: f64, out: &mut Vec<u8>) {
    match ty {
        ElementType::F16 => out.extend(half::f16::from_f64(value).to_le_bytes()),
        ElementType::BF16 => out.extend(half::bf16::from_f64(value).to_le_bytes()),
        ElementType::F32 => out.extend((value as f32).to_le_bytes()),
        ElementType::F64 => out.extend(value.to_le_bytes()),
        narrow if narrow.is_float() => {
            out.push(crate::minifloat::format(narrow).expect("a narrow float").encode(value, true))
        }
        _ => encode_int(ty, value as i64, out),
    }
}

/// Encodes every value, choosing the element type's encoding once (weights are f32, and a
/// choice per element was most of the time of folding a BatchNorm into them).
pub fn encode_floats(ty: ElementType, values: &[f64], out: &mut Vec<u8>) {
    match ty {
        ElementType::F32 => out.extend(values.iter().flat_map(|&v| (v as f32).to_le_bytes())),
        _ => values.iter().for_each(|&v| encode(ty, v, out)),
    }
}

pub fn encode_int(ty: ElementType, value: i64, out: &mut Vec<u8>) {
    match ty {
        ElementType::I1 => out.push((value != 0) as u8),
        ElementType::I8 => out.extend((value as i8).to_le_bytes()),
        ElementType::U8 => out.extend((value as u8).to_le_bytes()),
        ElementType::I16 => out.extend((value as i16).to_le_bytes()),
        ElementType::U16 => out.extend((value as u16).to_le_bytes()),
        ElementType::I32 => out.extend((value as i32).to_le_bytes()),
        ElementType::U32 => out.extend((value as u32).to_le_bytes()),
        ElementType::I64 | ElementType::U64 => out.extend(value.to_le_bytes()),
        // Narrow integers wrap to their width, one a byte, sign-extended.
        ElementType::I4 => out.push(((value << 60) >> 60) as u8),
        ElementType::U4 => out.push((value & 0xF) as u8),
        ElementType::I2 => out.push(((value << 62) >> 62) as u8),
        ElementType::U2 => out.push((value & 0x3) as u8),
        float => encode(float, value as f64, out),
    }
}

/// Decodes one element as f64 (integers convert exactly up to 2^53).
pub fn decode(ty: ElementType, bytes: &[u8]) -> f64 {
    match ty {
        ElementType::F16 => half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f64(),
        ElementType::BF16 => half::bf16::from_le_bytes([bytes[0], bytes[1]]).to_f64(),
        ElementType::F32 => f32::from_le_bytes(bytes[..4].try_into().unwrap()) as f64,
        ElementType::F64 => f64::from_le_bytes(bytes[..8].try_into().unwrap()),
        ElementType::U64 => u64::from_le_bytes(bytes[..8].try_into().unwrap()) as f64,
        narrow if narrow.is_float() => crate::minifloat::format(narrow).expect("a narrow float").decode(bytes[0]),
        int => decode_int(int, bytes) as f64,
    }
}

/// Decodes every element of `bytes` as f64, choosing the element type's decoding once.
pub fn decode_floats(ty: ElementType, bytes: &[u8]) -> Vec<f64> {
    match ty {
        ElementType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
        _ => bytes.chunks_exact(ty.byte_size()).map(|b| decode(ty, b)).collect(),
    }
}

/// Decodes one element as i64 (floats truncate toward zero).
pub fn decode_int(ty: ElementType, bytes: &[u8]) -> i64 {
    match ty {
        ElementType::I1 => (bytes[0] != 0) as i64,
        ElementType::I8 | ElementType::I4 | ElementType::I2 => bytes[0] as i8 as i64,
        ElementType::U4 | ElementType::U2 => bytes[0] as i64,
        ElementType::U8 => bytes[0] as i64,
        ElementType::I16 => i16::from_le_bytes([bytes[0], bytes[1]]) as i64,
        ElementType::U16 => u16::from_le_bytes([bytes[0], bytes[1]]) as i64,
        ElementType::I32 => i32::from_le_bytes(bytes[..4].try_into().unwrap()) as i64,
        ElementType::U32 => u32::from_le_bytes(bytes[..4].try_into().unwrap()) as i64,
        ElementType::I64 | ElementType::U64 => i64::from_le_bytes(bytes[..8].try_into().unwrap()),
        float => decode(float, bytes) as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_small_values() {
        for ty in ElementType::ALL {
            let mut bytes = Vec::new();
            encode(ty, 1.0, &mut bytes);
            assert_eq!(bytes.len(), ty.byte_size(), "{ty}");
            assert_eq!(decode(ty, &bytes), 1.0, "{ty}");
            assert_eq!(decode_int(ty, &bytes), 1, "{ty}");
        }
    }
}
