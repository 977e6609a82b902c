//! E-graph fusion: the machinery behind the `fuse` pass.
//!
//! 1. [`Program::from_function`] turns a function body into an e-graph ([`lang`]).
//! 2. Equality saturation with [`rules`] and, unless `algebra` is off, [`substitutions`]
//!    (bounded by nodes, iterations and time) adds the algebraic, substituted and recognized
//!    forms beside the originals.
//! 3. [`kernels::grow`] adds fused-kernel alternatives, one op per round.
//! 4. [`extract::greedy_dag`] picks the cheapest program under a [`CostModel`], each shared
//!    value counted once.
//! 5. [`Program::rebuild`] writes the choice back as ops and `smelt.kernel` regions, with the
//!    locations of what they replace.

pub mod extract;
pub mod kernels;
pub mod lang;
pub mod report;
pub mod rules;
pub mod substitutions;
mod views;

use crate::cost::{CostModel, Estimate};
use crate::work::{kernel_work, work_of};
use egg::Id;
use lang::{EGraph, LeafOrigin, Node, OpKey, Operand, Template, TemplateOp, Tensors};
use smelt_compiler::attributes::Attribute;
use smelt_compiler::builder::Builder;
use smelt_compiler::diagnostics::Diagnostic;
use smelt_compiler::ir::{BlockId, Module, OpId, OpSpec, ValueId};
use smelt_compiler::names;
use smelt_compiler::{ElementType, Location, Type};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Bounds on saturation. Iterations and nodes bound the work deterministically; the time
/// limit is a safety net (hitting it is reported, since the result then depends on speed).
#[derive(Clone, Debug)]
pub struct Limits {
    pub iterations: usize,
    pub nodes: usize,
    pub time: Duration,
    pub kernel_rounds: usize,
    /// Also rewrite which ops run ([`substitutions`]), not only how they group.
    pub algebra: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            iterations: 12,
            nodes: 200_000,
            time: Duration::from_secs(10),
            kernel_rounds: kernels::MAX_KERNEL_OPS,
            algebra: true,
        }
    }
}

/// What the e-graph search of one function did (reported by `smelt report`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Stats {
    pub egraph_classes: usize,
    pub egraph_nodes: usize,
    pub iterations: usize,
    pub stop_reason: String,
    pub rules_applied: BTreeMap<String, usize>,
    /// Substitutions the extracted program uses, by rule.
    pub substitutions: BTreeMap<String, usize>,
    pub kernel_alternatives: usize,
    /// Wall time of saturation and kernel growth, and of extraction.
    pub search_ms: f64,
    pub extraction_ms: f64,
    /// The extracted program's predicted cost, each shared value counted once.
    pub dag_extraction_ms: f64,
    /// A tree extractor's choice priced the same way, where asked for.
    pub tree_extraction_ms: Option<f64>,
}

/// One function body as an e-graph.
/// What a kernel node's estimate depends on: its template and, per input, the type, whether a
/// constant defines it (pattern names say so), which constant it is where the kernel inlines
/// it, and the first input it repeats (a repeated input is read once).
type KernelKey = (u32, Vec<(smelt_compiler::types::Type, bool, Option<ValueId>, usize)>);
type KernelCosts = HashMap<KernelKey, f64>;

pub struct Program {
    pub egraph: EGraph,
    pub roots: Vec<Id>,
    entry: BlockId,
    /// Multi-result ops emitted by `rebuild`, by class.
    tuples: HashMap<Id, OpId>,
}

