//! The IR arena: operations, values, blocks and regions stored in vectors and named by ids.
//!
//! A [`Module`] owns everything; ids are plain indices, so the graph has no `Rc<RefCell>` cycles
//! and cloning a module is a memcpy-shaped operation. Erased entities leave tombstones; ids are
//! never reused within one module, so a stale id is detected (`is_live`) rather than aliased.
//!
//! Invariants (checked by `Module::check_invariants` in tests):
//! - every use of a value is recorded in that value's use list, exactly once per operand slot;
//! - an operation is in at most one block, and block op lists are consistent doubly linked lists;
//! - a region's blocks, and a block's region, point at each other.

use crate::attributes::Attribute;
use crate::dialect::names;
use crate::dialect::{self, AttrDefault, OpDef};
use crate::location::Location;
use crate::resources::ResourceStore;
use crate::types::Type;
use smallvec::SmallVec;
use std::collections::BTreeMap;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id_type!(/// An operation in a [`Module`].
    OpId);
id_type!(/// An SSA value: an operation result or a block argument.
    ValueId);
id_type!(/// A block: a list of operations with arguments.
    BlockId);
id_type!(/// A region: a list of blocks owned by an operation.
    RegionId);

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueDef {
    Result { op: OpId, index: u32 },
    BlockArg { block: BlockId, index: u32 },
}

/// One operand slot that reads a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Use {
    pub user: OpId,
    pub operand: u32,
}

#[derive(Clone, Debug)]
pub struct Value {
    pub ty: Type,
    pub def: ValueDef,
    uses: Vec<Use>,
}

impl Value {
    pub fn uses(&self) -> &[Use] {
        &self.uses
    }
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub def: &'static OpDef,
    operands: SmallVec<[ValueId; 4]>,
    results: SmallVec<[ValueId; 1]>,
    /// Sorted by name, as MLIR prints attribute dictionaries.
    pub attributes: BTreeMap<String, Attribute>,
    regions: SmallVec<[RegionId; 1]>,
    pub loc: Location,
    parent: Option<BlockId>,
    prev: Option<OpId>,
    next: Option<OpId>,
    live: bool,
}

impl Operation {
    pub fn name(&self) -> &'static str {
        self.def.name
    }
    pub fn operands(&self) -> &[ValueId] {
        &self.operands
    }
    pub fn results(&self) -> &[ValueId] {
        &self.results
    }
    pub fn result(&self) -> ValueId {
        self.results[0]
    }
    pub fn regions(&self) -> &[RegionId] {
        &self.regions
    }
    pub fn parent_block(&self) -> Option<BlockId> {
        self.parent
    }
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attributes.get(name)
    }

    /// The table's default for the attribute `name`, when the op declares one.
    fn default_of(&self, name: &str) -> AttrDefault {
        let default = self.def.attr_def(name).map_or(AttrDefault::None, |a| a.default);
        debug_assert!(
            self.def.attr_def(name).is_some(),
            "'{}' declares no attribute '{name}' (the op table is the place to add it)",
            self.name()
        );
        default
    }

    /// An integer attribute, or the op table's default when absent.
    pub fn int_attr(&self, name: &str) -> i64 {
        match (self.attr(name).and_then(Attribute::as_int), self.default_of(name)) {
            (Some(v), _) | (None, AttrDefault::Int(v)) => v,
            _ => 0,
        }
    }

    /// A float attribute, or the op table's default when absent.
    pub fn float_attr(&self, name: &str) -> f64 {
        match (self.attr(name).and_then(Attribute::as_float), self.default_of(name)) {
            (Some(v), _) | (None, AttrDefault::Float(v)) => v,
            _ => 0.0,
        }
    }

    /// A bool attribute, or the op table's default when absent.
    pub fn bool_attr(&self, name: &str) -> bool {
        match (self.attr(name).and_then(Attribute::as_bool), self.default_of(name)) {
            (Some(v), _) | (None, AttrDefault::Bool(v)) => v,
            _ => false,
        }
    }

    /// A string attribute, or the op table's default when absent.
    pub fn string_attr(&self, name: &str) -> &str {
        match (self.attr(name).and_then(Attribute::as_str), self.default_of(name)) {
            (Some(v), _) => v,
            (None, AttrDefault::String(v)) => v,
            _ => "",
        }
    }

    /// An `array<i64>` attribute, or `n` copies of the table's per-axis default when absent.
    pub fn ints_attr(&self, name: &str, n: usize) -> Vec<i64> {
        match (self.attr(name).and_then(Attribute::as_i64_array), self.default_of(name)) {
            (Some(v), _) => v.to_vec(),
            (None, AttrDefault::Each(d)) => vec![d; n],
            _ => Vec::new(),
        }
    }

    /// Whether this op is `name` (one of [`crate::dialect::names`]).
    pub fn is(&self, name: &str) -> bool {
        self.def.name == name
    }
}

