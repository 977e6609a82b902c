//! Packing: A into [`MR`]-row panels, B into [`NR`]-column panels (zero-padded), operands
//! packed ahead of time (weights, at compile time), and right operands that pack themselves
//! or lend their rows in place.

use super::{View, KC, MR, NR};

/// The right operand of a product, packed block by block as the product reaches it: a matrix
/// view, or an image read as its im2col matrix ([`crate::conv::Im2col`]) without materializing
/// it, so each worker packs exactly the columns it computes.
pub trait RightOperand: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    /// Packs rows `k0..k0+kc`, columns `n0..n0+nc` into [`NR`]-column panels, zero-padded:
    /// element (k, j) of panel p at `out[p * NR * kc + k * NR + j]`. `scratch` is the
    /// operand's to use.
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>, scratch: &mut Vec<f32>);
    /// Rows `k0..k0+kc`, columns `n0..n0+nc` where the micro-kernel can read them without
    /// packing, if the operand can lie so: column `n0 + j` of row `k0 + i` at
    /// `elements[offsets[i] + j]`. The elements may be gathered into `scratch`.
    fn in_place<'s>(
        &'s self,
        _rows: (usize, usize),
        _columns: (usize, usize),
        _scratch: &'s mut Vec<f32>,
        _offsets: &mut Vec<usize>,
    ) -> Option<&'s [f32]> {
        None
    }
}

impl RightOperand for View<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>, _scratch: &mut Vec<f32>) {
        pack_b(self, k0, kc, n0, nc, out)
    }

    /// Rows of unit column stride, unless they are a multiple of 1 KiB apart: they would share
    /// a few L1 sets (a 1024-wide B ran at 60% of its packed speed).
    fn in_place<'s>(
        &'s self,
        (k0, kc): (usize, usize),
        (n0, _): (usize, usize),
        _scratch: &'s mut Vec<f32>,
        offsets: &mut Vec<usize>,
    ) -> Option<&'s [f32]> {
        if self.col_stride != 1 || self.row_stride.is_multiple_of(256) {
            return None;
        }
        offsets.clear();
        offsets.extend((k0..k0 + kc).map(|k| k * self.row_stride + n0));
        Some(self.data)
    }
}

/// Packs `b[k0..k0+kc, n0..n0+nc]` into 16-column panels, zero-padded.
pub(crate) fn pack_b(b: &View, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut Vec<f32>) {
    let panels = nc.div_ceil(NR);
    out.clear();
    out.resize(panels * NR * kc, 0.0);
    for p in 0..panels {
        let (c0, cols) = (n0 + p * NR, NR.min(nc - p * NR));
        let panel = &mut out[p * NR * kc..(p + 1) * NR * kc];
        if b.col_stride == 1 {
            for (k, row) in panel.chunks_exact_mut(NR).enumerate() {
                let start = (k0 + k) * b.row_stride + c0;
                let src = &b.data[start..start + cols];
                // Whole panels as fixed-size copies: a 64-byte move, not a memmove call.
                match (<&mut [f32; NR]>::try_from(&mut *row), <&[f32; NR]>::try_from(src)) {
                    (Ok(to), Ok(from)) => *to = *from,
                    _ => row[..cols].copy_from_slice(src),
                }
            }
        } else if b.row_stride == 1 {
            // A column-major B (attention's keys read in place as K^T): each column is a
            // contiguous run, written down the panel.
            for j in 0..cols {
                let column = &b.data[(c0 + j) * b.col_stride + k0..][..kc];
                for (k, &x) in column.iter().enumerate() {
                    panel[k * NR + j] = x;
                }
            }
        } else {
            for (k, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (j, v) in row[..cols].iter_mut().enumerate() {
                    *v = b.at(k0 + k, c0 + j);
                }
            }
        }
    }
}

/// Zeros after the last packed A panel: the column kernel loads a panel's [`MR`] values at
/// step k as one 8-lane vector, so its last load reaches this far past the panels.
pub(crate) const A_SLACK: usize = 8 - MR;

/// Packs `a[m0..m0+mc, k0..k0+kc]` into 6-row panels, zero-padded, then [`A_SLACK`] zeros.
pub(crate) fn pack_a(a: &View, m0: usize, mc: usize, k0: usize, kc: usize, out: &mut Vec<f32>) {
    let panels = mc.div_ceil(MR);
    out.clear();
    out.resize(panels * MR * kc + A_SLACK, 0.0);
    for p in 0..panels {
        let rows = MR.min(mc - p * MR);
        let panel = &mut out[p * MR * kc..(p + 1) * MR * kc];
        if a.col_stride == 1 && rows == MR {
            // Whole panels of a row-major A (attention's queries and probabilities, K = 64
            // and 128, where packing cost a fifth of the product through `at`): six row
            // slices, read together, written in order.
            let r = m0 + p * MR;
            let row = |i: usize| &a.data[(r + i) * a.row_stride + k0..][..kc];
            let rows: [&[f32]; MR] = std::array::from_fn(row);
            for (k, step) in panel.chunks_exact_mut(MR).enumerate() {
                for (slot, row) in step.iter_mut().zip(&rows) {
                    *slot = row[k];
                }
            }
            continue;
        }
        for i in 0..rows {
            let r = m0 + p * MR + i;
            for k in 0..kc {
                panel[k * MR + i] = a.at(r, k0 + k);
            }
        }
    }
}

/// An operand packed ahead of time (weights, at compile time): one packed `KC`-deep block per
/// K step, each the concatenation of every micro-panel, so any panel-aligned range is a slice.
#[derive(Clone)]
pub struct Packed {
    pub(crate) blocks: Vec<Vec<f32>>,
}

impl Packed {
    /// A as the product's left operand.
    pub fn a(a: &View) -> Packed {
        let blocks = (0..a.cols)
            .step_by(KC)
            .map(|k0| {
                let mut out = Vec::new();
                pack_a(a, 0, a.rows, k0, KC.min(a.cols - k0), &mut out);
                out
            })
            .collect();
        Packed { blocks }
    }

    /// B as the product's right operand.
    pub fn b(b: &View) -> Packed {
        let blocks = (0..b.rows)
            .step_by(KC)
            .map(|k0| {
                let mut out = Vec::new();
                pack_b(b, k0, KC.min(b.rows - k0), 0, b.cols, &mut out);
                out
            })
            .collect();
        Packed { blocks }
    }
}
