//! Smelt's runtime: the reference interpreter (the oracle every faster path is checked
//! against) and ONNX `TensorProto` input/output.

pub mod reference;
pub mod tensor_io;

pub use smelt_compiler::literal::Literal;
pub mod conv;
pub mod exec;
pub mod gemm;
pub mod jit;
pub mod microbench;
pub mod ops;
pub mod workers;