impl Program {
    /// The body of `func` as an e-graph. Existing `smelt.kernel` ops become kernel nodes, so
    /// fusing twice keeps the first fusion as one alternative.
    pub fn from_function(m: &Module, func: OpId) -> Result<Program, Diagnostic> {
        let entry = m.body_of(func);
        let mut eg = EGraph::new(Tensors::new(m));
        let mut class: HashMap<ValueId, Id> = HashMap::new();
        for &arg in m.block(entry).args() {
            let leaf = eg.analysis.add_leaf(arg, LeafOrigin::Ir(arg));
            class.insert(arg, eg.add(Node::Leaf(leaf)));
        }
        let mut roots = Vec::new();
        for op in m.block_ops(entry) {
            let o = m.op(op);
            let operands: Vec<Id> =
                o.operands().iter().map(|v| class.get(v).copied()).collect::<Option<_>>().ok_or_else(|| {
                    Diagnostic::error(o.loc.clone(), "fusion: an operand is defined outside the body")
                })?;
            match o.name() {
                names::RETURN => roots = operands,
                names::CONSTANT => {
                    let v = o.result();
                    let leaf = eg.analysis.add_leaf(v, LeafOrigin::Ir(v));
                    class.insert(v, eg.add(Node::Leaf(leaf)));
                }
                names::KERNEL => {
                    let template = template_of(m, op, &mut eg.analysis).ok_or_else(|| {
                        Diagnostic::error(o.loc.clone(), "fusion: this kernel's body has more than one result")
                    })?;
                    let t = eg.analysis.intern_template(template);
                    let id = eg.add(Node::Kernel(t, operands));
                    set_loc(&mut eg, id, &o.loc);
                    class.insert(o.result(), id);
                }
                _ if o.regions().is_empty() && o.def.dialect() == "smelt" => {
                    let attrs = eg.analysis.intern_attrs(o.attributes.clone());
                    let mut children = operands;
                    children.push(eg.add(Node::Attrs(attrs)));
                    let key = OpKey { name: o.def.name, results: o.results().len() as u32 };
                    let id = eg.add(Node::Op(key, children));
                    set_loc(&mut eg, id, &o.loc);
                    if o.results().len() == 1 {
                        class.insert(o.result(), id);
                    } else {
                        for (i, &r) in o.results().iter().enumerate() {
                            let g = eg.add(Node::Get(i as u32, [id]));
                            class.insert(r, g);
                        }
                    }
                }
                other => {
                    return Err(Diagnostic::error(o.loc.clone(), format!("fusion: cannot rewrite `{other}`")));
                }
            }
        }
        for (v, &c) in &class {
            let uses = m.value(*v).uses().len() as u32;
            eg[c].data.uses += uses;
            // A consumer's class is its (first) result's; `return` has none (roots are kept apart).
            let consumer = |u: &smelt_compiler::ir::Use| m.op(u.user).results().first().and_then(|r| class.get(r));
            let consumers: Vec<Id> = m.value(*v).uses().iter().filter_map(consumer).copied().collect();
            eg[c].data.consumers.extend(consumers);
        }
        eg.rebuild();
        Ok(Program { egraph: eg, roots, entry, tuples: HashMap::new() })
    }

    /// Saturates with every rule, then grows kernels.
    pub fn saturate(&mut self, limits: &Limits, stats: &mut Stats) {
        let started = std::time::Instant::now();
        let mut egraph = std::mem::replace(&mut self.egraph, EGraph::new(Tensors::new(&Module::default())));
        let mut rules = rules::all(&mut egraph.analysis);
        if limits.algebra {
            rules.extend(substitutions::all());
        }
        let runner = egg::Runner::<Node, Tensors, ()>::new(Tensors::new(&Module::default()))
            .with_egraph(egraph)
            .with_iter_limit(limits.iterations)
            .with_node_limit(limits.nodes)
            .with_time_limit(limits.time)
            .with_scheduler(egg::SimpleScheduler)
            .run(&rules);
        stats.iterations = runner.iterations.len();
        stats.stop_reason = format!("{:?}", runner.stop_reason);
        for it in &runner.iterations {
            for (rule, n) in &it.applied {
                *stats.rules_applied.entry(rule.to_string()).or_default() += n;
            }
        }
        self.egraph = runner.egraph;
        let mut fresh: Option<Vec<(u32, Vec<Id>)>> = None;
        for _ in 0..limits.kernel_rounds {
            if self.egraph.total_number_of_nodes() >= limits.nodes {
                break;
            }
            let roots: Vec<Id> = self.roots.iter().map(|&r| self.egraph.find(r)).collect();
            let added = kernels::grow(&mut self.egraph, &roots, fresh.as_deref());
            stats.kernel_alternatives += added.len();
            if added.is_empty() {
                break;
            }
            fresh = Some(added);
        }
        stats.egraph_classes = self.egraph.number_of_classes();
        stats.egraph_nodes = self.egraph.total_number_of_nodes();
        stats.search_ms = started.elapsed().as_secs_f64() * 1e3;
    }

