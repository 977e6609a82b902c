//! Data movement as strided copies: concat, split, slice, transpose, expand, tile, constant
//! padding and gathers by constant indices. Each is one or more views of the input copied
//! into views of the output ([`super::strided`]), so it runs as JIT code with contiguous
//! rows on 4-lane vectors. Elements of 4 or 8 bytes; anything else (and padding by
//! reflection, edge or wrap, and gathers by computed indices past axis 0) stays with the
//! reference semantics.

use smelt_compiler::dialect::infer::normalize_axis;
use smelt_compiler::dialect::OpView;
use smelt_compiler::ir::OpId;
use smelt_compiler::names;
use smelt_compiler::views::slice_starts_and_steps;

use super::strided::{dense_strides, Operand};
use super::{broadcast_strides, shape, tensor_of, Lower, Step};
use crate::jit::Ew;

/// Copies with more pieces than this stay with the reference (one JIT function each).
const MAX_PIECES: usize = 64;

impl Lower {
    /// A strided-copy lowering of `op`, when it is a data-movement op this module handles.
    pub(super) fn movement(&mut self, op: OpId) -> Result<Option<Step>, String> {
        let m = self.module.clone();
        let o = m.op(op);
        let view = OpView::new(&m, op);
        let x = o.operands()[0];
        let xt = tensor_of(&m, x)?;
        let bytes = xt.element.byte_size();
        if bytes != 4 && bytes != 8
            || o.results().iter().any(|&r| m.value_type(r).as_tensor().map(|t| t.element) != Some(xt.element))
        {
            return Ok(None);
        }
        let xs = shape(&xt);
        let xstrides = dense_strides(&xs);
        let out_shape = |i: usize| -> Result<Vec<u64>, String> { Ok(shape(&tensor_of(&m, o.results()[i])?)) };
        let out_loc = |i: usize| self.locs[&o.results()[i]];
        let x_loc = self.locs[&x];
        let mut pieces: Vec<(Vec<u64>, Operand, Operand)> = Vec::new();
        let mut fill: Option<(Vec<u64>, f32)> = None;
        match o.name() {
            names::CONCAT => {
                let os = out_shape(0)?;
                let axis = normalize_axis(view.int("axis"), os.len())?;
                let ostrides = dense_strides(&os);
                let mut at = 0i64;
                for &input in o.operands() {
                    let s = shape(&tensor_of(&m, input)?);
                    let to = Operand { loc: out_loc(0), offset: at * ostrides[axis], strides: ostrides.clone() };
                    pieces.push((s.clone(), Operand::new(self.locs[&input], dense_strides(&s)), to));
                    at += s[axis] as i64;
                }
            }
            names::SPLIT => {
                let axis = normalize_axis(view.int("axis"), xs.len())?;
                let mut at = 0i64;
                for i in 0..o.results().len() {
                    let s = out_shape(i)?;
                    let from = Operand { loc: x_loc, offset: at * xstrides[axis], strides: xstrides.clone() };
                    pieces.push((s.clone(), from, Operand::new(out_loc(i), dense_strides(&s))));
                    at += s[axis] as i64;
                }
            }
            names::SLICE => {
                let Some((starts, steps)) = slice_starts_and_steps(&view, &xs) else { return Ok(None) };
                let offset = starts.iter().zip(&xstrides).map(|(s, t)| s * t).sum();
                let strides = steps.iter().zip(&xstrides).map(|(s, t)| s * t).collect();
                let os = out_shape(0)?;
                pieces.push((
                    os.clone(),
                    Operand { loc: x_loc, offset, strides },
                    Operand::new(out_loc(0), dense_strides(&os)),
                ));
            }
            names::TRANSPOSE => {
                let perm: Vec<usize> =
                    match o.attr("perm").and_then(smelt_compiler::attributes::Attribute::as_i64_array) {
                        Some(p) => p.iter().map(|&a| a as usize).collect(),
                        None => (0..xs.len()).rev().collect(),
                    };
                let os = out_shape(0)?;
                let strides = perm.iter().map(|&p| xstrides[p]).collect();
                pieces.push((os.clone(), Operand::new(x_loc, strides), Operand::new(out_loc(0), dense_strides(&os))));
            }
            names::EXPAND => {
                let os = out_shape(0)?;
                let from = Operand::new(x_loc, broadcast_strides(&xs, &os));
                pieces.push((os.clone(), from, Operand::new(out_loc(0), dense_strides(&os))));
            }
            names::TILE => {
                // out viewed as [r0, d0, r1, d1, ...]: the input repeats along every r.
                let os = out_shape(0)?;
                let reps: Vec<u64> = os.iter().zip(&xs).map(|(&o, &d)| o.checked_div(d).unwrap_or(0)).collect();
                let dims: Vec<u64> = reps.iter().zip(&xs).flat_map(|(&r, &d)| [r, d]).collect();
                let from: Vec<i64> = xstrides.iter().flat_map(|&s| [0, s]).collect();
                pieces.push((dims.clone(), Operand::new(x_loc, from), Operand::new(out_loc(0), dense_strides(&dims))));
            }
            names::PAD => {
                if o.attr("mode").and_then(|a| a.as_str()).is_some_and(|mode| mode != "constant") {
                    return Ok(None);
                }
                let Some(pads) = view.const_ints(o.operands()[1]) else { return Ok(None) };
                let value = match view.operand("constant_value") {
                    Some(v) => match self.constant_f32(v) {
                        Some([k]) if bytes == 4 && xt.element == smelt_compiler::ElementType::F32 => *k,
                        _ => match view.const_ints(v).as_deref() {
                            Some([0]) => 0.0,
                            _ => return Ok(None),
                        },
                    },
                    None => 0.0,
                };
                if value != 0.0 && xt.element != smelt_compiler::ElementType::F32 {
                    return Ok(None);
                }
                let axes: Vec<usize> = match view.operand("axes") {
                    Some(a) => match view.const_ints(a) {
                        Some(a) => a.iter().map(|&a| normalize_axis(a, xs.len())).collect::<Result<_, _>>()?,
                        None => return Ok(None),
                    },
                    None => (0..xs.len()).collect(),
                };
                let os = out_shape(0)?;
                let ostrides = dense_strides(&os);
                // Negative pads crop: the copied box starts past them in the input.
                let (mut from_off, mut to_off, mut dims) = (0i64, 0i64, xs.clone());
                for (i, &a) in axes.iter().enumerate() {
                    let (before, after) = (pads[i], pads[i + axes.len()]);
                    from_off += (-before).max(0) * xstrides[a];
                    to_off += before.max(0) * ostrides[a];
                    dims[a] = (xs[a] as i64 - (-before).max(0) - (-after).max(0)).max(0) as u64;
                }
                fill = Some((os.clone(), value));
                let from = Operand { loc: x_loc, offset: from_off, strides: xstrides.clone() };
                pieces.push((dims, from, Operand { loc: out_loc(0), offset: to_off, strides: ostrides }));
            }
            names::GATHER => {
                let Some(indices) = view.const_ints(o.operands()[1]) else { return Ok(None) };
                let axis = normalize_axis(view.int("axis"), xs.len())?;
                let (pre, n, post) =
                    (xs[..axis].iter().product::<u64>(), xs[axis] as i64, xs[axis + 1..].iter().product::<u64>());
                let count = indices.len() as i64;
                for (j, &i) in indices.iter().enumerate() {
                    let i = if i < 0 { i + n } else { i };
                    if !(0..n).contains(&i) {
                        return Err(format!("gather index {i} is out of range for {n} entries"));
                    }
                    let from = Operand { loc: x_loc, offset: i * post as i64, strides: vec![n * post as i64, 1] };
                    let to = Operand {
                        loc: out_loc(0),
                        offset: j as i64 * post as i64,
                        strides: vec![count * post as i64, 1],
                    };
                    pieces.push((vec![pre, post], from, to));
                }
            }
            _ => return Ok(None),
        }
        if pieces.len() > MAX_PIECES {
            return Ok(None);
        }
        let mut steps: Vec<Step> = Vec::new();
        if let Some((os, value)) = fill {
            let to = Operand::new(out_loc(0), dense_strides(&os));
            steps.push(self.move_elements(Ew::Const(value), &os, vec![to], bytes)?);
        }
        for (dims, from, to) in pieces {
            steps.push(self.move_elements(Ew::Input(0), &dims, vec![from, to], bytes)?);
        }
        *self.info.native_steps.entry(o.name().to_string()).or_default() += 1;
        Ok(Some(Box::new(move |base| steps.iter().try_for_each(|s| s(base)))))
    }
}
