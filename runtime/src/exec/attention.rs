//! Attention per (batch, head): the scores product, the JIT softmax and the value product,
//! heads split over the workers, operands read in place through strided views.

use super::*;

impl Lower {
    /// Attention per (batch, head), heads split over the workers: scores, softmax, then the value
    /// product.
    pub(super) fn attention(&mut self, op: OpId) -> Result<Step, String> {
        let m = self.module.clone();
        let o = m.op(op);
        let dims = |v: ValueId| -> Result<Vec<u64>, String> { Ok(shape(&tensor_of(&m, v)?)) };
        let (qs, ks, vs, os) =
            (dims(o.operands()[0])?, dims(o.operands()[1])?, dims(o.operands()[2])?, dims(o.result())?);
        let r = os.len();
        let (lq, d, lk, dv) = (
            qs[qs.len() - 2] as usize,
            qs[qs.len() - 1] as usize,
            ks[ks.len() - 1] as usize,
            vs[vs.len() - 1] as usize,
        );
        let batch: Vec<u64> = os[..r - 2].to_vec();
        // Each operand as (where, first element, per-head strides, (row, column) strides):
        // materialized (dense), or a strided view of another value's buffer.
        let operand = |v: ValueId, s: &[u64]| {
            let (loc, offset, strides) = match self.views.get(&v) {
                Some(view) => (self.locs[&view.root], view.offset, view.strides.clone()),
                None => (self.locs[&v], 0, strided::dense_strides(s)),
            };
            let n = s.len();
            let mut head_strides = vec![0i64; batch.len()];
            for i in 0..n - 2 {
                if s[i] != 1 {
                    head_strides[batch.len() + 2 + i - n] = strides[i];
                }
            }
            (loc, offset, head_strides, (strides[n - 2], strides[n - 1]))
        };
        let q = operand(o.operands()[0], &qs);
        let k = operand(o.operands()[1], &ks);
        let v = operand(o.operands()[2], &vs);
        // The mask broadcast to the scores' shape [batch..., lq, lk].
        let mut scores_shape = batch.clone();
        scores_shape.extend([lq as u64, lk as u64]);
        let mask = match o.operands().get(3) {
            Some(&mv) => Some((
                self.locs[&mv],
                broadcast_strides(&dims(mv)?, &scores_shape),
                dims(mv)?.iter().product::<u64>() as usize,
            )),
            None => None,
        };
        let scale = o.float_attr("scale") as f32;
        let out_loc = self.locs[&o.result()];
        let softmax = crate::jit::RowProgram {
            op: crate::jit::RowOp::Softmax {
                log: false,
                scale,
                mask: mask.as_ref().map(|(_, st, _)| (st[st.len() - 2], st[st.len() - 1])),
            },
            len: lk,
            inner: 1,
        };
        let softmax = self.jit.compile_rows(&softmax)?;
        self.info.jit_functions += 1;
        // Every (batch..., head) index, in output order: heads are split over the workers.
        let mut heads: Vec<Vec<u64>> = Vec::new();
        for_each_index(&batch, |idx| heads.push(idx.to_vec()));
        *self.info.native_steps.entry(names::ATTENTION.into()).or_default() += 1;
        Ok(Box::new(move |base| {
            let out = Shared(resolve(out_loc, base) as *mut f32);
            let operands = [&q, &k, &v].map(|(loc, offset, head_strides, rc)| {
                // SAFETY: the offset of a view's first element lies inside its root.
                (Shared(unsafe { (resolve(*loc, base) as *mut f32).offset(*offset as isize) }), head_strides, *rc)
            });
            let mask = mask.as_ref().map(|(loc, st, _)| (Shared(resolve(*loc, base) as *mut f32), st));
            crate::workers::parallel_ranges(heads.len(), 1, |range| {
                let mut scores = vec![0.0f32; lq * lk];
                for head in range {
                    let idx = &heads[head];
                    // SAFETY: offsets, strides and lengths come from the checked shapes (and
                    // views' strides from the movement ops they replace); workers write
                    // disjoint heads of the output; the mask's rows for this head lie inside
                    // it (its broadcast strides over the scores' shape).
                    unsafe {
                        let matrix = |i: usize, rows: usize, cols: usize| {
                            let (at, head_strides, (rs, cs)) = &operands[i];
                            let start = at.get().offset(element_offset(idx, head_strides) as isize);
                            let (rs, cs) = (*rs as usize, *cs as usize);
                            let len = if rows * cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 };
                            View::strided(std::slice::from_raw_parts(start, len), (rows, cols), (rs, cs))
                        };
                        let (q, kt, v) = (matrix(0, lq, d), matrix(1, d, lk), matrix(2, lk, dv));
                        let head_mask = mask.as_ref().map(|(at, st)| at.get().offset(element_offset(idx, st) as isize));
                        let normalize = |s: &mut [f32]| {
                            let buffers: Vec<*mut f32> = match head_mask {
                                Some(m) => vec![s.as_mut_ptr(), m, s.as_mut_ptr()],
                                None => vec![s.as_mut_ptr(), s.as_mut_ptr()],
                            };
                            softmax(buffers.as_ptr(), 0, lq as i64);
                        };
                        let out = std::slice::from_raw_parts_mut(out.get().add(head * lq * dv), lq * dv);
                        crate::ops::attention_head(q, kt, v, normalize, &mut scores, out);
                    }
                }
            });
            Ok(())
        }))
    }
}