    /// What running `node` alone costs under `model`: zero for leaves, views and anything
    /// computable at compile time, infinite when it cannot be built.
    /// Priced as the extractor weighs it ([`CostModel::choice_seconds`]).
    pub fn node_cost(&mut self, node: &Node, model: &dyn CostModel) -> f64 {
        self.node_estimate(node, model, true).map_or(f64::INFINITY, |e| e.seconds)
    }

    /// [`Program::node_cost`], with kernels of one template on inputs alike priced once: a
    /// deep network repeats its blocks, and a chain of thousands of ops repeats a handful of
    /// kernels at every position.
    fn node_cost_cached(&mut self, node: &Node, model: &dyn CostModel, cache: &mut KernelCosts) -> f64 {
        let Node::Kernel(t, _) = node else { return self.node_cost(node, model) };
        let m = &self.egraph.analysis.scratch;
        let key: Option<KernelKey> = node
            .operands()
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let v = self.egraph[c].data.value?;
                let first = node.operands().iter().position(|&d| self.egraph[d].data.value == Some(v)).unwrap_or(i);
                let constant = crate::work::computed_at_compile_time(m, v);
                let inlined = crate::work::inlined_constant(m, v).map(|_| v);
                Some((m.value_type(v).clone(), constant, inlined, first))
            })
            .collect::<Option<Vec<_>>>()
            .map(|inputs| (*t, inputs));
        let Some(key) = key else { return self.node_cost(node, model) };
        if let Some(&cost) = cache.get(&key) {
            return cost;
        }
        let cost = self.node_cost(node, model);
        cache.insert(key, cost);
        cost
    }

    /// `node`'s estimate under `model`; with `choice`, its seconds are what the extractor
    /// weighs instead.
    fn node_estimate(&mut self, node: &Node, model: &dyn CostModel, choice: bool) -> Option<Estimate> {
        let zero = Estimate { seconds: 0.0, flops: 0, bytes: 0 };
        let priced = |pattern: &str, work: &crate::work::Work| {
            let e = model.estimate(pattern, work);
            if choice {
                Estimate { seconds: model.choice_seconds(pattern, work), ..e }
            } else {
                e
            }
        };
        let eg = &mut self.egraph;
        let values: Option<Vec<ValueId>> = node.operands().iter().map(|&c| eg[c].data.value).collect();
        match node {
            Node::Leaf(_) | Node::Attrs(_) | Node::Get(..) => Some(zero),
            Node::Op(key, children) => {
                let pure = smelt_compiler::dialect::lookup(key.name).is_some_and(|d| d.traits.pure);
                if pure && node.operands().iter().all(|&c| eg[c].data.constant) {
                    return Some(zero);
                }
                let Some(Node::Attrs(attrs)) = eg[*children.last()?].nodes.first().cloned() else { return None };
                let op = eg.analysis.build(key.name, &values?, attrs, key.results as usize).ok()?;
                let m = &eg.analysis.scratch;
                let aliases = smelt_compiler::dialect::lookup(key.name).is_some_and(|d| d.is_view())
                    || smelt_compiler::views::contiguous_slice(m, op).is_some();
                if aliases {
                    return Some(zero);
                }
                Some(priced(key.name.trim_start_matches("smelt."), &work_of(m, op)))
            }
            Node::Kernel(t, _) => {
                let values = values?;
                let ops = eg.analysis.instantiate(*t, &values).ok()?;
                let m = &eg.analysis.scratch;
                let pattern = kernels::pattern_name(m, &ops);
                let root = m.op(*ops.last()?).result();
                Some(priced(&pattern, &kernel_work(m, &pattern, &ops, &values, &[root])))
            }
        }
    }

    /// Extracts the cheapest program; with `compare_tree`, also prices a tree extractor's choice.
    /// Movement ops that attention reads in place cost nothing ([`smelt_compiler::views`]).
    pub fn extract(&mut self, model: &dyn CostModel, compare_tree: bool, stats: &mut Stats) -> extract::Extraction {
        let started = std::time::Instant::now();
        let in_place = views::read_in_place(&self.egraph);
        let nodes: Vec<(Id, Node)> =
            self.egraph.classes().flat_map(|c| c.nodes.iter().map(move |n| (c.id, n.clone()))).collect();
        let mut cache = KernelCosts::default();
        let costs: HashMap<Node, f64> = nodes
            .into_iter()
            .map(|(c, n)| {
                let cost = if in_place.contains(&c) && views::is_view_movement(&self.egraph, &n) {
                    0.0
                } else {
                    self.node_cost_cached(&n, model, &mut cache)
                };
                (n, cost)
            })
            .collect();
        let mut lookup = |n: &Node| costs.get(n).copied().unwrap_or(f64::INFINITY);
        let extraction = extract::greedy_dag(&self.egraph, &self.roots, &mut lookup);
        stats.dag_extraction_ms = extraction.cost * 1e3;
        if compare_tree {
            stats.tree_extraction_ms = Some(extract::tree_choice_cost(&self.egraph, &self.roots, &mut lookup) * 1e3);
        }
        // A merge is used when the program reads a slice of it.
        for &(class, rule) in &self.egraph.analysis.substituted {
            let sources = extract::sliced_forms(&self.egraph, self.egraph.find(class));
            if extraction.choice.values().any(|n| extract::slices_of(&self.egraph, n, &sources)) {
                *stats.substitutions.entry(rule.to_string()).or_default() += 1;
            }
        }
        stats.extraction_ms = started.elapsed().as_secs_f64() * 1e3;
        extraction
    }

    /// Extracts under any node cost (tests and experiments: "fewest ops", "no kernels").
    pub fn extract_by(&self, cost: impl Fn(&EGraph, &Node) -> f64) -> extract::Extraction {
        let mut lookup = |n: &Node| cost(&self.egraph, n);
        extract::greedy_dag(&self.egraph, &self.roots, &mut lookup)
    }

    /// Replaces the function body with the extracted program. Kernels get predicted-latency,
    /// FLOP and byte attributes when a `model` is given.
    pub fn rebuild(
        &mut self,
        m: &mut Module,
        x: &extract::Extraction,
        model: Option<&dyn CostModel>,
    ) -> Result<(), Diagnostic> {
        let ret = m.block_terminator(self.entry).expect("a function body ends in func.return");
        let old: Vec<OpId> = m.block_ops(self.entry).filter(|&o| o != ret).collect();
        let mut values: HashMap<Id, ValueId> = HashMap::new();
        let roots: Vec<Id> = self.roots.iter().map(|&r| self.egraph.find(r)).collect();
        let mut new_values = Vec::new();
        for &r in &roots {
            new_values.push(self.emit(m, r, x, ret, &mut values, model)?);
        }
        m.set_operands(ret, &new_values);
        for op in old.into_iter().rev() {
            if m.is_live(op) && !m.has_uses(op) {
                m.erase_op(op);
            }
        }
        Ok(())
    }

    fn emit(
        &mut self,
        m: &mut Module,
        class: Id,
        x: &extract::Extraction,
        before: OpId,
        values: &mut HashMap<Id, ValueId>,
        model: Option<&dyn CostModel>,
    ) -> Result<ValueId, Diagnostic> {
        let class = self.egraph.find(class);
        if let Some(&v) = values.get(&class) {
            return Ok(v);
        }
        let node =
            x.choice.get(&class).cloned().ok_or_else(|| Diagnostic::error(Location::Unknown, "fusion: no choice"))?;
        let loc = self.egraph[class].data.loc.clone().unwrap_or_default();
        let mut inputs = Vec::new();
        for &c in node.operands() {
            inputs.push(self.emit(m, c, x, before, values, model)?);
        }
        let fail = |e: String| Diagnostic::error(loc.clone(), format!("fusion: {e}"));
        let value = match &node {
            Node::Leaf(i) => match &self.egraph.analysis.leaves[*i as usize].1 {
                LeafOrigin::Ir(v) => *v,
                LeafOrigin::New(d) => {
                    let ty = Type::Tensor(d.ty.clone());
                    let op = m.create_op(
                        OpSpec::new(names::CONSTANT)
                            .attr("value", Attribute::Dense(d.clone()))
                            .results([ty])
                            .loc(loc.clone()),
                    );
                    m.insert_op_before(before, op);
                    m.op(op).result()
                }
            },
            Node::Attrs(_) => return Err(fail("an attribute class is not a value".into())),
            Node::Op(key, children) => {
                let Some(Node::Attrs(a)) = self.egraph[children[children.len() - 1]].nodes.first() else {
                    return Err(fail("op without attributes".into()));
                };
                let attrs: Vec<(&str, Attribute)> =
                    self.egraph.analysis.attrs[*a as usize].iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                let mut b = Builder::before(m, before);
                b.loc = loc.clone();
                let op = b.build_n(key.name, &inputs, &attrs, key.results as usize).map_err(fail)?;
                if key.results == 1 {
                    m.op(op).result()
                } else {
                    // Results are picked by Get nodes; remember the tuple under the class.
                    values.insert(class, m.op(op).results()[0]);
                    self.tuples.insert(class, op);
                    return Ok(m.op(op).results()[0]);
                }
            }
            Node::Get(i, [c]) => {
                let c = self.egraph.find(*c);
                let op = *self.tuples.get(&c).ok_or_else(|| fail("a result of an op not emitted".into()))?;
                m.op(op).results()[*i as usize]
            }
            Node::Kernel(t, children) => {
                let estimate = model.and_then(|model| self.node_estimate(&node, model, false));
                let pattern = self.pattern_of(*t, children).map_err(fail)?;
                self.emit_kernel(m, class, *t, &inputs, before, &pattern, estimate).map_err(fail)?
            }
        };
        values.insert(class, value);
        Ok(value)
    }
}

