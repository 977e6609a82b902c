//! Operation definitions: the single source of truth for what an op takes and produces.
//!
//! Each op is an [`OpDef`] value in a static table ([`builtin`] and [`smelt`]): its operands and
//! results (with optional and variadic slots), attributes with their defaults, regions, traits,
//! its [`OpClass`], the ONNX operator it imports from one to one, and hooks for result-type
//! inference, extra verification, reference evaluation ([`eval`]), constant folding and FLOP
//! counting. The verifier, parser, printer, passes, importer, cost model, executor and IRDL
//! generator all read these tables; no op is described twice. Op names are constants
//! ([`names`]), never string literals outside the tables.

pub mod builtin;
pub mod eval;
pub mod flops;
pub mod folders;
pub mod infer;
pub mod smelt;

/// Every op's name as a constant (`names::CONV2D == "smelt.conv2d"`), generated from the tables.
pub mod names {
    pub use super::builtin::names::*;
    pub use super::smelt::names::*;
}

use crate::attributes::{Attribute, DenseElements, DenseStorage};
use crate::ir::{Module, OpId, ValueId};
use crate::literal::Literal;
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
    /// `["a", "b"]`: an array of strings (names).
    StringArray,
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
        ) || matches!((self, attr), (AttrKind::StringArray, Attribute::Array(items))
                if items.iter().all(|i| matches!(i, Attribute::String(_))))
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
            AttrKind::StringArray => "an array of strings",
        }
    }
}

/// The value an optional attribute has when it is absent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrDefault {
    /// No value: absence has its own meaning (no `perm` reverses the axes).
    None,
    Int(i64),
    Float(f64),
    Bool(bool),
    String(&'static str),
    /// The same value for every spatial axis, as many as the op needs.
    Each(i64),
}

#[derive(Clone, Copy, Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub kind: AttrKind,
    pub required: bool,
    pub default: AttrDefault,
}

impl AttrDef {
    /// This optional attribute with `default` when absent.
    pub const fn or(self, default: AttrDefault) -> AttrDef {
        AttrDef { default, ..self }
    }
}

/// Properties passes may rely on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traits {
    /// No side effects: unused results make the op dead, equal ops are interchangeable.
    pub pure: bool,
    /// Operands may be swapped (binary ops).
    pub commutative: bool,
    /// Ends a block.
    pub terminator: bool,
    /// Its regions see only their own block arguments, never values from outside.
    pub isolated_from_above: bool,
}

/// What kind of computation an op is: how it is counted, fused, lowered and launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpClass {
    /// Each output element from the input elements at the same (numpy-broadcast) position;
    /// BatchNorm's parameters broadcast along axis 1.
    Elementwise,
    /// Sums products over a reduced axis (convolution, matrix products, attention): the anchor
    /// of a kernel, run on the GEMM micro-kernel.
    Contraction,
    /// Reduces windows of the input (pools); anchors a kernel.
    Window,
    /// Reduces each row (softmax, layer norm): takes an elementwise prologue.
    RowReduction,
    /// Reduces whole axes (`reduce_*`).
    Reduction,
    /// Its first result is its first operand's bytes under another shape: it moves no data.
    View,
    /// Copies elements to new positions (transpose, concat, slice, gather, pad, resize).
    Movement,
    /// Converts elements to another type.
    Conversion,
    /// Produces a shape, a range or a constant: no tensor input data is read.
    Generator,
    /// Holds or ends regions (module, functions, kernels).
    Structure,
}

/// Result types from operand types, attributes and constant operands.
pub type InferFn = fn(&OpView) -> Result<Vec<Type>, String>;
/// Op-specific checks beyond slot counts, attribute kinds and inferred types.
pub type VerifyFn = fn(&OpView) -> Result<(), String>;
/// Replacement values for the op's results when they can be computed at compile time.
pub type FoldFn = fn(&OpView) -> Option<Vec<Folded>>;

/// What an op computes, on materialized operands (one per operand, in order): the reference
/// semantics that folding, the reference interpreter and every test oracle run.
pub type EvalFn = fn(&OpView, &[&Literal]) -> Result<Vec<Literal>, String>;

/// FLOPs of one execution: all of them, and the part in convolutions and matrix products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpFlops {
    pub total: u64,
    pub conv_matmul: u64,
}

/// How an op's FLOPs are counted (the rules `smelt report` documents).
#[derive(Clone, Copy, Debug)]
pub enum Flops {
    /// Data movement and shapes.
    Zero,
    /// This many per output element.
    PerOutput(u64),
    /// This many per element of the first operand.
    PerInput(u64),
    /// Anything else (contractions, windows, means): the count, and the rule in words.
    Custom(fn(&OpView) -> OpFlops, &'static str),
}

impl std::fmt::Display for Flops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flops::Zero => write!(f, "0"),
            Flops::PerOutput(k) => write!(f, "{k} per output element"),
            Flops::PerInput(k) => write!(f, "{k} per input element"),
            Flops::Custom(_, rule) => write!(f, "{rule}"),
        }
    }
}

