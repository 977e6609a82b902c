//! The e-graph's tensor language and its e-class analysis.
//!
//! Every dialect op is one [`Node::Op`]; its attribute dictionary is an interned leaf
//! ([`Node::Attrs`]) kept as the last child, so rewrite patterns can bind attributes like any
//! operand (`(smelt.softmax ?x ?attrs)`) and rules can check them. Values from outside the
//! rewritten body (function arguments, constants) are [`Node::Leaf`]s. A fused kernel is a
//! [`Node::Kernel`]: a body [`Template`] applied to input classes.
//!
//! The analysis keeps a *scratch module*, a copy of the input module into which every new e-class
//! is materialized as a real op. Types therefore come from the dialect's own inference functions
//! (one definition of every op's shape rules), and costs from the same `op_cost` that `smelt
//! report` uses.

use egg::{DidMerge, Id};
use smelt_compiler::attributes::{Attribute, DenseElements};
use smelt_compiler::builder::Builder;
use smelt_compiler::ir::{BlockId, Module, OpId, OpSpec, ValueId};
use smelt_compiler::literal::Literal;
use smelt_compiler::names;
use smelt_compiler::{Location, Type};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// An attribute dictionary, as ops store it.
pub type Attrs = BTreeMap<String, Attribute>;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// A value the rewrite does not look into: a function argument or a constant
    /// (`Tensors::leaves`).
    Leaf(u32),
    /// An interned attribute dictionary (`Tensors::attrs`).
    Attrs(u32),
    /// A dialect op with `results` results: operand classes, then the attribute class.
    Op(OpKey, Vec<Id>),
    /// Result `index` of a multi-result op.
    Get(u32, [Id; 1]),
    /// A fused kernel: `Tensors::templates[template]` applied to the input classes.
    Kernel(u32, Vec<Id>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpKey {
    pub name: &'static str,
    pub results: u32,
}

/// What `matches` compares: everything but the children.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Discriminant {
    Leaf(u32),
    Attrs(u32),
    Op(OpKey),
    Get(u32),
    Kernel(u32),
}

impl Node {
    pub fn op(name: &'static str, operands: &[Id], attrs: Id) -> Node {
        let mut children = operands.to_vec();
        children.push(attrs);
        Node::Op(OpKey { name, results: 1 }, children)
    }

    /// For an op, its operand classes (without the attribute class).
    pub fn operands(&self) -> &[Id] {
        match self {
            Node::Op(_, c) => &c[..c.len() - 1],
            Node::Kernel(_, c) => c,
            Node::Get(_, c) => c,
            _ => &[],
        }
    }

    pub fn attrs_class(&self) -> Option<Id> {
        match self {
            Node::Op(_, c) => c.last().copied(),
            _ => None,
        }
    }

    pub fn op_name(&self) -> Option<&'static str> {
        match self {
            Node::Op(k, _) => Some(k.name),
            _ => None,
        }
    }
}

impl egg::Language for Node {
    type Discriminant = Discriminant;

    fn discriminant(&self) -> Discriminant {
        match self {
            Node::Leaf(i) => Discriminant::Leaf(*i),
            Node::Attrs(i) => Discriminant::Attrs(*i),
            Node::Op(k, _) => Discriminant::Op(*k),
            Node::Get(i, _) => Discriminant::Get(*i),
            Node::Kernel(t, _) => Discriminant::Kernel(*t),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        self.discriminant() == other.discriminant() && self.children().len() == other.children().len()
    }

    fn children(&self) -> &[Id] {
        match self {
            Node::Leaf(_) | Node::Attrs(_) => &[],
            Node::Op(_, c) | Node::Kernel(_, c) => c,
            Node::Get(_, c) => c,
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Node::Leaf(_) | Node::Attrs(_) => &mut [],
            Node::Op(_, c) | Node::Kernel(_, c) => c,
            Node::Get(_, c) => c,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Node::Leaf(i) => write!(f, "leaf{i}"),
            Node::Attrs(i) => write!(f, "attrs{i}"),
            Node::Op(k, _) => f.write_str(k.name),
            Node::Get(i, _) => write!(f, "get{i}"),
            Node::Kernel(t, _) => write!(f, "kernel{t}"),
        }
    }
}

impl egg::FromOp for Node {
    type Error = String;

    /// Parses the spelling patterns use: `smelt.relu`, `attrs0` (the empty dictionary).
    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, String> {
        let numbered = |prefix: &str| op.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok());
        if let Some(i) = numbered("attrs").filter(|_| children.is_empty()) {
            return Ok(Node::Attrs(i));
        }
        if let Some(i) = numbered("leaf").filter(|_| children.is_empty()) {
            return Ok(Node::Leaf(i));
        }
        let def = smelt_compiler::dialect::lookup(op).ok_or_else(|| format!("unknown op `{op}` in a pattern"))?;
        if children.is_empty() {
            return Err(format!("`{op}` in a pattern needs its attribute class as the last child"));
        }
        Ok(Node::Op(OpKey { name: def.name, results: 1 }, children))
    }
}

