//! ONNX `TensorProto` contents to little-endian element bytes, and seeded random weights.

use super::proto::{self, tensor_proto::DataType};
use crate::types::{ElementType, TensorType};
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use std::sync::OnceLock;

/// ONNX `TensorProto.DataType` codes and the element types they are (codes past the generated
/// enum's, like INT2, by number).
const CODES: [(i32, ElementType); 23] = [
    (1, ElementType::F32),
    (2, ElementType::U8),
    (3, ElementType::I8),
    (4, ElementType::U16),
    (5, ElementType::I16),
    (6, ElementType::I32),
    (7, ElementType::I64),
    (9, ElementType::I1),
    (10, ElementType::F16),
    (11, ElementType::F64),
    (12, ElementType::U32),
    (13, ElementType::U64),
    (16, ElementType::BF16),
    (17, ElementType::F8E4M3FN),
    (18, ElementType::F8E4M3FNUZ),
    (19, ElementType::F8E5M2),
    (20, ElementType::F8E5M2FNUZ),
    (21, ElementType::U4),
    (22, ElementType::I4),
    (23, ElementType::F4E2M1FN),
    (24, ElementType::F8E8M0FNU),
    (25, ElementType::U2),
    (26, ElementType::I2),
];

/// The element type of an ONNX `TensorProto.DataType` code.
pub fn element_type(code: i32) -> Option<ElementType> {
    CODES.iter().find(|(c, _)| *c == code).map(|&(_, e)| e)
}

/// The ONNX `TensorProto.DataType` code of an element type.
pub fn onnx_code(e: ElementType) -> i32 {
    CODES.iter().find(|(_, t)| *t == e).map(|&(c, _)| c).expect("every element type has an ONNX code")
}

/// Bits per element where ONNX packs several in a byte (INT4, INT2, their unsigned kinds, and
/// FLOAT4E2M1).
pub fn packed_bits(e: ElementType) -> Option<usize> {
    match e {
        ElementType::I4 | ElementType::U4 | ElementType::F4E2M1FN => Some(4),
        ElementType::I2 | ElementType::U2 => Some(2),
        _ => None,
    }
}

/// Unpacks `n` elements of `bits` bits (lowest bits first) to one byte each, sign-extending
/// signed integer kinds (float codes stay as they are), in the one-a-byte layout Smelt holds
/// them in.
fn unpack(e: ElementType, bits: usize, packed: &[u8], n: usize) -> Vec<u8> {
    let per_byte = 8 / bits;
    (0..n)
        .map(|i| {
            let v = (packed[i / per_byte] >> ((i % per_byte) * bits)) & ((1u8 << bits) - 1);
            if e.is_float() {
                return v;
            }
            let mut out = Vec::with_capacity(1);
            crate::scalar::encode_int(
                e,
                if e.lowest() < 0.0 && v >= 1 << (bits - 1) { v as i64 - (1 << bits) } else { v as i64 },
                &mut out,
            );
            out[0]
        })
        .collect()
}

/// Packs one-a-byte narrow integers as ONNX stores them (lowest bits first).
pub fn pack(bits: usize, values: &[u8]) -> Vec<u8> {
    let per_byte = 8 / bits;
    values
        .chunks(per_byte)
        .map(|chunk| chunk.iter().enumerate().fold(0u8, |acc, (k, &v)| acc | ((v & ((1 << bits) - 1)) << (k * bits))))
        .collect()
}

/// ONNX's name for an element type code (`FLOAT8E4M3FN`), for messages.
pub fn type_name(code: i32) -> String {
    DataType::try_from(code).map_or_else(|_| format!("#{code}"), |t| t.as_str_name().to_string())
}

