//! Tensors in and out as ONNX `TensorProto` files (`input_0.pb`, `output_0.pb`), the format of
//! ONNX's backend test data.

use bytes::Bytes;
use prost::Message;
use smelt_compiler::literal::Literal;
use smelt_compiler::onnx::{proto, tensor_to_dense};
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
    let code = smelt_compiler::onnx::onnx_code(value.element);
    let mut raw = dense.inline_bytes().expect("literals are inline").to_vec();
    let size = value.element.byte_size();
    if raw.len() == size && value.len() != 1 {
        raw = raw.repeat(value.len()); // expand a splat
    }
    if let Some(bits) = smelt_compiler::onnx::packed_bits(value.element) {
        raw = smelt_compiler::onnx::pack(bits, &raw);
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
