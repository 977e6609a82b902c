//! Generates the ONNX protobuf types from the official `proto/onnx.proto` with prost; protox
//! compiles the schema in pure Rust, so building needs no system `protoc`.

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["proto/onnx.proto"], ["proto"]).expect("proto/onnx.proto compiles");
    prost_build::Config::new()
        // Tensor payloads share the model file's buffer instead of being copied.
        .bytes([".onnx.TensorProto.raw_data"])
        .compile_fds(descriptors)
        .expect("generate ONNX types");
}
