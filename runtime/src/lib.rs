//! Smelt's runtime: the executor ([`exec`]: memory plan, steps, JIT-compiled programs around
//! native kernels), its kernels ([`gemm`], [`conv`], [`ops`]) and code generator ([`jit`]), the
//! full-width vector math ([`vmath`]), kernel variants chosen by measurement ([`variants`]), the worker threads ([`workers`]), machine microbenchmarks ([`microbench`]), the reference
//! interpreter (the oracle every faster path is checked against) and ONNX `TensorProto`
//! input/output.

pub mod conv;
pub mod error;
pub mod exec;
pub mod gemm;
pub mod jit;
pub mod microbench;
pub mod ops;
pub mod reference;
pub mod tensor_io;
pub mod variants;
pub mod vmath;
pub mod workers;

pub use error::ExecError;
pub use smelt_compiler::literal::Literal;
