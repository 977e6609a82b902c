//! Elementwise programs: the ops of a kernel segment (or an anchor's epilogue) as one JIT
//! program (`Ew`), and which ops lower to one.

use super::*;
use crate::vmath::Activation;

impl Lower {
    pub(super) fn elementwise(&mut self, ops: &[OpId]) -> Result<Step, String> {
        let m = self.module.clone();
        let mut b = ProgramBuilder::default();
        for &op in ops {
            b.op(&m, op)?;
        }
        let (mut prog, inputs) = (b.prog, b.inputs);
        let out = m.op(*ops.last().unwrap()).result();
        let out_shape = shape(&tensor_of(&m, out)?);
        // Per-dim strides of every input (BatchNorm parameters align at axis 1), then merge
        // dimensions that are contiguous for all.
        let mut strides: Vec<Vec<i64>> = Vec::new();
        for &v in &inputs {
            let s = shape(&tensor_of(&m, v)?);
            let aligned = if is_channel_param(&m, ops, v) {
                let mut a = vec![1u64; out_shape.len()];
                a[1] = s.iter().product();
                a
            } else {
                s
            };
            strides.push(broadcast_strides(&aligned, &out_shape));
        }
        let mut operands: Vec<strided::Operand> =
            inputs.iter().zip(strides).map(|(v, s)| strided::Operand::new(self.locs[v], s)).collect();
        operands.push(strided::Operand::new(self.locs[&out], strided::dense_strides(&out_shape)));
        let mut result = prog.len() as u32 - 1;
        round_trips_to_grid(&mut prog, result);
        let acts = take_trailing_activations(&mut prog, &mut result);
        self.strided_then(prog, result, &out_shape, operands, acts)
    }
}

/// The activations that end `prog`, each reading a value nothing else reads, taken out of it
/// (left as dead constants) in the order they apply; `result` moves to what the first reads.
/// The executor runs them at full width ([`crate::vmath`]) on the output instead.
pub(super) fn take_trailing_activations(prog: &mut [Ew], result: &mut u32) -> Vec<Activation> {
    let mut acts = Vec::new();
    while let Ew::Act(a, x) = prog[*result as usize] {
        if prog.iter().filter(|op| op.operands().contains(&x)).count() != 1 {
            break;
        }
        prog[*result as usize] = Ew::Const(0.0);
        acts.push(a);
        *result = x;
    }
    acts.reverse();
    acts
}

/// Each `clamp(round(x / s), lo, hi) * s` of constants in `prog` (a quantize-dequantize
/// pair as `canonicalize` leaves it) as one [`Activation::RoundToGrid`]: one unit the JIT
/// expands without its NaN-propagating min/max sequences, and that runs at full width where it
/// ends a kernel. The entries it replaces (never `result`) become dead constants.
pub(super) fn round_trips_to_grid(prog: &mut [Ew], result: u32) {
    let uses = |prog: &[Ew], v: u32| prog.iter().filter(|op| op.operands().contains(&v)).count();
    let constant = |prog: &[Ew], v: u32| match prog[v as usize] {
        Ew::Const(k) => Some(k),
        _ => None,
    };
    for i in 0..prog.len() {
        let Ew::Mul(a, k) = prog[i] else { continue };
        let (stepped, scale) = match (constant(prog, k), constant(prog, a)) {
            (Some(s), _) => (a, s),
            (None, Some(s)) => (k, s),
            _ => continue,
        };
        let Ew::Min(clipped, h) = prog[stepped as usize] else { continue };
        let Ew::Max(rounded, l) = prog[clipped as usize] else { continue };
        let Ew::Round(divided) = prog[rounded as usize] else { continue };
        let Ew::Div(x, k2) = prog[divided as usize] else { continue };
        let (Some(hi), Some(lo), Some(s2)) = (constant(prog, h), constant(prog, l), constant(prog, k2)) else {
            continue;
        };
        let chain = [stepped, clipped, rounded, divided];
        if s2 != scale
            || lo.is_nan()
            || hi.is_nan()
            || lo > hi
            || chain.iter().any(|&v| v == result || uses(prog, v) != 1)
        {
            continue;
        }
        prog[i] = Ew::Act(Activation::RoundToGrid { scale, lo, hi }, x);
        for v in chain {
            prog[v as usize] = Ew::Const(0.0);
        }
    }
}

