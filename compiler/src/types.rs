//! Value types: ranked and unranked tensors, scalars, `index` and function types.
//!
//! The spelling follows MLIR's builtin types so that printed IR parses in real MLIR:
//! `tensor<1x3x224x224xf32>`, `tensor<?x128xi64>`, `tensor<*xf32>`, `(tensor<4xf32>) -> tensor<4xf32>`.

use std::fmt;

/// The element type of a tensor, or a scalar type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ElementType {
    F16,
    BF16,
    F32,
    F64,
    I1,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    /// The 8-bit floats ([`crate::minifloat`]): stored and converted, computed as f32.
    F8E4M3FN,
    F8E4M3FNUZ,
    F8E5M2,
    F8E5M2FNUZ,
    /// 4-bit E2M1 floats (one a byte in memory, packed in files) and 8-bit exponents (E8M0).
    F4E2M1FN,
    F8E8M0FNU,
    /// 4- and 2-bit integers, one a byte in memory, packed in ONNX files.
    I4,
    U4,
    I2,
    U2,
}

impl ElementType {
    pub const ALL: [ElementType; 23] = [
        Self::F16,
        Self::BF16,
        Self::F32,
        Self::F64,
        Self::I1,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::I64,
        Self::U8,
        Self::U16,
        Self::U32,
        Self::U64,
        Self::F8E4M3FN,
        Self::F8E4M3FNUZ,
        Self::F8E5M2,
        Self::F8E5M2FNUZ,
        Self::F4E2M1FN,
        Self::F8E8M0FNU,
        Self::I4,
        Self::U4,
        Self::I2,
        Self::U2,
    ];

    /// MLIR's spelling (`ui8` for unsigned, `i8` for signless).
    pub fn name(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::BF16 => "bf16",
            Self::F32 => "f32",
            Self::F64 => "f64",
            Self::I1 => "i1",
            Self::I8 => "i8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::U8 => "ui8",
            Self::U16 => "ui16",
            Self::U32 => "ui32",
            Self::U64 => "ui64",
            Self::F8E4M3FN => "f8E4M3FN",
            Self::F8E4M3FNUZ => "f8E4M3FNUZ",
            Self::F8E5M2 => "f8E5M2",
            Self::F8E5M2FNUZ => "f8E5M2FNUZ",
            Self::F4E2M1FN => "f4E2M1FN",
            Self::F8E8M0FNU => "f8E8M0FNU",
            Self::I4 => "i4",
            Self::U4 => "ui4",
            Self::I2 => "i2",
            Self::U2 => "ui2",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Storage size of one element in bytes (`i1`, `i2` and `i4` are stored as one byte).
    pub fn byte_size(self) -> usize {
        match self {
            Self::I1 | Self::I8 | Self::U8 | Self::I4 | Self::U4 | Self::I2 | Self::U2 => 1,
            Self::F8E4M3FN | Self::F8E4M3FNUZ | Self::F8E5M2 | Self::F8E5M2FNUZ => 1,
            Self::F4E2M1FN | Self::F8E8M0FNU => 1,
            Self::F16 | Self::BF16 | Self::I16 | Self::U16 => 2,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F64 | Self::I64 | Self::U64 => 8,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(
            self,
            Self::F16
                | Self::BF16
                | Self::F32
                | Self::F64
                | Self::F8E4M3FN
                | Self::F8E4M3FNUZ
                | Self::F8E5M2
                | Self::F8E5M2FNUZ
                | Self::F4E2M1FN
                | Self::F8E8M0FNU
        )
    }

    pub fn is_integer(self) -> bool {
        !self.is_float()
    }

    /// The smallest value the type holds (`-inf` for floats).
    pub fn lowest(self) -> f64 {
        match self {
            Self::I8 => i8::MIN as f64,
            Self::I16 => i16::MIN as f64,
            Self::I32 => i32::MIN as f64,
            Self::I64 => i64::MIN as f64,
            Self::I4 => -8.0,
            Self::I2 => -2.0,
            Self::I1 | Self::U8 | Self::U16 | Self::U32 | Self::U64 | Self::U4 | Self::U2 => 0.0,
            _ => f64::NEG_INFINITY,
        }
    }

    /// The largest value the type holds (`+inf` for floats).
    pub fn highest(self) -> f64 {
        match self {
            Self::I1 => 1.0,
            Self::I8 => i8::MAX as f64,
            Self::U8 => u8::MAX as f64,
            Self::I16 => i16::MAX as f64,
            Self::U16 => u16::MAX as f64,
            Self::I32 => i32::MAX as f64,
            Self::U32 => u32::MAX as f64,
            Self::I64 => i64::MAX as f64,
            Self::U64 => u64::MAX as f64,
            Self::I4 => 7.0,
            Self::U4 => 15.0,
            Self::I2 => 1.0,
            Self::U2 => 3.0,
            _ => f64::INFINITY,
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor dimension: a known extent or `?`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Known(u64),
    Dynamic,
}

impl Dim {
    pub fn known(self) -> Option<u64> {
        match self {
            Dim::Known(n) => Some(n),
            Dim::Dynamic => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Dynamic => f.write_str("?"),
        }
    }
}

/// A tensor type; `shape == None` is an unranked tensor (`tensor<*xf32>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub shape: Option<Vec<Dim>>,
    pub element: ElementType,
}

impl TensorType {
    pub fn ranked(shape: Vec<Dim>, element: ElementType) -> Self {
        TensorType { shape: Some(shape), element }
    }

    /// A fully static tensor type from concrete extents.
    pub fn of(dims: &[u64], element: ElementType) -> Self {
        Self::ranked(dims.iter().map(|&d| Dim::Known(d)).collect(), element)
    }

    pub fn unranked(element: ElementType) -> Self {
        TensorType { shape: None, element }
    }

    pub fn rank(&self) -> Option<usize> {
        self.shape.as_ref().map(Vec::len)
    }

    /// All extents when every one is known.
    pub fn static_shape(&self) -> Option<Vec<u64>> {
        self.shape.as_ref()?.iter().map(|d| d.known()).collect()
    }

    /// The element count of a static shape; `None` for a dynamic one or one whose count does
    /// not fit in 64 bits (sizes from data are checked where they enter: `crate::memory`).
    pub fn num_elements(&self) -> Option<u64> {
        self.static_shape().and_then(|s| crate::memory::elements(&s))
    }

    pub fn byte_size(&self) -> Option<u64> {
        self.num_elements().and_then(|n| n.checked_mul(self.element.byte_size() as u64))
    }

    pub fn with_element(&self, element: ElementType) -> Self {
        TensorType { shape: self.shape.clone(), element }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor<")?;
        match &self.shape {
            None => f.write_str("*x")?,
            Some(dims) => {
                for d in dims {
                    write!(f, "{d}x")?;
                }
            }
        }
        write!(f, "{}>", self.element)
    }
}

/// A function signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FunctionType {
    pub inputs: Vec<Type>,
    pub results: Vec<Type>,
}

impl fmt::Display for FunctionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        write_list(f, &self.inputs)?;
        f.write_str(") -> ")?;
        // MLIR requires parentheses unless there is exactly one non-function result.
        match self.results.as_slice() {
            [single] if !matches!(single, Type::Function(_)) => write!(f, "{single}"),
            results => {
                f.write_str("(")?;
                write_list(f, results)?;
                f.write_str(")")
            }
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, types: &[Type]) -> fmt::Result {
    for (i, t) in types.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{t}")?;
    }
    Ok(())
}

/// Any type a value or a type attribute can have.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Tensor(TensorType),
    Scalar(ElementType),
    Index,
    None,
    Function(Box<FunctionType>),
}