#[derive(Clone, Debug)]
pub struct Block {
    args: Vec<ValueId>,
    first: Option<OpId>,
    last: Option<OpId>,
    parent: Option<RegionId>,
}

impl Block {
    pub fn args(&self) -> &[ValueId] {
        &self.args
    }
    pub fn parent_region(&self) -> Option<RegionId> {
        self.parent
    }
}

#[derive(Clone, Debug)]
pub struct Region {
    blocks: Vec<BlockId>,
    parent: OpId,
}

impl Region {
    pub fn blocks(&self) -> &[BlockId] {
        &self.blocks
    }
    pub fn parent_op(&self) -> OpId {
        self.parent
    }
}

/// What to create: see [`Module::create_op`].
#[derive(Clone, Debug)]
pub struct OpSpec {
    pub def: &'static OpDef,
    pub operands: Vec<ValueId>,
    pub result_types: Vec<Type>,
    pub attributes: BTreeMap<String, Attribute>,
    pub regions: usize,
    pub loc: Location,
}

impl OpSpec {
    /// A spec for a registered op name. Panics on an unknown name: callers name ops in code.
    pub fn new(name: &str) -> Self {
        let def = dialect::lookup(name).unwrap_or_else(|| panic!("op `{name}` is not registered"));
        OpSpec {
            def,
            operands: Vec::new(),
            result_types: Vec::new(),
            attributes: BTreeMap::new(),
            regions: 0,
            loc: Location::Unknown,
        }
    }
    pub fn operands(mut self, operands: impl IntoIterator<Item = ValueId>) -> Self {
        self.operands.extend(operands);
        self
    }
    pub fn results(mut self, types: impl IntoIterator<Item = Type>) -> Self {
        self.result_types.extend(types);
        self
    }
    pub fn attr(mut self, name: &str, value: Attribute) -> Self {
        self.attributes.insert(name.to_string(), value);
        self
    }
    pub fn regions(mut self, n: usize) -> Self {
        self.regions = n;
        self
    }
    pub fn loc(mut self, loc: Location) -> Self {
        self.loc = loc;
        self
    }
}

/// A `builtin.module` and everything inside it, plus the blobs its attributes refer to.
#[derive(Clone, Debug)]
pub struct Module {
    ops: Vec<Operation>,
    values: Vec<Value>,
    blocks: Vec<Block>,
    regions: Vec<Region>,
    root: OpId,
    pub resources: ResourceStore,
}

impl Default for Module {
    fn default() -> Self {
        Self::new(Location::Unknown)
    }
}

impl Module {
    /// An empty module: one `builtin.module` op with one region holding one empty block.
    pub fn new(loc: Location) -> Self {
        let mut m = Module {
            ops: Vec::new(),
            values: Vec::new(),
            blocks: Vec::new(),
            regions: Vec::new(),
            root: OpId(0),
            resources: ResourceStore::default(),
        };
        let root = m.create_op(OpSpec::new(names::MODULE).regions(1).loc(loc));
        let region = m.op(root).regions[0];
        m.add_block(region, &[]);
        m.root = root;
        m
    }

