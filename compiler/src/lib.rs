//! Smelt's compiler core: the IR, the `smelt` dialect, the MLIR-syntax parser and printer,
//! the verifier and diagnostics. See ARCHITECTURE.md at the repository root for the map.

pub mod attributes;
pub mod builder;
pub mod diagnostics;
pub mod dialect;
pub mod dot;
pub mod ir;
pub mod irdl;
pub mod literal;
pub mod location;
pub mod memory;
pub mod minifloat;
pub mod onnx;
pub mod parser;
pub mod printer;
pub mod resources;
pub mod scalar;
pub mod signature;
pub mod types;
pub mod verifier;
pub mod views;

pub use attributes::Attribute;
pub use dialect::names;
pub use ir::{BlockId, Module, OpId, OpSpec, RegionId, ValueId};
pub use literal::Literal;
pub use location::Location;
pub use types::{Dim, ElementType, TensorType, Type};
