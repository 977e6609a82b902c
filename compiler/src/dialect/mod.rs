//! Operation definitions: the single source of truth for what an op takes and produces.
//!
//! Each op is an [`OpDef`] value in a static table ([`builtin`] and [`smelt`]): its operands and
//! results (with optional and variadic slots), attributes, regions, traits, and hooks for
//! result-type inference, extra verification and constant folding. The verifier, the parser, the
//! printer, shape inference, canonicalization and the IRDL generator all read these tables; no
//! op is described twice.

pub mod builtin;
pub mod eval;
pub mod fold;
pub mod infer;
pub mod smelt;

use crate::attributes::{Attribute, DenseElements, DenseStorage};
use crate::ir::{Module, OpId, ValueId};
use crate::types::{TensorType, Type};
use std::collections::HashMap;
use std::sync::OnceLock;

/// How many values fill an operand or result slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    One,
    Optional,
    Variadic,
}

#[derive(Clone, Copy, Debug)]
pub struct SlotDef {
    pub name: &'static str,
    pub arity: Arity,
}

/// The kind of value an attribute must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Int,
    Float,
    Bool,
    String,
    I64Array,
    Type,
    Dense,
    Symbol,
}

impl AttrKind {
    pub fn accepts(self, attr: &Attribute) -> bool {
        matches!(
            (self, attr),
            (AttrKind::Int, Attribute::Int(..))
                | (AttrKind::Float, Attribute::Float(..))
                | (AttrKind::Bool, Attribute::Bool(_))
                | (AttrKind::String, Attribute::String(_))
                | (AttrKind::I64Array, Attribute::I64Array(_))
                | (AttrKind::Type, Attribute::Type(_))
                | (AttrKind::Dense, Attribute::Dense(_))
                | (AttrKind::Symbol, Attribute::Symbol(_))
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            AttrKind::Int => "an integer",
            AttrKind::Float => "a float",
            AttrKind::Bool => "a bool",
            AttrKind::String => "a string",
            AttrKind::I64Array => "an array<i64: ...>",
            AttrKind::Type => "a type",
            AttrKind::Dense => "dense elements",
            AttrKind::Symbol => "a symbol reference",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub kind: AttrKind,
    pub required: bool,
}

/// Properties passes may rely on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traits {
    /// No side effects: unused results make the op dead, equal ops are interchangeable.
    pub pure: bool,
    /// Operands may be swapped (binary ops).
    pub commutative: bool,
    /// Computes each output element from the input elements at the same (broadcast) position.
    pub elementwise: bool,
    /// Ends a block.
    pub terminator: bool,
    /// Its regions see only their own block arguments, never values from outside.
    pub isolated_from_above: bool,
}

/// Result types from operand types, attributes and constant operands.
pub type InferFn = fn(&OpView) -> Result<Vec<Type>, String>;
/// Op-specific checks beyond slot counts, attribute kinds and inferred types.
pub type VerifyFn = fn(&OpView) -> Result<(), String>;
/// Replacement values for the op's results when they can be computed at compile time.
pub type FoldFn = fn(&OpView) -> Option<Vec<Folded>>;

/// What a result folds to.
#[derive(Clone, Debug)]
pub enum Folded {
    /// An existing value of the same type.
    Value(ValueId),
    /// A constant, materialized as `smelt.constant`.
    Constant(DenseElements),
}

#[derive(Debug)]
pub struct OpDef {
    pub name: &'static str,
    pub summary: &'static str,
    pub operands: &'static [SlotDef],
    pub results: &'static [SlotDef],
    pub attributes: &'static [AttrDef],
    pub regions: usize,
    pub traits: Traits,
    pub infer: Option<InferFn>,
    pub verify: Option<VerifyFn>,
    pub fold: Option<FoldFn>,
}

impl OpDef {
    pub const fn new(name: &'static str, summary: &'static str) -> Self {
        OpDef {
            name,
            summary,
            operands: &[],
            results: &[],
            attributes: &[],
            regions: 0,
            traits: Traits {
                pure: true,
                commutative: false,
                elementwise: false,
                terminator: false,
                isolated_from_above: false,
            },
            infer: None,
            verify: None,
            fold: None,
        }
    }
    pub const fn operands(mut self, slots: &'static [SlotDef]) -> Self {
        self.operands = slots;
        self
    }
    pub const fn results(mut self, slots: &'static [SlotDef]) -> Self {
        self.results = slots;
        self
    }
    pub const fn attrs(mut self, attrs: &'static [AttrDef]) -> Self {
        self.attributes = attrs;
        self
    }
    pub const fn regions(mut self, n: usize) -> Self {
        self.regions = n;
        self
    }
    pub const fn traits(mut self, traits: Traits) -> Self {
        self.traits = traits;
        self
    }
    pub const fn infer(mut self, f: InferFn) -> Self {
        self.infer = Some(f);
        self
    }
    pub const fn verify(mut self, f: VerifyFn) -> Self {
        self.verify = Some(f);
        self
    }
    pub const fn fold(mut self, f: FoldFn) -> Self {
        self.fold = Some(f);
        self
    }

    /// The fold hook canonicalization uses: the op's own, or for every other pure smelt op with
    /// operands, constant evaluation through the reference semantics.
    pub fn fold_hook(&self) -> Option<FoldFn> {
        match self.fold {
            Some(f) => Some(f),
            None if self.dialect() == "smelt" && self.traits.pure && !self.operands.is_empty() && self.regions == 0 => {
                Some(fold::fold_constant)
            }
            None => None,
        }
    }

    /// The dialect prefix: `smelt` in `smelt.relu`.
    pub fn dialect(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(d, _)| d)
    }