impl Type {
    pub fn tensor(dims: &[u64], element: ElementType) -> Type {
        Type::Tensor(TensorType::of(dims, element))
    }

    pub fn as_tensor(&self) -> Option<&TensorType> {
        match self {
            Type::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// The element type of a tensor or the type of a scalar.
    pub fn element(&self) -> Option<ElementType> {
        match self {
            Type::Tensor(t) => Some(t.element),
            Type::Scalar(e) => Some(*e),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Tensor(t) => write!(f, "{t}"),
            Type::Scalar(e) => write!(f, "{e}"),
            Type::Index => f.write_str("index"),
            Type::None => f.write_str("none"),
            Type::Function(ft) => write!(f, "{ft}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_types_print_like_mlir() {
        let t = TensorType::ranked(vec![Dim::Dynamic, Dim::Known(3), Dim::Known(224)], ElementType::F32);
        assert_eq!(t.to_string(), "tensor<?x3x224xf32>");
        assert_eq!(TensorType::of(&[], ElementType::I64).to_string(), "tensor<i64>");
        assert_eq!(TensorType::unranked(ElementType::BF16).to_string(), "tensor<*xbf16>");
        assert_eq!(ElementType::U8.to_string(), "ui8");
    }

    #[test]
    fn function_types_parenthesize_multiple_results() {
        let t = Type::tensor(&[2], ElementType::F32);
        let one = FunctionType { inputs: vec![t.clone()], results: vec![t.clone()] };
        assert_eq!(one.to_string(), "(tensor<2xf32>) -> tensor<2xf32>");
        let none = FunctionType { inputs: vec![], results: vec![] };
        assert_eq!(none.to_string(), "() -> ()");
        let two = FunctionType { inputs: vec![], results: vec![t.clone(), t] };
        assert_eq!(two.to_string(), "() -> (tensor<2xf32>, tensor<2xf32>)");
    }
}