/// The body of a fused kernel: ops in execution order reading kernel inputs or earlier ops; the
/// last op's result is the kernel's result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Template {
    pub ops: Vec<TemplateOp>,
}

impl Template {
    /// Appends the body to `block`, reading `inputs`; returns the ops (the last is the root).
    pub fn build_in(
        &self,
        m: &mut Module,
        block: BlockId,
        attrs: &[Attrs],
        inputs: &[ValueId],
        loc: &Location,
    ) -> Result<Vec<OpId>, String> {
        let mut ops: Vec<OpId> = Vec::with_capacity(self.ops.len());
        for top in &self.ops {
            let operands: Vec<ValueId> = top
                .operands
                .iter()
                .map(|o| match *o {
                    Operand::Arg(i) => inputs[i as usize],
                    Operand::Op(i) => m.op(ops[i as usize]).result(),
                })
                .collect();
            let attrs: Vec<(&str, Attribute)> =
                attrs[top.attrs as usize].iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let mut b = Builder::at_end(m, block);
            b.loc = loc.clone();
            ops.push(b.build(top.name, &operands, &attrs)?);
        }
        Ok(ops)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateOp {
    pub name: &'static str,
    pub attrs: u32,
    pub operands: Vec<Operand>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operand {
    /// Kernel input `i`.
    Arg(u32),
    /// The result of body op `i`.
    Op(u32),
}

/// Where a leaf came from.
#[derive(Clone, Debug)]
pub enum LeafOrigin {
    /// A value of the input module (the same id in the scratch module, which starts as a copy).
    Ir(ValueId),
    /// A constant a rewrite introduced (a BatchNorm epsilon, a reshape target).
    New(DenseElements),
}

/// What an e-class is known to be.
#[derive(Clone, Debug, Default)]
pub struct ClassData {
    /// The class materialized in the scratch module: its type is the class's type.
    pub value: Option<ValueId>,
    /// For a multi-result op, the scratch op whose results `Get` selects.
    pub tuple: Option<OpId>,
    /// Computable at compile time (attributes, constants, pure ops over those).
    pub constant: bool,
    /// The value of every element, for constants that are splats.
    pub splat: Option<f64>,
    /// Where the class came from in the input, for the ops rebuilt from it.
    pub loc: Option<Location>,
    /// Uses of the value in the input program (function results included).
    pub uses: u32,
    /// The classes of the ops that read the value in the input program (not canonical: look
    /// them up with `find`). A kernel absorbs a value only when computing its root leaves the
    /// value no other reader (`kernels::consumed_only_by`).
    pub consumers: Vec<egg::Id>,
}

/// The e-class analysis: scratch module, interned attributes, templates and leaves.
pub struct Tensors {
    pub scratch: Module,
    block: BlockId,
    pub leaves: Vec<(ValueId, LeafOrigin)>,
    pub attrs: Vec<Attrs>,
    attr_ids: HashMap<String, u32>,
    pub templates: Vec<Template>,
    template_ids: HashMap<Template, u32>,
    /// Constants rewrites introduced, by printed value: applying a rule again reuses them, so
    /// saturation can reach a fixed point.
    constant_ids: HashMap<String, u32>,
    /// Classes a substitution added, with the rule's name (`Stats::substitutions`).
    pub substituted: Vec<(egg::Id, &'static str)>,
}

pub type EGraph = egg::EGraph<Node, Tensors>;

impl Tensors {
    /// Starts from a copy of `module`; attribute dictionary 0 is the empty one.
    pub fn new(module: &Module) -> Self {
        let mut scratch = module.clone();
        let region = scratch.new_region();
        let block = scratch.add_block(region, &[]);
        let mut t = Tensors {
            scratch,
            block,
            leaves: Vec::new(),
            attrs: Vec::new(),
            attr_ids: HashMap::new(),
            templates: Vec::new(),
            template_ids: HashMap::new(),
            constant_ids: HashMap::new(),
            substituted: Vec::new(),
        };
        t.intern_attrs(Attrs::new());
        t
    }

    pub fn intern_attrs(&mut self, attrs: Attrs) -> u32 {
        let key = attrs.iter().map(|(k, v)| format!("{k}={v};")).collect::<String>();
        if let Some(&i) = self.attr_ids.get(&key) {
            return i;
        }
        self.attrs.push(attrs);
        let i = (self.attrs.len() - 1) as u32;
        self.attr_ids.insert(key, i);
        i
    }

    pub fn intern_template(&mut self, t: Template) -> u32 {
        if let Some(&i) = self.template_ids.get(&t) {
            return i;
        }
        self.templates.push(t.clone());
        let i = (self.templates.len() - 1) as u32;
        self.template_ids.insert(t, i);
        i
    }

    pub fn add_leaf(&mut self, value: ValueId, origin: LeafOrigin) -> u32 {
        self.leaves.push((value, origin));
        (self.leaves.len() - 1) as u32
    }

    /// A constant leaf for `value`, materialized in the scratch module the first time.
    pub fn new_constant(&mut self, value: DenseElements) -> u32 {
        let key = Attribute::Dense(value.clone()).to_string();
        if let Some(&leaf) = self.constant_ids.get(&key) {
            return leaf;
        }
        let ty = Type::Tensor(value.ty.clone());
        let op = self
            .scratch
            .create_op(OpSpec::new(names::CONSTANT).attr("value", Attribute::Dense(value.clone())).results([ty]));
        self.scratch.append_op(self.block, op);
        let v = self.scratch.op(op).result();
        let leaf = self.add_leaf(v, LeafOrigin::New(value));
        self.constant_ids.insert(key, leaf);
        leaf
    }

    /// Builds `name(operands) {attrs}` in the scratch module; `Err` when the dialect rejects it.
    pub fn build(&mut self, name: &str, operands: &[ValueId], attrs: u32, results: usize) -> Result<OpId, String> {
        let attrs: Vec<(&str, Attribute)> =
            self.attrs[attrs as usize].iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        Builder::at_end(&mut self.scratch, self.block).build_n(name, operands, &attrs, results)
    }

    /// Materializes template `t` over `inputs`; returns the body ops (the last is the root).
    pub fn instantiate(&mut self, t: u32, inputs: &[ValueId]) -> Result<Vec<OpId>, String> {
        let template = &self.templates[t as usize];
        template.build_in(&mut self.scratch, self.block, &self.attrs, inputs, &Location::Unknown)
    }

    pub fn ty(&self, data: &ClassData) -> Option<&Type> {
        data.value.map(|v| self.scratch.value_type(v))
    }

    fn leaf_data(&self, i: u32) -> ClassData {
        let (v, _) = &self.leaves[i as usize];
        let m = &self.scratch;
        let constant = m.defining_op(*v).filter(|&d| m.op(d).name() == names::CONSTANT);
        let splat = constant.and_then(|c| match m.op(c).attr("value") {
            Some(Attribute::Dense(d)) if d.is_splat() || d.ty.num_elements() == Some(1) => {
                Literal::decode(d, &m.resources).and_then(|l| l.to_f64().first().copied())
            }
            _ => None,
        });
        ClassData { value: Some(*v), constant: constant.is_some(), splat, ..ClassData::default() }
    }
}

impl egg::Analysis<Node> for Tensors {
    type Data = ClassData;

    fn make(egraph: &mut EGraph, node: &Node, _id: Id) -> ClassData {
        let t = &mut egraph.analysis;
        match node {
            Node::Leaf(i) => t.leaf_data(*i),
            Node::Attrs(_) => ClassData { constant: true, ..ClassData::default() },
            Node::Op(key, children) => {
                let attrs = match egraph[*children.last().unwrap()].nodes.first() {
                    Some(Node::Attrs(a)) => *a,
                    _ => return ClassData::default(),
                };
                let operands = &children[..children.len() - 1];
                let constant = smelt_compiler::dialect::lookup(key.name).is_some_and(|d| d.traits.pure)
                    && operands.iter().all(|c| egraph[*c].data.constant);
                let values: Option<Vec<ValueId>> = operands.iter().map(|c| egraph[*c].data.value).collect();
                let built = values.and_then(|v| egraph.analysis.build(key.name, &v, attrs, key.results as usize).ok());
                let m = &egraph.analysis.scratch;
                match built {
                    Some(op) if key.results == 1 => {
                        ClassData { value: Some(m.op(op).result()), constant, ..ClassData::default() }
                    }
                    Some(op) => ClassData { tuple: Some(op), constant, ..ClassData::default() },
                    None => ClassData { constant, ..ClassData::default() },
                }
            }
            Node::Get(i, [c]) => {
                let m = &egraph.analysis.scratch;
                let value = egraph[*c].data.tuple.map(|op| m.op(op).results()[*i as usize]);
                ClassData { value, constant: egraph[*c].data.constant, ..ClassData::default() }
            }
            Node::Kernel(template, inputs) => {
                let values: Option<Vec<ValueId>> = inputs.iter().map(|c| egraph[*c].data.value).collect();
                let ops = values.and_then(|v| egraph.analysis.instantiate(*template, &v).ok());
                let value = ops.and_then(|o| o.last().map(|&r| egraph.analysis.scratch.op(r).result()));
                ClassData { value, ..ClassData::default() }
            }
        }
    }

    fn merge(&mut self, to: &mut ClassData, from: ClassData) -> DidMerge {
        let before = (to.value, to.tuple, to.constant, to.splat, to.loc.is_some(), to.uses);
        to.uses += from.uses;
        to.consumers.extend(from.consumers);
        to.value = to.value.or(from.value);
        to.tuple = to.tuple.or(from.tuple);
        to.constant |= from.constant;
        to.splat = to.splat.or(from.splat);
        if to.loc.is_none() {
            to.loc = from.loc.clone();
        }
        let changed = before != (to.value, to.tuple, to.constant, to.splat, to.loc.is_some(), to.uses);
        let from_changed = from.value.is_none() && to.value.is_some()
            || from.tuple.is_none() && to.tuple.is_some()
            || !from.constant && to.constant
            || from.splat.is_none() && to.splat.is_some()
            || from.loc.is_none() && to.loc.is_some()
            || from.uses != to.uses;
        DidMerge(changed, from_changed)
    }
}
