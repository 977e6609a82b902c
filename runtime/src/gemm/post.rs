//! The head of a fused epilogue that a micro-kernel applies in registers.

/// What a product applies to each finished element in registers, before storing it:
/// `min(max(acc * scale + bias, lo), hi)` — a scale (attention's `1 / sqrt(d)`, gemm's alpha),
/// a bias and a ReLU / ReLU6 / clip, the usual head of a fused epilogue, which would otherwise
/// cost a pass over C in the JIT epilogue. The multiply and the add round separately, as the
/// JIT program does.
///
/// `max` and `min` follow the x86 `maxps` / `minps` operand order so that a NaN sum stays NaN,
/// as ONNX's Relu and Clip keep it.
#[derive(Clone, Copy, Debug)]
pub struct Post<'a> {
    pub scale: f32,
    pub bias: Bias<'a>,
    pub lo: f32,
    pub hi: f32,
}

/// A bias indexed by C's row (a convolution's output channel) or column (a linear layer's
/// output feature), starting at the product's first row or column.
#[derive(Clone, Copy, Debug)]
pub enum Bias<'a> {
    None,
    Rows(&'a [f32]),
    Columns(&'a [f32]),
}

impl Post<'_> {
    /// Stores the sum unchanged.
    pub const NONE: Post<'static> = Post { scale: 1.0, bias: Bias::None, lo: f32::NEG_INFINITY, hi: f32::INFINITY };

    pub(crate) fn is_none(&self) -> bool {
        self.scale == 1.0 && matches!(self.bias, Bias::None) && self.lo == f32::NEG_INFINITY && self.hi == f32::INFINITY
    }

    /// The bias at row `r`, column `c` of C.
    #[inline(always)]
    pub fn bias_at(&self, r: usize, c: usize) -> f32 {
        match self.bias {
            Bias::None => 0.0,
            Bias::Rows(b) => b[r],
            Bias::Columns(b) => b[c],
        }
    }

    /// The tile at (`r0`, `c0`): up to [`MR`](super::MR) rows, [`NR`](super::NR) columns.
    pub(crate) fn tile(&self, r0: usize, c0: usize, cols: usize) -> TilePost {
        let (row_bias, col_bias) = match self.bias {
            Bias::None => (std::ptr::null(), std::ptr::null()),
            Bias::Rows(b) => (b[r0..].as_ptr(), std::ptr::null()),
            Bias::Columns(b) => (std::ptr::null(), b[c0..c0 + cols].as_ptr()),
        };
        TilePost { row_bias, col_bias, scale: self.scale, lo: self.lo, hi: self.hi }
    }

    /// `v` as the micro-kernel stores it, given the bias for its row and column.
    #[inline(always)]
    pub fn apply(&self, v: f32, bias: f32) -> f32 {
        let v = v * self.scale + bias;
        let v = if self.lo > v { self.lo } else { v };
        if self.hi < v {
            self.hi
        } else {
            v
        }
    }
}

/// [`Post`] for one micro-tile: bias pointers already at the tile's first row (as many values
/// as the tile has rows) or first column (as many as it has columns), null when absent.
#[repr(C)]
pub struct TilePost {
    pub row_bias: *const f32,
    pub col_bias: *const f32,
    pub scale: f32,
    pub lo: f32,
    pub hi: f32,
}

impl TilePost {
    /// The tile's element (i, j) sum as the micro-kernel stores it.
    pub(crate) unsafe fn apply(&self, sum: f32, i: usize, j: usize) -> f32 {
        let bias = |ptr: *const f32, k: usize| if ptr.is_null() { 0.0 } else { *ptr.add(k) };
        let post = Post { scale: self.scale, bias: Bias::None, lo: self.lo, hi: self.hi };
        post.apply(sum, bias(self.row_bias, i) + bias(self.col_bias, j))
    }
}