/// An elementwise program under construction: ops appended in order, each distinct outside
/// value read once as an input.
#[derive(Default)]
pub(super) struct ProgramBuilder {
    pub(super) prog: Vec<Ew>,
    pub(super) inputs: Vec<ValueId>,
    /// Where each value is in `prog`.
    pub(super) index: HashMap<ValueId, u32>,
}

impl ProgramBuilder {
    pub(super) fn push(&mut self, e: Ew) -> u32 {
        self.prog.push(e);
        self.prog.len() as u32 - 1
    }

    /// The program index of `v`, reading it as a new input the first time.
    pub(super) fn input(&mut self, v: ValueId) -> u32 {
        if let Some(&i) = self.index.get(&v) {
            return i;
        }
        self.inputs.push(v);
        let i = self.push(Ew::Input(self.inputs.len() as u32 - 1));
        self.index.insert(v, i);
        i
    }

    /// Appends `op`. A constant operand with one value throughout (a clip bound, a scale)
    /// becomes an immediate rather than an input read per element.
    pub(super) fn op(&mut self, m: &Module, op: OpId) -> Result<(), String> {
        let operands: Vec<u32> = m
            .op(op)
            .operands()
            .iter()
            .map(|&v| match (self.index.get(&v), splat_of(m, v)) {
                (None, Some(k)) => {
                    let i = self.push(Ew::Const(k as f32));
                    self.index.insert(v, i);
                    i
                }
                _ => self.input(v),
            })
            .collect();
        let r = lower_ew(m, op, &operands, &mut self.prog).ok_or("not elementwise-lowerable")?;
        self.index.insert(m.op(op).result(), r);
        Ok(())
    }
}

/// Whether an elementwise chain can be evaluated over its last op's shape: each result
/// broadcasts to the next (BatchNorm's channel-aligned parameters excluded).
pub(super) fn broadcast_chain(m: &Module, ops: &[OpId]) -> bool {
    let dims = |op: OpId| tensor_of(m, m.op(op).result()).ok().and_then(|t| t.static_shape());
    ops.iter().all(|&o| m.op(o).name() != names::BATCH_NORM)
        && ops.windows(2).all(|w| match (dims(w[0]), dims(w[1])) {
            (Some(a), Some(b)) => smelt_compiler::dialect::infer::broadcasts_to(&a, &b),
            _ => false,
        })
}

/// BatchNorm's scale, bias, mean and variance: 1-D, aligned with axis 1.
pub(super) fn is_channel_param(m: &Module, ops: &[OpId], v: ValueId) -> bool {
    ops.iter().any(|&op| m.op(op).name() == names::BATCH_NORM && m.op(op).operands()[1..].contains(&v))
}

pub(super) fn splat_of(m: &Module, v: ValueId) -> Option<f64> {
    let d = m.defining_op(v)?;
    match m.op(d).attr("value") {
        Some(Attribute::Dense(dense)) if dense.ty.num_elements() == Some(1) || dense.is_splat() => {
            Literal::decode(dense, &m.resources)?.to_f64().first().copied()
        }
        _ => None,
    }
}

/// Whether `op` lowers to an elementwise program: f32 throughout, one result, and an arm in
/// [`lower_ew`] that accepts its attributes.
pub(super) fn ew_lowerable(m: &Module, op: OpId) -> bool {
    let o = m.op(op);
    if !o.operands().iter().chain(o.results()).all(|&v| f32_value(m, v)) || o.results().len() != 1 {
        return false;
    }
    let operands: Vec<u32> = (0..o.operands().len() as u32).collect();
    lower_ew(m, op, &operands, &mut Vec::new()).is_some()
}