    /// The `builtin.module` operation.
    pub fn root(&self) -> OpId {
        self.root
    }

    /// The block that holds the module's top-level operations (functions).
    pub fn body(&self) -> BlockId {
        let region = self.op(self.root).regions[0];
        self.region(region).blocks[0]
    }

    // ---- access -------------------------------------------------------------------------------

    pub fn op(&self, id: OpId) -> &Operation {
        &self.ops[id.index()]
    }
    pub fn op_mut(&mut self, id: OpId) -> &mut Operation {
        &mut self.ops[id.index()]
    }
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }
    pub fn value_type(&self, id: ValueId) -> &Type {
        &self.values[id.index()].ty
    }
    /// Changes a value's type in place (shape inference refines types this way).
    pub fn set_value_type(&mut self, id: ValueId, ty: Type) {
        self.values[id.index()].ty = ty;
    }
    pub fn block(&self, id: BlockId) -> &Block {
        &self.blocks[id.index()]
    }
    pub fn region(&self, id: RegionId) -> &Region {
        &self.regions[id.index()]
    }
    pub fn is_live(&self, id: OpId) -> bool {
        self.ops.get(id.index()).is_some_and(|op| op.live)
    }
    pub fn op_count(&self) -> usize {
        self.ops.iter().filter(|o| o.live).count()
    }

    /// The operation that produces `value`, if it is an op result.
    pub fn defining_op(&self, value: ValueId) -> Option<OpId> {
        match self.values[value.index()].def {
            ValueDef::Result { op, .. } => Some(op),
            ValueDef::BlockArg { .. } => None,
        }
    }

    /// The operation whose region contains `op`.
    pub fn parent_op(&self, op: OpId) -> Option<OpId> {
        let block = self.ops[op.index()].parent?;
        let region = self.blocks[block.index()].parent?;
        Some(self.regions[region.index()].parent)
    }

    /// The operation that owns the region that owns `block`.
    pub fn block_parent_op(&self, block: BlockId) -> Option<OpId> {
        let region = self.blocks[block.index()].parent?;
        Some(self.regions[region.index()].parent)
    }

    /// The operations of a block, in order.
    /// The first block of `op`'s first region: a function's entry block, a kernel's body.
    /// The verifier guarantees one for `func.func` and `smelt.kernel`.
    pub fn body_of(&self, op: OpId) -> BlockId {
        self.region(self.op(op).regions()[0]).blocks()[0]
    }

    pub fn block_ops(&self, block: BlockId) -> BlockOps<'_> {
        BlockOps { module: self, next: self.blocks[block.index()].first }
    }

    pub fn next_op(&self, op: OpId) -> Option<OpId> {
        self.ops[op.index()].next
    }

    /// The last operation of a block (its terminator, when it has one).
    pub fn block_terminator(&self, block: BlockId) -> Option<OpId> {
        self.blocks[block.index()].last
    }

    /// All users of an op's results, each once, in first-use order.
    pub fn users(&self, op: OpId) -> Vec<OpId> {
        let mut users: Vec<OpId> = Vec::new();
        for &r in &self.ops[op.index()].results {
            for u in &self.values[r.index()].uses {
                if !users.contains(&u.user) {
                    users.push(u.user);
                }
            }
        }
        users
    }

    pub fn has_uses(&self, op: OpId) -> bool {
        self.ops[op.index()].results.iter().any(|r| !self.values[r.index()].uses.is_empty())
    }

    // ---- creation -----------------------------------------------------------------------------

    /// Creates a detached operation with fresh result values and empty regions.
    pub fn create_op(&mut self, spec: OpSpec) -> OpId {
        let id = OpId(self.ops.len() as u32);
        let results = spec
            .result_types
            .into_iter()
            .enumerate()
            .map(|(i, ty)| self.new_value(ty, ValueDef::Result { op: id, index: i as u32 }))
            .collect();
        for (i, &v) in spec.operands.iter().enumerate() {
            self.values[v.index()].uses.push(Use { user: id, operand: i as u32 });
        }
        self.ops.push(Operation {
            def: spec.def,
            operands: spec.operands.into(),
            results,
            attributes: spec.attributes,
            regions: SmallVec::new(),
            loc: spec.loc,
            parent: None,
            prev: None,
            next: None,
            live: true,
        });
        for _ in 0..spec.regions {
            self.add_region(id);
        }
        id
    }

    fn new_value(&mut self, ty: Type, def: ValueDef) -> ValueId {
        let id = ValueId(self.values.len() as u32);
        self.values.push(Value { ty, def, uses: Vec::new() });
        id
    }

    /// A region not yet owned by any op (the parser builds regions before their op exists);
    /// give it an owner with [`Module::attach_region`].
    pub fn new_region(&mut self) -> RegionId {
        let id = RegionId(self.regions.len() as u32);
        self.regions.push(Region { blocks: Vec::new(), parent: OpId(u32::MAX) });
        id
    }

    pub fn attach_region(&mut self, op: OpId, region: RegionId) {
        self.regions[region.index()].parent = op;
        self.ops[op.index()].regions.push(region);
    }

    /// Makes a detached `builtin.module` op the root.
    pub fn set_root(&mut self, op: OpId) {
        assert_eq!(self.ops[op.index()].def.name, names::MODULE);
        self.root = op;
    }

    pub fn add_region(&mut self, op: OpId) -> RegionId {
        let id = RegionId(self.regions.len() as u32);
        self.regions.push(Region { blocks: Vec::new(), parent: op });
        self.ops[op.index()].regions.push(id);
        id
    }

    pub fn add_block(&mut self, region: RegionId, arg_types: &[Type]) -> BlockId {
        let id = BlockId(self.blocks.len() as u32);
        self.blocks.push(Block { args: Vec::new(), first: None, last: None, parent: Some(region) });
        self.regions[region.index()].blocks.push(id);
        for ty in arg_types {
            self.add_block_arg(id, ty.clone());
        }
        id
    }

    pub fn add_block_arg(&mut self, block: BlockId, ty: Type) -> ValueId {
        let index = self.blocks[block.index()].args.len() as u32;
        let v = self.new_value(ty, ValueDef::BlockArg { block, index });
        self.blocks[block.index()].args.push(v);
        v
    }

    // ---- placement ----------------------------------------------------------------------------

    pub fn append_op(&mut self, block: BlockId, op: OpId) {
        assert!(self.ops[op.index()].parent.is_none(), "op is already in a block");
        let last = self.blocks[block.index()].last;
        self.link(op, block, last, None);
    }

    pub fn insert_op_before(&mut self, anchor: OpId, op: OpId) {
        assert!(self.ops[op.index()].parent.is_none(), "op is already in a block");
        let block = self.ops[anchor.index()].parent.expect("anchor is in a block");
        let prev = self.ops[anchor.index()].prev;
        self.link(op, block, prev, Some(anchor));
    }

    pub fn insert_op_after(&mut self, anchor: OpId, op: OpId) {
        assert!(self.ops[op.index()].parent.is_none(), "op is already in a block");
        let block = self.ops[anchor.index()].parent.expect("anchor is in a block");
        let next = self.ops[anchor.index()].next;
        self.link(op, block, Some(anchor), next);
    }

    fn link(&mut self, op: OpId, block: BlockId, prev: Option<OpId>, next: Option<OpId>) {
        let o = &mut self.ops[op.index()];
        o.parent = Some(block);
        o.prev = prev;
        o.next = next;
        match prev {
            Some(p) => self.ops[p.index()].next = Some(op),
            None => self.blocks[block.index()].first = Some(op),
        }
        match next {
            Some(n) => self.ops[n.index()].prev = Some(op),
            None => self.blocks[block.index()].last = Some(op),
        }
    }

    /// Removes `op` from its block without destroying it.
    pub fn detach_op(&mut self, op: OpId) {
        let Some(block) = self.ops[op.index()].parent else { return };
        let (prev, next) = (self.ops[op.index()].prev, self.ops[op.index()].next);
        match prev {
            Some(p) => self.ops[p.index()].next = next,
            None => self.blocks[block.index()].first = next,
        }
        match next {
            Some(n) => self.ops[n.index()].prev = prev,
            None => self.blocks[block.index()].last = prev,
        }
        let o = &mut self.ops[op.index()];
        o.parent = None;
        o.prev = None;
        o.next = None;
    }

    // ---- mutation -----------------------------------------------------------------------------

    /// Points operand `index` of `op` at `value`, keeping use lists exact.
    pub fn set_operand(&mut self, op: OpId, index: usize, value: ValueId) {
        let old = self.ops[op.index()].operands[index];
        let slot = Use { user: op, operand: index as u32 };
        self.values[old.index()].uses.retain(|u| *u != slot);
        self.ops[op.index()].operands[index] = value;
        self.values[value.index()].uses.push(slot);
    }

    /// Replaces the operand list of `op`.
    pub fn set_operands(&mut self, op: OpId, operands: &[ValueId]) {
        self.drop_operand_uses(op);
        for (i, &v) in operands.iter().enumerate() {
            self.values[v.index()].uses.push(Use { user: op, operand: i as u32 });
        }
        self.ops[op.index()].operands = operands.iter().copied().collect();
    }

    fn drop_operand_uses(&mut self, op: OpId) {
        let operands = std::mem::take(&mut self.ops[op.index()].operands);
        for (i, v) in operands.iter().enumerate() {
            let slot = Use { user: op, operand: i as u32 };
            self.values[v.index()].uses.retain(|u| *u != slot);
        }
    }

    /// Makes every reader of `old` read `new` instead.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        if old == new {
            return;
        }
        let uses = std::mem::take(&mut self.values[old.index()].uses);
        for u in &uses {
            self.ops[u.user.index()].operands[u.operand as usize] = new;
        }
        self.values[new.index()].uses.extend(uses);
    }

    /// Replaces each result of `op` by the corresponding value, then erases `op`.
    pub fn replace_op(&mut self, op: OpId, new_values: &[ValueId]) {
        let results = self.ops[op.index()].results.clone();
        assert_eq!(results.len(), new_values.len(), "replacement arity");
        for (&old, &new) in results.iter().zip(new_values) {
            self.replace_all_uses(old, new);
        }
        self.erase_op(op);
    }

    /// Destroys `op` and everything in its regions. Its results must be unused.
    pub fn erase_op(&mut self, op: OpId) {
        debug_assert!(!self.has_uses(op), "erasing `{}` whose results are still used", self.op(op).name());
        for region in self.ops[op.index()].regions.clone() {
            for block in self.regions[region.index()].blocks.clone() {
                // Erase back to front so that users go before their producers.
                while let Some(last) = self.blocks[block.index()].last {
                    for r in self.ops[last.index()].results.clone() {
                        self.values[r.index()].uses.clear();
                    }
                    self.erase_op(last);
                }
            }
        }
        self.detach_op(op);
        self.drop_operand_uses(op);
        self.ops[op.index()].live = false;
    }

    /// Deep-copies `op` (with its regions) as a detached operation. Operands are remapped
    /// through `mapping` where present; the copy's results and block arguments are added to it.
    pub fn clone_op(&mut self, op: OpId, mapping: &mut std::collections::HashMap<ValueId, ValueId>) -> OpId {
        let src = self.ops[op.index()].clone();
        let spec = OpSpec {
            def: src.def,
            operands: src.operands.iter().map(|v| *mapping.get(v).unwrap_or(v)).collect(),
            result_types: src.results.iter().map(|r| self.values[r.index()].ty.clone()).collect(),
            attributes: src.attributes.clone(),
            regions: 0,
            loc: src.loc.clone(),
        };
        let new = self.create_op(spec);
        for (old, newr) in src.results.iter().zip(self.ops[new.index()].results.clone()) {
            mapping.insert(*old, newr);
        }
        for region in src.regions {
            let new_region = self.add_region(new);
            for block in self.regions[region.index()].blocks.clone() {
                let arg_types: Vec<Type> =
                    self.blocks[block.index()].args.iter().map(|a| self.values[a.index()].ty.clone()).collect();
                let new_block = self.add_block(new_region, &arg_types);
                for (old, newa) in
                    self.blocks[block.index()].args.clone().into_iter().zip(self.blocks[new_block.index()].args.clone())
                {
                    mapping.insert(old, newa);
                }
                let inner: Vec<OpId> = self.block_ops(block).collect();
                for inner_op in inner {
                    let c = self.clone_op(inner_op, mapping);
                    self.append_op(new_block, c);
                }
            }
        }
        new
    }

    // ---- walks --------------------------------------------------------------------------------

    /// `op` and everything nested in it, parents before children, in block order.
    pub fn walk_pre_order(&self, op: OpId) -> Vec<OpId> {
        let mut out = Vec::new();
        self.walk(op, &mut |id| out.push(id), &mut |_| {});
        out
    }

    /// `op` and everything nested in it, children before parents.
    pub fn walk_post_order(&self, op: OpId) -> Vec<OpId> {
        let mut out = Vec::new();
        self.walk(op, &mut |_| {}, &mut |id| out.push(id));
        out
    }

    fn walk(&self, op: OpId, pre: &mut dyn FnMut(OpId), post: &mut dyn FnMut(OpId)) {
        pre(op);
        for &region in &self.ops[op.index()].regions {
            for &block in &self.regions[region.index()].blocks {
                let mut next = self.blocks[block.index()].first;
                while let Some(inner) = next {
                    next = self.ops[inner.index()].next;
                    self.walk(inner, pre, post);
                }
            }
        }
        post(op);
    }

    /// Every `func.func` directly in the module.
    pub fn functions(&self) -> Vec<OpId> {
        self.block_ops(self.body()).filter(|&op| self.op(op).name() == names::FUNC).collect()
    }

    /// Checks the arena's structural invariants; returns the first violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (i, op) in self.ops.iter().enumerate().filter(|(_, o)| o.live) {
            let id = OpId(i as u32);
            for (k, v) in op.operands.iter().enumerate() {
                let slot = Use { user: id, operand: k as u32 };
                let n = self.values[v.index()].uses.iter().filter(|u| **u == slot).count();
                if n != 1 {
                    return Err(format!("operand {k} of op {i} is recorded {n} times in its value's uses"));
                }
            }
            if let Some(b) = op.parent {
                if !self.block_ops(b).any(|o| o == id) {
                    return Err(format!("op {i} claims block {} but is not in it", b.0));
                }
            }
        }
        for (i, v) in self.values.iter().enumerate() {
            for u in &v.uses {
                let user = &self.ops[u.user.index()];
                if !user.live || user.operands.get(u.operand as usize) != Some(&ValueId(i as u32)) {
                    return Err(format!("value {i} lists a stale use {u:?}"));
                }
            }
        }
        Ok(())
    }
}

/// Iterator over a block's operations; see [`Module::block_ops`].
pub struct BlockOps<'a> {
    module: &'a Module,
    next: Option<OpId>,
}

impl Iterator for BlockOps<'_> {
    type Item = OpId;
    fn next(&mut self) -> Option<OpId> {
        let id = self.next?;
        self.next = self.module.ops[id.index()].next;
        Some(id)
    }
}