impl Program {
    /// The pattern name of template `t` over the input classes: named where the inputs are
    /// still visible as constants or values (inside a kernel, every input is an argument).
    fn pattern_of(&mut self, t: u32, inputs: &[Id]) -> Result<String, String> {
        let eg = &mut self.egraph;
        let values: Vec<ValueId> =
            inputs.iter().map(|&c| eg[c].data.value).collect::<Option<_>>().ok_or("untyped input")?;
        let ops = eg.analysis.instantiate(t, &values)?;
        Ok(kernels::pattern_name(&eg.analysis.scratch, &ops))
    }

    /// Emits `smelt.kernel` computing template `t` from `inputs`. Splat constants are cloned
    /// into the body (a kernel is isolated from above); every other input is an operand.
    #[allow(clippy::too_many_arguments)]
    fn emit_kernel(
        &mut self,
        m: &mut Module,
        class: Id,
        t: u32,
        inputs: &[ValueId],
        before: OpId,
        pattern: &str,
        estimate: Option<Estimate>,
    ) -> Result<ValueId, String> {
        let template = self.egraph.analysis.templates[t as usize].clone();
        let loc = self.kernel_location(class, &template);
        let result_ty =
            self.egraph.analysis.ty(&self.egraph[class].data).cloned().ok_or("kernel result has no type")?;
        let inline = crate::work::inlined_constant;
        let operands: Vec<ValueId> = inputs.iter().copied().filter(|&v| inline(m, v).is_none()).collect();
        let kernel = m.create_op(
            OpSpec::new(names::KERNEL)
                .operands(operands.iter().copied())
                .results([result_ty])
                .regions(1)
                .loc(loc.clone()),
        );
        m.insert_op_before(before, kernel);
        let region = m.op(kernel).regions()[0];
        let arg_types: Vec<Type> = operands.iter().map(|&v| m.value_type(v).clone()).collect();
        let body = m.add_block(region, &arg_types);
        let mut args = Vec::new();
        let mut next_arg = 0;
        for &v in inputs {
            match inline(m, v) {
                Some(c) => {
                    let mut mapping = HashMap::new();
                    let clone = m.clone_op(c, &mut mapping);
                    m.append_op(body, clone);
                    args.push(m.op(clone).result());
                }
                None => {
                    args.push(m.block(body).args()[next_arg]);
                    next_arg += 1;
                }
            }
        }
        let body_ops = template.build_in(m, body, &self.egraph.analysis.attrs, &args, &loc)?;
        let root = m.op(*body_ops.last().ok_or("empty kernel")?).result();
        let y = m.create_op(OpSpec::new(names::YIELD).operands([root]).loc(loc));
        m.append_op(body, y);
        let o = m.op_mut(kernel);
        o.attributes.insert("pattern".into(), Attribute::String(pattern.to_string()));
        if let Some(e) = estimate {
            let us = (e.seconds * 1e6 * 1000.0).round() / 1000.0;
            o.attributes.insert("predicted_latency_us".into(), Attribute::Float(us, ElementType::F64));
            o.attributes.insert("flops".into(), Attribute::Int(e.flops as i64, ElementType::I64));
            o.attributes.insert("bytes".into(), Attribute::Int(e.bytes as i64, ElementType::I64));
        }
        Ok(m.op(kernel).result())
    }

