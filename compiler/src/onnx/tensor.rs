//! ONNX `TensorProto` contents to little-endian element bytes, and seeded random weights.

use super::proto::{self, tensor_proto::DataType};
use crate::types::{ElementType, TensorType};
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use std::sync::OnceLock;

/// The element type of an ONNX `TensorProto.DataType` code.
pub fn element_type(code: i32) -> Option<ElementType> {
    Some(match DataType::try_from(code).ok()? {
        DataType::Float => ElementType::F32,
        DataType::Uint8 => ElementType::U8,
        DataType::Int8 => ElementType::I8,
        DataType::Uint16 => ElementType::U16,
        DataType::Int16 => ElementType::I16,
        DataType::Int32 => ElementType::I32,
        DataType::Int64 => ElementType::I64,
        DataType::Bool => ElementType::I1,
        DataType::Float16 => ElementType::F16,
        DataType::Double => ElementType::F64,
        DataType::Uint32 => ElementType::U32,
        DataType::Uint64 => ElementType::U64,
        DataType::Bfloat16 => ElementType::BF16,
        _ => return None,
    })
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
        // ONNX stores these in int32_data; half floats as their bit patterns.
        ElementType::F16 | ElementType::BF16 => {
            out.extend(t.int32_data.iter().flat_map(|&v| (v as u16).to_le_bytes()));
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