    pub fn attr_def(&self, name: &str) -> Option<&AttrDef> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Assigns `n` actual values to slots: for each slot, the range of actual indices it covers.
    /// `None` when `n` cannot fill the slots. Optional slots fill left to right; a variadic slot
    /// takes whatever the fixed slots leave.
    pub fn assign_slots(slots: &[SlotDef], n: usize) -> Option<Vec<std::ops::Range<usize>>> {
        let required = slots.iter().filter(|s| s.arity == Arity::One).count();
        let optional = slots.iter().filter(|s| s.arity == Arity::Optional).count();
        let variadic = slots.iter().any(|s| s.arity == Arity::Variadic);
        if n < required || (!variadic && n > required + optional) {
            return None;
        }
        let mut spare = n - required;
        let mut variadic_len = if variadic { spare } else { 0 };
        if variadic {
            // Optionals cannot be combined with a variadic slot unambiguously; none do.
            spare = 0;
        }
        let mut ranges = Vec::with_capacity(slots.len());
        let mut at = 0;
        for s in slots {
            let len = match s.arity {
                Arity::One => 1,
                Arity::Optional => {
                    let take = usize::from(spare > 0);
                    spare -= take;
                    take
                }
                Arity::Variadic => std::mem::take(&mut variadic_len),
            };
            ranges.push(at..at + len);
            at += len;
        }
        Some(ranges)
    }
}

pub const fn one(name: &'static str) -> SlotDef {
    SlotDef { name, arity: Arity::One }
}
pub const fn opt(name: &'static str) -> SlotDef {
    SlotDef { name, arity: Arity::Optional }
}
pub const fn many(name: &'static str) -> SlotDef {
    SlotDef { name, arity: Arity::Variadic }
}
pub const fn attr(name: &'static str, kind: AttrKind) -> AttrDef {
    AttrDef { name, kind, required: true }
}
pub const fn attr_opt(name: &'static str, kind: AttrKind) -> AttrDef {
    AttrDef { name, kind, required: false }
}

/// Every registered op, in table order.
pub fn all_ops() -> impl Iterator<Item = &'static OpDef> {
    builtin::OPS.iter().chain(smelt::OPS.iter())
}

/// The definition of a registered op name.
pub fn lookup(name: &str) -> Option<&'static OpDef> {
    static TABLE: OnceLock<HashMap<&'static str, &'static OpDef>> = OnceLock::new();
    TABLE.get_or_init(|| all_ops().map(|d| (d.name, d)).collect()).get(name).copied()
}

/// A read-only view of one operation with typed accessors, handed to op hooks.
#[derive(Clone, Copy)]
pub struct OpView<'a> {
    pub module: &'a Module,
    pub id: OpId,
}

impl<'a> OpView<'a> {
    pub fn new(module: &'a Module, id: OpId) -> Self {
        OpView { module, id }
    }

    pub fn def(&self) -> &'static OpDef {
        self.module.op(self.id).def
    }

    pub fn operands(&self) -> &'a [ValueId] {
        self.module.op(self.id).operands()
    }

    /// The value in the named operand slot, if that slot is filled (first value of a variadic).
    pub fn operand(&self, name: &str) -> Option<ValueId> {
        let def = self.def();
        let ranges = OpDef::assign_slots(def.operands, self.operands().len())?;
        let slot = def.operands.iter().position(|s| s.name == name)?;
        ranges[slot].clone().next().map(|i| self.operands()[i])
    }

    pub fn operand_type(&self, i: usize) -> Result<&'a Type, String> {
        let v = *self.operands().get(i).ok_or_else(|| format!("missing operand #{i}"))?;
        Ok(self.module.value_type(v))
    }

    /// The tensor type of operand `i`, or an error naming the slot.
    pub fn tensor(&self, i: usize) -> Result<&'a TensorType, String> {
        self.operand_type(i)?
            .as_tensor()
            .ok_or_else(|| format!("operand #{i} must be a tensor, got {}", self.operand_type(i).unwrap()))
    }

    pub fn result_type(&self, i: usize) -> &'a Type {
        self.module.value_type(self.module.op(self.id).results()[i])
    }

    pub fn attr(&self, name: &str) -> Option<&'a Attribute> {
        self.module.op(self.id).attr(name)
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(Attribute::as_int).unwrap_or(default)
    }

    pub fn float(&self, name: &str, default: f64) -> f64 {
        self.attr(name).and_then(Attribute::as_float).unwrap_or(default)
    }

    pub fn bool(&self, name: &str, default: bool) -> bool {
        self.attr(name).and_then(Attribute::as_bool).unwrap_or(default)
    }

    pub fn ints(&self, name: &str) -> Option<&'a [i64]> {
        self.attr(name).and_then(Attribute::as_i64_array)
    }

    pub fn string(&self, name: &str) -> Option<&'a str> {
        self.attr(name).and_then(Attribute::as_str)
    }

    /// The constant behind a value: a `smelt.constant` result with inline or resource data.
    pub fn constant_of(&self, value: ValueId) -> Option<&'a DenseElements> {
        let op = self.module.defining_op(value)?;
        let op = self.module.op(op);
        if op.name() != "smelt.constant" {
            return None;
        }
        op.attr("value")?.as_dense()
    }

    /// Integer contents of a small constant operand (shapes, axes, indices).
    pub fn const_ints(&self, value: ValueId) -> Option<Vec<i64>> {
        fold::Literal::from_dense(self.constant_of(value)?, &self.module.resources).map(|l| l.to_i64())
    }

    /// Whether the value is an inline constant (not a weight held by handle).
    pub fn is_inline_constant(&self, value: ValueId) -> bool {
        self.constant_of(value).is_some_and(|d| matches!(d.storage, DenseStorage::Inline(_)))
    }
}
