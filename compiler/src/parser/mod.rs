//! Parses MLIR syntax into a [`Module`]: the generic op form for every op, and MLIR's custom
//! forms of `module`, `func.func` and `return`. Errors carry the file position of the offending
//! token; nothing in the input can make the parser panic (see `fuzz/`).

use crate::attributes::{Attribute, DenseElements, DenseStorage, ResourceHandle};
use crate::diagnostics::Diagnostic;
use crate::dialect::names;
use crate::dialect::{self, OpDef};
use crate::ir::{BlockId, Module, OpId, OpSpec, RegionId, ValueId};
use crate::location::Location;
use crate::types::{Dim, ElementType, FunctionType, TensorType, Type};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod attributes;
mod lexer;
mod ops;
mod types;

type PResult<T> = Result<T, Diagnostic>;

/// Parses `source` (named `file` in diagnostics). Top-level ops other than a single
/// `builtin.module` are wrapped in an implicit module, as MLIR does.
pub fn parse_module(source: &str, file: &str) -> PResult<Module> {
    let mut p = Parser {
        src: source.as_bytes(),
        text: source,
        line_starts: std::iter::once(0).chain(source.match_indices('\n').map(|(i, _)| i + 1)).collect(),
        pos: 0,
        file: file.into(),
        module: Module::new(Location::file(file, 1, 1)),
        scopes: vec![HashMap::new()],
        depth: 0,
    };
    p.skip_trivia();
    let body = p.module.body();
    let mut top = Vec::new();
    while !p.at_end() {
        top.push(p.parse_operation(body)?);
        p.skip_trivia();
    }
    // `module { ... }` written out: make it the root instead of nesting it.
    if let [only] = top[..] {
        if p.module.op(only).name() == names::MODULE {
            p.module.detach_op(only);
            let old_root = p.module.root();
            p.module.set_root(only);
            p.module.erase_op(old_root);
        }
    }
    Ok(p.module)
}

/// Values visible by name. A scope per region; lookups walk outwards.
type Scope = HashMap<String, ValueId>;

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    /// Byte offset of each line's start, for positions in diagnostics and locations.
    line_starts: Vec<usize>,
    pos: usize,
    file: Arc<str>,
    module: Module,
    scopes: Vec<Scope>,
    depth: usize,
}

/// Regions nest through recursion; bound it so that hostile input cannot overflow the stack.
const MAX_NESTING: usize = 64;
/// Largest tensor a type may describe (elements) and largest rank.
const MAX_ELEMENTS: u64 = 1 << 48;
const MAX_RANK: usize = 32;

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as i64);
    }
    text.parse().ok()
}

/// Decimal text, or a hex bit pattern of the float type (how MLIR spells inf and nan).
fn parse_float(text: &str, ty: ElementType) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        let bits = u64::from_str_radix(hex, 16).ok()?;
        return Some(match ty {
            ElementType::F32 => f32::from_bits(u32::try_from(bits).ok()?) as f64,
            ElementType::F16 => half::f16::from_bits(u16::try_from(bits).ok()?).to_f64(),
            ElementType::BF16 => half::bf16::from_bits(u16::try_from(bits).ok()?).to_f64(),
            _ => f64::from_bits(bits),
        });
    }
    text.parse().ok()
}
