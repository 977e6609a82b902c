//! Attributes: compile-time constants attached to operations.
//!
//! Spellings follow MLIR's builtin attributes. Large tensors (weights) never live in the IR text:
//! they are [`DenseElements`] whose storage is a [`ResourceHandle`] into the module's
//! [`crate::resources::ResourceStore`], printed as `dense_resource<name> : tensor<...>` exactly like
//! MLIR prints elided resources.

use crate::types::{ElementType, TensorType, Type};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The name of a blob in the module's resource store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceHandle(pub Arc<str>);

/// Where the elements of a dense attribute live.
#[derive(Clone, Debug, PartialEq)]
pub enum DenseStorage {
    /// Little-endian element bytes, one element (splat) or all of them.
    Inline(Arc<[u8]>),
    /// A blob in the resource store; contents are not part of the attribute's identity.
    Resource(ResourceHandle),
}

/// A constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseElements {
    pub ty: TensorType,
    pub storage: DenseStorage,
}

impl DenseElements {
    /// Builds an inline attribute from element values; `values.len()` must be 1 (a splat) or the
    /// element count of `ty`.
    pub fn from_f64(ty: TensorType, values: &[f64]) -> Self {
        let mut bytes = Vec::with_capacity(values.len() * ty.element.byte_size());
        crate::scalar::encode_floats(ty.element, values, &mut bytes);
        DenseElements { ty, storage: DenseStorage::Inline(bytes.into()) }
    }

    pub fn from_i64(ty: TensorType, values: &[i64]) -> Self {
        let mut bytes = Vec::with_capacity(values.len() * ty.element.byte_size());
        for &v in values {
            crate::scalar::encode_int(ty.element, v, &mut bytes);
        }
        DenseElements { ty, storage: DenseStorage::Inline(bytes.into()) }
    }

    pub fn is_splat(&self) -> bool {
        match &self.storage {
            DenseStorage::Inline(b) => b.len() == self.ty.element.byte_size(),
            DenseStorage::Resource(_) => false,
        }
    }