    /// The fused location of the ops a kernel replaces.
    fn kernel_location(&self, class: Id, template: &Template) -> Location {
        let eg = &self.egraph;
        let inputs = self.kernel_inputs(class, template).unwrap_or_default();
        let mut locs: Vec<Location> =
            kernels::absorbed(eg, template, &inputs).into_iter().filter_map(|c| eg[c].data.loc.clone()).collect();
        locs.extend(eg[class].data.loc.clone());
        Location::fused(locs)
    }

    fn kernel_inputs(&self, class: Id, template: &Template) -> Option<Vec<Id>> {
        let t = self.egraph.analysis.templates.iter().position(|x| x == template)? as u32;
        self.egraph[class].nodes.iter().find_map(|n| match n {
            Node::Kernel(k, inputs) if *k == t => Some(inputs.iter().map(|&i| self.egraph.find(i)).collect()),
            _ => None,
        })
    }
}

fn set_loc(eg: &mut EGraph, id: Id, loc: &Location) {
    if eg[id].data.loc.is_none() && *loc != Location::Unknown {
        eg[id].data.loc = Some(loc.clone());
    }
}

/// The body of an existing `smelt.kernel` as a template; `None` unless it yields exactly the
/// last body op's single result.
fn template_of(m: &Module, kernel: OpId, t: &mut Tensors) -> Option<Template> {
    let body = m.body_of(kernel);
    let args = m.block(body).args();
    let mut index: HashMap<ValueId, Operand> =
        args.iter().enumerate().map(|(i, &a)| (a, Operand::Arg(i as u32))).collect();
    let mut ops = Vec::new();
    let mut last = None;
    for op in m.block_ops(body) {
        let o = m.op(op);
        if o.name() == names::YIELD {
            return (o.operands().len() == 1 && Some(o.operands()[0]) == last).then_some(Template { ops });
        }
        if o.results().len() != 1 {
            return None;
        }
        let operands = o.operands().iter().map(|v| index.get(v).copied()).collect::<Option<Vec<_>>>()?;
        let attrs = t.intern_attrs(o.attributes.clone());
        index.insert(o.result(), Operand::Op(ops.len() as u32));
        ops.push(TemplateOp { name: o.def.name, attrs, operands });
        last = Some(o.result());
    }
    None
}
