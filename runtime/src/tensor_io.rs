//! Tensors in and out as ONNX `TensorProto` files (`input_0.pb`, `output_0.pb`), the format of
//! ONNX's backend test data.

use bytes::Bytes;
use prost::Message;
use smelt_compiler::literal::Literal;
use smelt_compiler::onnx::{proto, tensor_to_dense};
use smelt_compiler::ElementType;
use std::path::Path;

/// Reads a serialized `TensorProto`.
pub fn read_tensor(path: &Path) -> Result<Literal, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let t = proto::TensorProto::decode(Bytes::from(bytes))
        .map_err(|e| format!("{}: not a TensorProto: {e}", path.display()))?;
    let (ty, data) = tensor_to_dense(&t).map_err(|e| format!("{}: {e}", path.display()))?;
    let dense = smelt_compiler::attributes::DenseElements {
        ty,
        storage: smelt_compiler::attributes::DenseStorage::Inline(data.to_vec().into()),
    };
    Literal::from_dense_unbounded(&dense).ok_or_else(|| format!("{}: unreadable tensor", path.display()))
}

/// Writes `value` as a serialized `TensorProto` named `name`.
pub fn write_tensor(path: &Path, name: &str, value: &Literal) -> Result<(), String> {
    let dense = value.to_dense();
    let code =
        onnx_type(value.element).ok_or_else(|| format!("element type {} has no ONNX equivalent", value.element))?;
    let mut raw = dense.inline_bytes().expect("literals are inline").to_vec();
    let size = value.element.byte_size();
    if raw.len() == size && value.len() != 1 {
        raw = raw.repeat(value.len()); // expand a splat
    }
    let t = proto::TensorProto {
        dims: value.shape.iter().map(|&d| d as i64).collect(),
        data_type: Some(code),
        name: Some(name.to_string()),
        raw_data: Some(Bytes::from(raw)),
        ..Default::default()
    };
    std::fs::write(path, t.encode_to_vec()).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn onnx_type(e: ElementType) -> Option<i32> {
    use proto::tensor_proto::DataType as D;
    Some(match e {
        ElementType::F32 => D::Float,
        ElementType::F64 => D::Double,
        ElementType::F16 => D::Float16,
        ElementType::BF16 => D::Bfloat16,
        ElementType::I1 => D::Bool,
        ElementType::I8 => D::Int8,
        ElementType::I16 => D::Int16,
        ElementType::I32 => D::Int32,
        ElementType::I64 => D::Int64,
        ElementType::U8 => D::Uint8,
        ElementType::U16 => D::Uint16,
        ElementType::U32 => D::Uint32,
        ElementType::U64 => D::Uint64,
    } as i32)
}
