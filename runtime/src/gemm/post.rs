//! The head of a fused epilogue that a micro-kernel applies in registers.

/// What a product applies to each finished element in registers, before storing it:
/// `min(max(acc * scale + bias + residual, lo), hi)` — a scale (attention's `1 / sqrt(d)`,
/// gemm's alpha), a bias, a residual (a tensor of C's shape, ResNet's shortcut) and a ReLU /
/// ReLU6 / clip, the usual head of a fused epilogue, which would otherwise cost a pass over C
/// in the JIT epilogue. Each operation rounds on its own, in that order, as the JIT program's
/// do.
///
/// `max` and `min` follow the x86 `maxps` / `minps` operand order so that a NaN sum stays NaN,
/// as ONNX's Relu and Clip keep it.
#[derive(Clone, Copy, Debug)]
pub struct Post<'a> {
    pub scale: f32,
    pub bias: Bias<'a>,
    pub residual: Option<Residual<'a>>,
    pub lo: f32,
    pub hi: f32,
}

/// A tensor of C's shape added to the product: element (r, c), counted from the product's
/// first row and column, at `data[r * ld + c]`.
#[derive(Clone, Copy, Debug)]
pub struct Residual<'a> {
    pub data: &'a [f32],
    pub ld: usize,
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
    pub const NONE: Post<'static> =
        Post { scale: 1.0, bias: Bias::None, residual: None, lo: f32::NEG_INFINITY, hi: f32::INFINITY };

    pub(crate) fn is_none(&self) -> bool {
        self.scale == 1.0
            && matches!(self.bias, Bias::None)
            && self.residual.is_none()
            && self.lo == f32::NEG_INFINITY
            && self.hi == f32::INFINITY
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
        let (residual, residual_ld) = match self.residual {
            None => (std::ptr::null(), 0),
            Some(r) => (r.data[r0 * r.ld + c0..].as_ptr(), r.ld),
        };
        TilePost { row_bias, col_bias, residual, residual_ld, scale: self.scale, lo: self.lo, hi: self.hi }
    }

    /// `v`, the sum for element (r, c) of C, as the micro-kernel stores it.
    #[inline(always)]
    pub fn apply_at(&self, v: f32, r: usize, c: usize) -> f32 {
        let v = v * self.scale + self.bias_at(r, c);
        let v = match self.residual {
            Some(res) => v + res.data[r * res.ld + c],
            None => v,
        };
        self.clamp(v)
    }

    /// `v` as the micro-kernel stores it, given the bias for its row and column, for a post
    /// without a residual (depthwise planes and Winograd tiles take none).
    #[inline(always)]
    pub fn apply(&self, v: f32, bias: f32) -> f32 {
        debug_assert!(self.residual.is_none(), "a residual needs the element's position: apply_at");
        self.clamp(v * self.scale + bias)
    }

    #[inline(always)]
    fn clamp(&self, v: f32) -> f32 {
        let v = if self.lo > v { self.lo } else { v };
        if self.hi < v {
            self.hi
        } else {
            v
        }
    }
}

/// [`Post`] for one micro-tile: bias pointers already at the tile's first row (as many values
/// as the tile has rows) or first column (as many as it has columns), and the residual at
/// the tile's first element (rows `residual_ld` apart); null when absent.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TilePost {
    pub row_bias: *const f32,
    pub col_bias: *const f32,
    pub residual: *const f32,
    pub residual_ld: usize,
    pub scale: f32,
    pub lo: f32,
    pub hi: f32,
}

impl TilePost {
    /// The tile's element (i, j) sum as the micro-kernel stores it.
    pub(crate) unsafe fn apply(&self, sum: f32, i: usize, j: usize) -> f32 {
        let bias = |ptr: *const f32, k: usize| if ptr.is_null() { 0.0 } else { *ptr.add(k) };
        let post = Post { scale: self.scale, bias: Bias::None, residual: None, lo: self.lo, hi: self.hi };
        let v = sum * self.scale + (bias(self.row_bias, i) + bias(self.col_bias, j));
        let v = if self.residual.is_null() { v } else { v + *self.residual.add(i * self.residual_ld + j) };
        post.clamp(v)
    }
}
