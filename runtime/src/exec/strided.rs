//! Strided programs: an elementwise program over an iteration space of any rank, run as a 2-D
//! JIT loop per outer index. Elementwise kernels and every data-movement op (a copy is the
//! program that stores its one input) lower through here.

use super::{merge_dims, resolve, Loc, Lower, Step};
use crate::jit::{Elementwise, Ew, EwFn};
use crate::vmath::Activation;
use crate::workers::Shared;

/// One buffer a strided program reads or writes: its location, the element its view starts
/// at, and its stride (in elements) along every dimension of the iteration space.
#[derive(Clone, Debug)]
pub(super) struct Operand {
    pub loc: Loc,
    pub offset: i64,
    pub strides: Vec<i64>,
}

impl Operand {
    pub fn new(loc: Loc, strides: Vec<i64>) -> Operand {
        Operand { loc, offset: 0, strides }
    }
}

pub(super) use smelt_compiler::views::dense_strides;

/// Below this many elements per worker a split costs more than it saves.
pub(super) const ELEMENTS_PER_WORKER: usize = 16 * 1024;

/// The row length a contiguous space is cut into for the workers.
const ROW: usize = 4096;

impl Lower {
    /// A step computing `ops` (whose `Input(i)` reads `operands[i]`) at every index of `dims`
    /// and storing `ops[result]` into the last operand. Rows of the merged space are split
    /// over the workers.
    pub(super) fn strided(
        &mut self,
        ops: Vec<Ew>,
        result: u32,
        dims: &[u64],
        operands: Vec<Operand>,
    ) -> Result<Step, String> {
        self.strided_then(ops, result, dims, operands, Vec::new())
    }

    /// [`Lower::strided`], then `acts` applied at full width ([`crate::vmath`]) to each chunk
    /// of output rows the program just wrote, while they are in cache. A program that only
    /// reads one input along its rows is not compiled: the activations read that input.
    pub(super) fn strided_then(
        &mut self,
        ops: Vec<Ew>,
        result: u32,
        dims: &[u64],
        operands: Vec<Operand>,
        acts: Vec<Activation>,
    ) -> Result<Step, String> {
        if dims.contains(&0) {
            return Ok(Box::new(|_| Ok(())));
        }
        let all: Vec<Vec<i64>> = operands.iter().map(|o| o.strides.clone()).collect();
        let (mut dims, mut strides) = merge_dims(dims, &all);
        // The JIT loop stores dense columns: give it a unit innermost dimension otherwise.
        let n_in = operands.len() - 1;
        if strides[n_in].last() != Some(&1) {
            dims.push(1);
            strides.iter_mut().for_each(|s| s.push(1));
        }
        // A contiguous space merges into one row, which the workers cannot split: cut it into
        // rows of `ROW` elements (the last `tail` elements as one shorter row after them).
        let mut tail = 0;
        if dims.len() == 1 && dims[0] as usize >= 2 * ELEMENTS_PER_WORKER {
            let n = dims[0] as usize;
            tail = n % ROW;
            dims = vec![(n / ROW) as u64, ROW as u64];
            strides.iter_mut().for_each(|s| *s = vec![s[0] * ROW as i64, s[0]]);
        }
        let k = dims.len();
        let (rows, cols) = if k == 1 { (1, dims[0] as usize) } else { (dims[k - 2] as usize, dims[k - 1] as usize) };
        let two_d = |s: &Vec<i64>| if k == 1 { (0, s[0]) } else { (s[k - 2], s[k - 1]) };
        let out_row_stride = if k == 1 { cols as i64 } else { strides[n_in][k - 2] };
        let direct = !acts.is_empty() && ops[result as usize] == Ew::Input(0) && two_d(&strides[0]).1 == 1;
        let program = Elementwise { ops, result, strides: strides[..n_in].iter().map(two_d).collect(), out_row_stride };
        let f = if direct { None } else { Some(self.jit.compile(&program)?) };
        self.info.jit_functions += usize::from(f.is_some());
        if !acts.is_empty() {
            *self.info.native_steps.entry(format!("vmath {}", crate::vmath::isa())).or_default() += 1;
        }
        let outer: Vec<usize> = dims[..k.saturating_sub(2)].iter().map(|&d| d as usize).collect();
        let outer_strides: Vec<Vec<i64>> = strides.iter().map(|s| s[..k.saturating_sub(2)].to_vec()).collect();
        let row_strides: Vec<i64> =
            strides.iter().enumerate().map(|(i, s)| if i == n_in { out_row_stride } else { two_d(s).0 }).collect();
        let places: Vec<(Loc, i64)> = operands.iter().map(|o| (o.loc, o.offset)).collect();
        let total_rows = outer.iter().product::<usize>() * rows;
        let min_rows = (ELEMENTS_PER_WORKER / cols.max(1)).max(1);
        Ok(Box::new(move |base| {
            let bases: Vec<Shared<f32>> = places
                .iter()
                .map(|&(loc, offset)| Shared((resolve(loc, base) as *mut f32).wrapping_offset(offset as isize)))
                .collect();
            crate::workers::parallel_ranges(total_rows, min_rows, |range| {
                let mut at = range.start;
                let mut ptrs: Vec<*mut f32> = vec![std::ptr::null_mut(); bases.len()];
                while at < range.end {
                    let (o, r0) = (at / rows, at % rows);
                    let n = (rows - r0).min(range.end - at);
                    // The outer index `o`, dimension by dimension.
                    let mut offsets = vec![0i64; bases.len()];
                    let mut rest = o;
                    for d in (0..outer.len()).rev() {
                        let i = (rest % outer[d]) as i64;
                        rest /= outer[d];
                        offsets.iter_mut().zip(&outer_strides).for_each(|(off, s)| *off += i * s[d]);
                    }
                    for (((p, b), off), rs) in ptrs.iter_mut().zip(&bases).zip(&offsets).zip(&row_strides) {
                        *p = b.get().wrapping_offset((off + r0 as i64 * rs) as isize);
                    }
                    // SAFETY: the program was compiled for these strides; every index it
                    // visits lies inside the operands' tensors (strides from their shapes),
                    // and the output's rows are dense (`cols` elements each).
                    unsafe { rows_then(f, &acts, &ptrs, n, cols, &row_strides) };
                    at += n;
                }
            });
            if tail > 0 {
                // The tail row starts where the rows end, in every operand.
                let ptrs: Vec<*mut f32> = bases
                    .iter()
                    .zip(&row_strides)
                    .map(|(b, rs)| b.get().wrapping_offset(total_rows as isize * *rs as isize))
                    .collect();
                // SAFETY: as above; the tail's elements follow the rows' in every operand.
                unsafe { rows_then(f, &acts, &ptrs, 1, tail, &row_strides) };
            }
            Ok(())
        }))
    }