impl std::fmt::Display for AttrDefault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrDefault::None => Ok(()),
            AttrDefault::Int(v) => write!(f, "{v}"),
            AttrDefault::Float(v) => write!(f, "{v}"),
            AttrDefault::Bool(v) => write!(f, "{v}"),
            AttrDefault::String(v) => write!(f, "\"{v}\""),
            AttrDefault::Each(v) => write!(f, "{v} per axis"),
        }
    }
}

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
    pub class: OpClass,
    /// The ONNX operator this op imports from one to one: operands in order, attributes of the
    /// same names (snake_case), the table's defaults for absent ones.
    pub onnx: Option<&'static str>,
    pub infer: Option<InferFn>,
    pub verify: Option<VerifyFn>,
    pub fold: Option<FoldFn>,
    pub eval: Option<EvalFn>,
    pub flops: Flops,
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
            traits: Traits { pure: true, commutative: false, terminator: false, isolated_from_above: false },
            class: OpClass::Structure,
            onnx: None,
            infer: None,
            verify: None,
            fold: None,
            eval: None,
            flops: Flops::Zero,
        }
    }
    /// The same definition under `name` (the table macros name every entry).
    pub const fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
    pub const fn class(mut self, class: OpClass) -> Self {
        self.class = class;
        self
    }
    pub const fn onnx(mut self, op_type: &'static str) -> Self {
        self.onnx = Some(op_type);
        self
    }
    pub const fn eval(mut self, f: EvalFn) -> Self {
        self.eval = Some(f);
        self
    }
    pub const fn flops(mut self, rule: Flops) -> Self {
        self.flops = rule;
        self
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
                Some(folders::fold_constant)
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

    /// Whether the first result aliases the first operand (a view moves no data).
    pub fn is_view(&self) -> bool {
        self.class == OpClass::View
    }

    /// The FLOPs of the op `v` by the table's rule.
    pub fn count_flops(&self, v: &OpView) -> OpFlops {
        let elements = |value: Option<&ValueId>| {
            value.and_then(|&x| v.module.value_type(x).as_tensor()?.num_elements()).unwrap_or(0)
        };
        match self.flops {
            Flops::Zero => OpFlops::default(),
            Flops::PerOutput(k) => OpFlops { total: k * elements(v.module.op(v.id).results().first()), conv_matmul: 0 },
            Flops::PerInput(k) => OpFlops { total: k * elements(v.operands().first()), conv_matmul: 0 },
            Flops::Custom(f, _) => f(v),
        }
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
    AttrDef { name, kind, required: true, default: AttrDefault::None }
}
pub const fn attr_opt(name: &'static str, kind: AttrKind) -> AttrDef {
    AttrDef { name, kind, required: false, default: AttrDefault::None }
}
pub const fn attr_int(name: &'static str, default: i64) -> AttrDef {
    attr_opt(name, AttrKind::Int).or(AttrDefault::Int(default))
}
pub const fn attr_float(name: &'static str, default: f64) -> AttrDef {
    attr_opt(name, AttrKind::Float).or(AttrDefault::Float(default))
}
pub const fn attr_bool(name: &'static str, default: bool) -> AttrDef {
    attr_opt(name, AttrKind::Bool).or(AttrDefault::Bool(default))
}
pub const fn attr_string(name: &'static str, default: &'static str) -> AttrDef {
    attr_opt(name, AttrKind::String).or(AttrDefault::String(default))
}
/// An `array<i64: ...>` with one value per spatial axis by default (strides 1, pads 0).
pub const fn attr_each(name: &'static str, default: i64) -> AttrDef {
    attr_opt(name, AttrKind::I64Array).or(AttrDefault::Each(default))
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
        self.slot(name).map(|i| self.operands()[i])
    }

    /// The position among the operands of the named slot's (first) value, if it is filled.
    pub fn slot(&self, name: &str) -> Option<usize> {
        let def = self.def();
        let ranges = OpDef::assign_slots(def.operands, self.operands().len())?;
        let slot = def.operands.iter().position(|s| s.name == name)?;
        ranges[slot].clone().next()
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

    /// An integer attribute, or the op table's default.
    pub fn int(&self, name: &str) -> i64 {
        self.module.op(self.id).int_attr(name)
    }

    /// A float attribute, or the op table's default.
    pub fn float(&self, name: &str) -> f64 {
        self.module.op(self.id).float_attr(name)
    }

    /// A bool attribute, or the op table's default.
    pub fn bool(&self, name: &str) -> bool {
        self.module.op(self.id).bool_attr(name)
    }

    /// An integer attribute whose absence means something the table cannot state as a value.
    pub fn opt_int(&self, name: &str) -> Option<i64> {
        self.attr(name).and_then(Attribute::as_int)
    }

    /// An `array<i64>` attribute, or `n` copies of the table's per-axis default.
    pub fn each(&self, name: &str, n: usize) -> Vec<i64> {
        self.module.op(self.id).ints_attr(name, n)
    }

    pub fn ints(&self, name: &str) -> Option<&'a [i64]> {
        self.attr(name).and_then(Attribute::as_i64_array)
    }

    pub fn string(&self, name: &str) -> Option<&'a str> {
        self.attr(name).and_then(Attribute::as_str)
    }

    /// A string attribute, or the op table's default.
    pub fn string_attr(&self, name: &str) -> &'a str {
        self.module.op(self.id).string_attr(name)
    }

    /// The constant behind a value: a `smelt.constant` result with inline or resource data.
    pub fn constant_of(&self, value: ValueId) -> Option<&'a DenseElements> {
        let op = self.module.defining_op(value)?;
        let op = self.module.op(op);
        if !op.is(names::CONSTANT) {
            return None;
        }
        op.attr("value")?.as_dense()
    }

    /// Integer contents of a small constant operand (shapes, axes, indices).
    pub fn const_ints(&self, value: ValueId) -> Option<Vec<i64>> {
        Literal::from_dense(self.constant_of(value)?, &self.module.resources).map(|l| l.to_i64())
    }

    /// Whether the value is an inline constant (not a weight held by handle).
    pub fn is_inline_constant(&self, value: ValueId) -> bool {
        self.constant_of(value).is_some_and(|d| matches!(d.storage, DenseStorage::Inline(_)))
    }
}