/// Appends `op` (operands at program indices `x`) to `prog`; returns its result's index.
pub(super) fn lower_ew(m: &Module, op: OpId, x: &[u32], prog: &mut Vec<Ew>) -> Option<u32> {
    let o = m.op(op);
    let float = |name: &str| o.float_attr(name) as f32;
    let mut push = |e: Ew| -> u32 {
        prog.push(e);
        prog.len() as u32 - 1
    };
    let r = match o.name() {
        names::ADD => push(Ew::Add(x[0], x[1])),
        names::SUB => push(Ew::Sub(x[0], x[1])),
        names::MUL => push(Ew::Mul(x[0], x[1])),
        names::DIV => push(Ew::Div(x[0], x[1])),
        names::MAX if x.len() == 2 => push(Ew::Max(x[0], x[1])),
        names::MIN if x.len() == 2 => push(Ew::Min(x[0], x[1])),
        names::NEG => push(Ew::Neg(x[0])),
        names::ABS => push(Ew::Abs(x[0])),
        names::SQRT => push(Ew::Sqrt(x[0])),
        names::EXP => push(Ew::Act(Activation::Exp, x[0])),
        names::TANH => push(Ew::Act(Activation::Tanh, x[0])),
        names::SIGMOID => push(Ew::Act(Activation::Sigmoid, x[0])),
        names::ERF => push(Ew::Act(Activation::Erf, x[0])),
        names::SILU => push(Ew::Act(Activation::Silu, x[0])),
        names::SOFTPLUS => push(Ew::Act(Activation::Softplus, x[0])),
        names::MISH => push(Ew::Act(Activation::Mish, x[0])),
        names::HARDSWISH => push(Ew::Act(Activation::HardSwish, x[0])),
        names::HARDSIGMOID => {
            push(Ew::Act(Activation::HardSigmoid { alpha: float("alpha"), beta: float("beta") }, x[0]))
        }
        names::GELU if o.string_attr("approximate") == "tanh" => push(Ew::Act(Activation::GeluTanh, x[0])),
        names::GELU => push(Ew::Act(Activation::Gelu, x[0])),
        names::IDENTITY => x[0],
        names::LOG => push(Ew::Log(x[0])),
        names::ROUND => push(Ew::Round(x[0])),
        names::SOFTSIGN => {
            let one = push(Ew::Const(1.0));
            let a = push(Ew::Abs(x[0]));
            let d = push(Ew::Add(one, a));
            push(Ew::Div(x[0], d))
        }
        // max(x, 0) + min(alpha (e^x - 1), 0) is ELU only for alpha >= 0.
        names::ELU | names::SELU if o.float_attr("alpha") >= 0.0 => {
            let selu = o.is(names::SELU);
            let alpha = float("alpha");
            let zero = push(Ew::Const(0.0));
            let one = push(Ew::Const(1.0));
            let k = push(Ew::Const(alpha));
            let pos = push(Ew::Max(x[0], zero));
            let e = push(Ew::Act(Activation::Exp, x[0]));
            let em1 = push(Ew::Sub(e, one));
            let scaled = push(Ew::Mul(em1, k));
            let neg = push(Ew::Min(scaled, zero));
            let y = push(Ew::Add(pos, neg));
            if selu {
                let gamma = push(Ew::Const(float("gamma")));
                push(Ew::Mul(y, gamma))
            } else {
                y
            }
        }
        names::RELU => {
            let z = push(Ew::Const(0.0));
            push(Ew::Max(x[0], z))
        }
        names::RECIPROCAL => {
            let one = push(Ew::Const(1.0));
            push(Ew::Div(one, x[0]))
        }
        names::LEAKY_RELU | names::PRELU => {
            let slope = if o.name() == names::PRELU { x[1] } else { push(Ew::Const(float("alpha"))) };
            push(Ew::ScaleBelowZero(x[0], slope))
        }
        names::CLIP => {
            let mut v = x[0];
            // clip(x, min?, max?): operands present in order; an absent bound does not clip.
            let names = smelt_compiler::dialect::OpView::new(m, op);
            if let Some(lo) = names.operand("min") {
                let i = o.operands().iter().position(|&u| u == lo)?;
                v = push(Ew::Max(v, x[i]));
            }
            if let Some(hi) = names.operand("max") {
                let i = o.operands().iter().position(|&u| u == hi)?;
                v = push(Ew::Min(v, x[i]));
            }
            v
        }
        names::BATCH_NORM => {
            // (x - mean) * scale / sqrt(var + eps) + bias
            let eps = push(Ew::Const(float("epsilon")));
            let ve = push(Ew::Add(x[4], eps));
            let sd = push(Ew::Sqrt(ve));
            let k = push(Ew::Div(x[1], sd));
            let c = push(Ew::Sub(x[0], x[3]));
            let s = push(Ew::Mul(c, k));
            push(Ew::Add(s, x[2]))
        }
        names::POW => match splat_of(m, o.operands()[1])? {
            1.0 => x[0],
            0.5 => push(Ew::Sqrt(x[0])),
            2.0 => push(Ew::Mul(x[0], x[0])),
            3.0 => {
                let x2 = push(Ew::Mul(x[0], x[0]));
                push(Ew::Mul(x2, x[0]))
            }
            _ => return None,
        },
        _ => return None,
    };
    Some(r)
}
