//! Native f32 routines the JIT programs do not cover: the attention head's two products
//! around its JIT softmax, and gathers by indices known only at run time. Each works on dense
//! row-major slices whose shapes the executor checked at compile time.

use crate::gemm::{sgemm, View};

/// Rows of `x` (`row_len` elements each) picked by `indices` (negative counts from the end).
pub fn gather_rows(x: &[f32], rows: usize, row_len: usize, indices: &[i64], out: &mut [f32]) -> Result<(), String> {
    for (k, &i) in indices.iter().enumerate() {
        let r = if i < 0 { i + rows as i64 } else { i };
        if r < 0 || r >= rows as i64 {
            return Err(format!("gather index {i} is out of range for {rows} rows"));
        }
        let r = r as usize;
        out[k * row_len..(k + 1) * row_len].copy_from_slice(&x[r * row_len..(r + 1) * row_len]);
    }
    Ok(())
}

/// `normalize(q k_t) v` for one (batch, head): q [lq, d], k_t [d, lk], v [lk, dv]; `scores`
/// is scratch, and `normalize` turns the scores into probabilities in place (the executor's
/// JIT softmax with the scale and mask).
pub fn attention_head(
    q: View,
    kt: View,
    v: View,
    normalize: impl FnOnce(&mut [f32]),
    scores: &mut [f32],
    out: &mut [f32],
) {
    let (lq, lk, dv) = (q.rows, kt.cols, v.cols);
    sgemm(&q, &kt, scores, lk, false, &|_, _, _, _| {});
    normalize(scores);
    let p = View { data: scores, rows: lq, cols: lk, row_stride: lk, col_stride: 1 };
    sgemm(&p, &v, out, dv, false, &|_, _, _, _| {});
}

/// Calls `f` with every index of `dims` (row-major); once with `[]` for no dims.
pub fn for_each_index(dims: &[u64], mut f: impl FnMut(&[u64])) {
    if dims.contains(&0) {
        return;
    }
    let mut idx = vec![0u64; dims.len()];
    loop {
        f(&idx);
        let mut d = dims.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}