    /// [`Lower::strided`] for a program that only moves elements — a copy (`Ew::Input(0)`
    /// from the first operand into the second) or a fill (`Ew::Const`, zero bits for 8-byte
    /// elements) — of 4- or 8-byte elements: an 8-byte element moves as two f32 lanes (loads
    /// and stores keep the bits).
    pub(super) fn move_elements(
        &mut self,
        op: Ew,
        dims: &[u64],
        operands: Vec<Operand>,
        element_bytes: usize,
    ) -> Result<Step, String> {
        match element_bytes {
            4 => self.strided(vec![op], 0, dims, operands),
            8 => {
                let widen = |o: Operand| {
                    let strides = o.strides.iter().map(|s| s * 2).chain([1]).collect();
                    Operand { loc: o.loc, offset: o.offset * 2, strides }
                };
                let dims: Vec<u64> = dims.iter().copied().chain([2]).collect();
                self.strided(vec![op], 0, &dims, operands.into_iter().map(widen).collect())
            }
            n => Err(format!("no copy for {n}-byte elements")),
        }
    }
}

/// `n` rows of `cols` elements at `ptrs` (inputs, then the output last; `row_strides` in the
/// same order): the program `f` (or, with none, the first input as it is), then `acts` on
/// each output row.
///
/// # Safety
/// As for `f`; the output's rows hold `cols` dense elements, and so does the first input's
/// when there is no `f`.
unsafe fn rows_then(
    f: Option<EwFn>,
    acts: &[Activation],
    ptrs: &[*mut f32],
    n: usize,
    cols: usize,
    row_strides: &[i64],
) {
    let out = ptrs.len() - 1;
    if let Some(f) = f {
        f(ptrs.as_ptr(), n as i64, cols as i64);
    }
    if acts.is_empty() {
        return;
    }
    let from = if f.is_some() { out } else { 0 };
    for r in 0..n as isize {
        let at = |i: usize| ptrs[i].wrapping_offset(r * row_strides[i] as isize);
        crate::vmath::apply_raw(acts, at(from), at(out), cols);
    }
}