pub fn tensor_type(t: &proto::TensorProto) -> Result<TensorType, String> {
    let element =
        element_type(t.data_type()).ok_or_else(|| format!("unsupported element type {}", type_name(t.data_type())))?;
    let dims: Vec<u64> = t
        .dims
        .iter()
        .map(|&d| u64::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<_, _>>()?;
    let ty = TensorType::of(&dims, element);
    if ty.byte_size().is_none_or(|n| n > 1 << 40) {
        return Err(format!("tensor of shape {dims:?} is too large"));
    }
    Ok(ty)
}

/// The tensor's type and element bytes (raw data shared with the model buffer, not copied).
pub fn tensor_to_dense(t: &proto::TensorProto) -> Result<(TensorType, Bytes), String> {
    let ty = tensor_type(t)?;
    let n = ty.num_elements().unwrap() as usize;
    let size = ty.element.byte_size();
    if let Some(bits) = packed_bits(ty.element) {
        let packed: Vec<u8> = match t.raw_data.as_ref().filter(|r| !r.is_empty() || n == 0) {
            Some(raw) => raw.to_vec(),
            None => t.int32_data.iter().map(|&v| v as u8).collect(),
        };
        let need = (n * bits).div_ceil(8);
        if packed.len() != need {
            return Err(format!("has {} packed bytes but {ty} needs {need}", packed.len()));
        }
        return Ok((ty.clone(), Bytes::from(unpack(ty.element, bits, &packed, n))));
    }
    if let Some(raw) = t.raw_data.as_ref().filter(|r| !r.is_empty() || n == 0) {
        if raw.len() != n * size {
            return Err(format!("raw data has {} bytes but {ty} needs {}", raw.len(), n * size));
        }
        return Ok((ty, raw.clone()));
    }
    let mut out = Vec::with_capacity(n * size);
    let count = match ty.element {
        ElementType::F32 => {
            out.extend(t.float_data.iter().flat_map(|v| v.to_le_bytes()));
            t.float_data.len()
        }
        ElementType::F64 => {
            out.extend(t.double_data.iter().flat_map(|v| v.to_le_bytes()));
            t.double_data.len()
        }
        ElementType::I64 => {
            out.extend(t.int64_data.iter().flat_map(|v| v.to_le_bytes()));
            t.int64_data.len()
        }
        ElementType::U32 | ElementType::U64 => {
            for &v in &t.uint64_data {
                crate::scalar::encode_int(ty.element, v as i64, &mut out);
            }
            t.uint64_data.len()
        }
        // ONNX stores these in int32_data; half and 8-bit floats as their bit patterns.
        ElementType::F16 | ElementType::BF16 => {
            out.extend(t.int32_data.iter().flat_map(|&v| (v as u16).to_le_bytes()));
            t.int32_data.len()
        }
        f8 if f8.is_float() => {
            out.extend(t.int32_data.iter().map(|&v| v as u8));
            t.int32_data.len()
        }
        e => {
            for &v in &t.int32_data {
                crate::scalar::encode_int(e, v as i64, &mut out);
            }
            t.int32_data.len()
        }
    };
    if count != n {
        return Err(format!("has {count} values but {ty} holds {n}"));
    }
    Ok((ty, Bytes::from(out)))
}

/// Deterministic weights for models whose weights are absent (`--weights=random`).
///
/// Each tensor gets its own seed (from the model seed and the tensor's position), and its bytes
/// are generated on first read: importing or analysing a graph-only model costs nothing, and
/// the values do not depend on which tensors were read before.
pub struct RandomWeights {
    seed: u64,
    next: u64,
}

impl RandomWeights {
    pub fn new(seed: u64) -> Self {
        RandomWeights { seed, next: 0 }
    }

    /// A lazily generated blob for `ty`.
    pub fn blob(&mut self, ty: &TensorType) -> crate::resources::Blob {
        self.next += 1;
        let source = LazyRandom {
            seed: self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.next,
            ty: ty.clone(),
            bytes: OnceLock::new(),
        };
        let len = ty.byte_size().unwrap_or(0) as usize;
        crate::resources::Blob::lazy(std::sync::Arc::new(source), len)
    }
}

#[derive(Debug)]
struct LazyRandom {
    seed: u64,
    ty: TensorType,
    bytes: OnceLock<Vec<u8>>,
}

impl crate::resources::SharedBytes for LazyRandom {
    fn bytes(&self) -> &[u8] {
        self.bytes.get_or_init(|| fill(self.seed, &self.ty))
    }
}

/// Floats uniform in [-0.05, 0.05), except 1-D tensors (norm scales, variances, biases), which
/// get [0.5, 1.5) so that variances are positive; integers 0 or 1, valid indices for any axis of
/// extent >= 2; booleans random.
fn fill(seed: u64, ty: &TensorType) -> Vec<u8> {
    let n = ty.num_elements().unwrap_or(0) as usize;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut words = vec![0u32; n];
    rng.fill(&mut words[..]);
    let unit = |w: u32| (w >> 8) as f64 / (1u32 << 24) as f64;
    let (lo, span) = if ty.rank() == Some(1) { (0.5, 1.0) } else { (-0.05, 0.1) };
    let mut out = Vec::with_capacity(n * ty.element.byte_size());
    for w in words {
        if ty.element.is_float() {
            crate::scalar::encode(ty.element, lo + span * unit(w), &mut out);
        } else {
            crate::scalar::encode_int(ty.element, (w & 1) as i64, &mut out);
        }
    }
    out
}
