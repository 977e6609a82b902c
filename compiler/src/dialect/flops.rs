//! The FLOP rules that need shapes. Each op's rule is part of its table entry
//! ([`super::Flops`]); `smelt ops` prints every op's. The rules are stable (the `smelt report`
//! JSON and tests depend on them) and count as PyTorch's FlopCounterMode does for
//! convolutions and products: 2 per multiply-accumulate, biases and scales not counted.

use super::{OpFlops, OpView};
use crate::ir::ValueId;

fn dims(v: &OpView, value: ValueId) -> Vec<u64> {
    v.module.value_type(value).as_tensor().and_then(|t| t.static_shape()).unwrap_or_default()
}

fn out_elements(v: &OpView) -> u64 {
    let results = v.module.op(v.id).results();
    results.first().and_then(|&r| v.module.value_type(r).as_tensor()?.num_elements()).unwrap_or(0)
}

fn contraction(f: u64) -> OpFlops {
    OpFlops { total: f, conv_matmul: f }
}

pub fn conv2d(v: &OpView) -> OpFlops {
    let w = dims(v, v.operands()[1]);
    let per_output = w.get(1..).map_or(0, |d| d.iter().product::<u64>());
    contraction(2 * out_elements(v) * per_output)
}

pub fn matmul(v: &OpView) -> OpFlops {
    let k = dims(v, v.operands()[0]).last().copied().unwrap_or(0);
    contraction(2 * out_elements(v) * k)
}

pub fn gemm(v: &OpView) -> OpFlops {
    let a = dims(v, v.operands()[0]);
    let k = if v.bool("trans_a") { a.first() } else { a.get(1) }.copied().unwrap_or(0);
    contraction(2 * out_elements(v) * k)
}

/// As the ops it replaces count: two products, the scale, the mask and the softmax.
pub fn attention(v: &OpView) -> OpFlops {
    let (q, k) = (dims(v, v.operands()[0]), dims(v, v.operands()[1]));
    let (d, lk) = (q.last().copied().unwrap_or(0), k.last().copied().unwrap_or(0));
    let dv = dims(v, v.operands()[2]).last().copied().unwrap_or(0);
    let out = out_elements(v);
    let scores = out.checked_div(dv).map_or(0, |s| s * lk);
    let products = 2 * scores * d + 2 * out * lk;
    let mask = if v.operands().len() > 3 { scores } else { 0 };
    OpFlops { total: products + 6 * scores + mask, conv_matmul: products }
}

pub fn pool(v: &OpView) -> OpFlops {
    let window: u64 = v.ints("kernel_shape").unwrap_or_default().iter().map(|&k| k.max(0) as u64).product();
    let extra = u64::from(v.def().name == super::names::AVG_POOL);
    OpFlops { total: out_elements(v) * (window + extra), conv_matmul: 0 }
}

/// A sum per input element and a division per output.
pub fn mean(v: &OpView) -> OpFlops {
    let input = v.module.value_type(v.operands()[0]).as_tensor().and_then(|t| t.num_elements()).unwrap_or(0);
    OpFlops { total: input + out_elements(v), conv_matmul: 0 }
}

/// The sum of squares over `size` channels, then scale, bias, power and divide.
pub fn lrn(v: &OpView) -> OpFlops {
    OpFlops { total: out_elements(v) * (2 * v.int("size").max(0) as u64 + 4), conv_matmul: 0 }
}

/// Every input element is multiplied by the whole kernel of its group.
pub fn conv_transpose(v: &OpView) -> OpFlops {
    let inputs = v.module.value_type(v.operands()[0]).as_tensor().and_then(|t| t.num_elements()).unwrap_or(0);
    let w = dims(v, v.operands()[1]);
    let per_input = w.get(1..).map_or(0, |d| d.iter().product::<u64>());
    contraction(2 * inputs * per_input)
}