    /// Inline element bytes, if not held by a resource handle.
    pub fn inline_bytes(&self) -> Option<&[u8]> {
        match &self.storage {
            DenseStorage::Inline(b) => Some(b),
            DenseStorage::Resource(_) => None,
        }
    }
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attribute {
    /// `unit`: presence is the information.
    Unit,
    Bool(bool),
    /// An integer of the given integer type (`i64` unless stated).
    Int(i64, ElementType),
    /// A float of the given float type, held as f64.
    Float(f64, ElementType),
    String(String),
    Type(Type),
    Array(Vec<Attribute>),
    /// `array<i64: 1, 2>`: MLIR's dense i64 array, used for strides, pads, permutations.
    I64Array(Vec<i64>),
    /// `array<f32: ...>` / `array<f64: ...>`.
    FloatArray(Vec<f64>, ElementType),
    Dict(BTreeMap<String, Attribute>),
    Dense(DenseElements),
    /// `@name`: a reference to a symbol (a function).
    Symbol(String),
}

impl Attribute {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Attribute::Int(v, _) => Some(*v),
            Attribute::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    pub fn as_float(&self) -> Option<f64> {
        match self {
            Attribute::Float(v, _) => Some(*v),
            Attribute::Int(v, _) => Some(*v as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Attribute::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64_array(&self) -> Option<&[i64]> {
        match self {
            Attribute::I64Array(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Attribute::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_type(&self) -> Option<&Type> {
        match self {
            Attribute::Type(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_dense(&self) -> Option<&DenseElements> {
        match self {
            Attribute::Dense(d) => Some(d),
            _ => None,
        }
    }

    /// A short human name of the attribute kind, for diagnostics.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Attribute::Unit => "unit",
            Attribute::Bool(_) => "bool",
            Attribute::Int(..) => "integer",
            Attribute::Float(..) => "float",
            Attribute::String(_) => "string",
            Attribute::Type(_) => "type",
            Attribute::Array(_) => "array",
            Attribute::I64Array(_) => "array<i64>",
            Attribute::FloatArray(..) => "float array",
            Attribute::Dict(_) => "dictionary",
            Attribute::Dense(_) => "dense elements",
            Attribute::Symbol(_) => "symbol reference",
        }
    }
}

/// Writes a float so that MLIR's lexer reads it back bit-exactly (`1.0`, `1.0e-05`, or hex for
/// non-finite values, which MLIR spells as the bit pattern of the float type).
pub fn write_float(f: &mut impl fmt::Write, value: f64, ty: ElementType) -> fmt::Result {
    if !value.is_finite() {
        return match ty {
            ElementType::F32 => write!(f, "0x{:08X}", (value as f32).to_bits()),
            ElementType::F16 => write!(f, "0x{:04X}", half::f16::from_f64(value).to_bits()),
            ElementType::BF16 => write!(f, "0x{:04X}", half::bf16::from_f64(value).to_bits()),
            _ => write!(f, "0x{:016X}", value.to_bits()),
        };
    }
    // Shortest text that reads back to the same value at the attribute's precision.
    let text = if ty == ElementType::F64 { format!("{value:e}") } else { format!("{:e}", value as f32) };
    let (mantissa, exponent) = text.split_once('e').expect("`{:e}` always has an exponent");
    let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
    let exponent: i32 = exponent.parse().expect("exponent is an integer");
    if (-4..16).contains(&exponent) {
        // Plain positional notation reads better for ordinary magnitudes.
        let plain = if ty == ElementType::F64 { format!("{value:?}") } else { format!("{:?}", value as f32) };
        if !plain.contains('e') {
            return f.write_str(&plain);
        }
    }
    write!(f, "{mantissa}e{exponent:+03}")
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::Unit => f.write_str("unit"),
            Attribute::Bool(b) => write!(f, "{b}"),
            Attribute::Int(v, ty) => write!(f, "{v} : {ty}"),
            Attribute::Float(v, ty) => {
                write_float(f, *v, *ty)?;
                write!(f, " : {ty}")
            }
            Attribute::String(s) => write_string(f, s),
            Attribute::Type(t) => write!(f, "{t}"),
            Attribute::Array(items) => {
                f.write_str("[")?;
                for (i, a) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str("]")
            }
            Attribute::I64Array(items) => {
                f.write_str("array<i64")?;
                for (i, v) in items.iter().enumerate() {
                    f.write_str(if i == 0 { ": " } else { ", " })?;
                    write!(f, "{v}")?;
                }
                f.write_str(">")
            }
            Attribute::FloatArray(items, ty) => {
                write!(f, "array<{ty}")?;
                for (i, v) in items.iter().enumerate() {
                    f.write_str(if i == 0 { ": " } else { ", " })?;
                    write_float(f, *v, *ty)?;
                }
                f.write_str(">")
            }
            Attribute::Dict(entries) => write_dict(f, entries.iter()),
            Attribute::Dense(d) => write_dense(f, d),
            Attribute::Symbol(name) => {
                f.write_str("@")?;
                write_symbol_name(f, name)
            }
        }
    }
}

/// Writes `{a = 1 : i64, b = "x"}`; names that are not bare identifiers are quoted.
pub fn write_dict<'a>(
    f: &mut fmt::Formatter<'_>,
    entries: impl Iterator<Item = (&'a String, &'a Attribute)>,
) -> fmt::Result {
    f.write_str("{")?;
    for (i, (name, value)) in entries.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if is_bare_identifier(name) {
            f.write_str(name)?;
        } else {
            write_string(f, name)?;
        }
        if *value != Attribute::Unit {
            write!(f, " = {value}")?;
        }
    }
    f.write_str("}")
}

pub fn is_bare_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.')
}

pub fn write_symbol_name(f: &mut impl fmt::Write, name: &str) -> fmt::Result {
    if is_bare_identifier(name) {
        f.write_str(name)
    } else {
        write_string(f, name)
    }
}

/// MLIR string literal: printable ASCII as is, `\"` `\\` and `\XX` hex escapes for the rest.
pub fn write_string(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for byte in s.bytes() {
        match byte {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            0x20..=0x7e => f.write_char(byte as char)?,
            _ => write!(f, "\\{byte:02X}")?,
        }
    }
    f.write_char('"')
}

fn write_dense(f: &mut fmt::Formatter<'_>, d: &DenseElements) -> fmt::Result {
    match &d.storage {
        DenseStorage::Resource(handle) => {
            f.write_str("dense_resource<")?;
            write_symbol_name(f, &handle.0)?;
            write!(f, "> : {}", d.ty)
        }
        DenseStorage::Inline(bytes) => {
            let elem = d.ty.element;
            let count = bytes.len() / elem.byte_size();
            let write_elem = |f: &mut fmt::Formatter<'_>, i: usize| -> fmt::Result {
                let chunk = &bytes[i * elem.byte_size()..(i + 1) * elem.byte_size()];
                if elem == ElementType::I1 {
                    write!(f, "{}", chunk[0] != 0)
                } else if elem.is_float() {
                    write_float(f, crate::scalar::decode(elem, chunk), elem)
                } else {
                    write!(f, "{}", crate::scalar::decode_int(elem, chunk))
                }
            };
            f.write_str("dense<")?;
            if count == 0 {
                // MLIR spells an empty literal `dense<>`.
            } else if d.is_splat() {
                write_elem(f, 0)?;
            } else {
                let shape = d.ty.static_shape().unwrap_or_else(|| vec![count as u64]);
                write_nested(f, &shape, &mut 0, &write_elem)?;
            }
            write!(f, "> : {}", d.ty)
        }
    }
}

/// Nested brackets per dimension, as MLIR prints dense literals: `[[1, 2], [3, 4]]`.
fn write_nested(
    f: &mut fmt::Formatter<'_>,
    shape: &[u64],
    next: &mut usize,
    write_elem: &dyn Fn(&mut fmt::Formatter<'_>, usize) -> fmt::Result,
) -> fmt::Result {
    f.write_str("[")?;
    let (&outer, inner) = shape.split_first().expect("rank > 0 when nesting");
    for i in 0..outer {
        if i > 0 {
            f.write_str(", ")?;
        }
        if inner.is_empty() {
            write_elem(f, *next)?;
            *next += 1;
        } else {
            write_nested(f, inner, next, write_elem)?;
        }
    }
    f.write_str("]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(v: f64, ty: ElementType) -> String {
        let mut s = String::new();
        write_float(&mut s, v, ty).unwrap();
        s
    }

    #[test]
    fn floats_always_have_a_decimal_point() {
        assert_eq!(float(1.0, ElementType::F32), "1.0");
        assert_eq!(float(1e-5, ElementType::F32), "1.0e-05");
        assert_eq!(float(0.1, ElementType::F32), "0.1");
        assert_eq!(float(6.0, ElementType::F32), "6.0");
        assert_eq!(float(-2.5e20, ElementType::F64), "-2.5e+20");
        assert_eq!(float(f64::INFINITY, ElementType::F32), "0x7F800000");
    }

    #[test]
    fn dense_literals_nest_by_dimension() {
        let ty = TensorType::of(&[2, 2], ElementType::I64);
        let d = DenseElements::from_i64(ty, &[1, 2, 3, 4]);
        assert_eq!(Attribute::Dense(d).to_string(), "dense<[[1, 2], [3, 4]]> : tensor<2x2xi64>");
        let splat = DenseElements::from_f64(TensorType::of(&[3], ElementType::F32), &[0.5]);
        assert_eq!(Attribute::Dense(splat).to_string(), "dense<0.5> : tensor<3xf32>");
    }

    #[test]
    fn strings_escape_like_mlir() {
        let mut s = String::new();
        write_string(&mut s, "a\"b\n").unwrap();
        assert_eq!(s, "\"a\\\"b\\0A\"");
    }
}
