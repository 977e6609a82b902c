//! Splitting an anchor's epilogue into the head the GEMM micro-kernel applies in registers
//! ([`crate::gemm::Post`]: a scale, a bias, then a clamp) and the rest, which stays a JIT
//! program.
//!
//! A conv + bias + ReLU6 whose epilogue ran as a JIT pass over C spent a fifth of MobileNet-V2's
//! time there: the pass reads and writes every output once more, on 128-bit vectors. In the
//! micro-kernel the same work is three instructions per register before the store.

use crate::jit::Ew;

/// Where the head's bias comes from: an input of the program (never input 0, the
/// accumulator), broadcast along C's columns (one value per row) or along its rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct BiasInput {
    pub input: usize,
    pub per_row: bool,
}

/// The register-applied head of an epilogue: `min(max(acc * scale + bias + residual, lo),
/// hi)`; the residual is an input of the output's layout (unit column stride).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Head {
    pub scale: f32,
    pub bias: Option<BiasInput>,
    pub residual: Option<usize>,
    pub lo: f32,
    pub hi: f32,
}

/// Splits `ops` (result `result`, input `i` read with 2-D strides `strides[i]`; input 0 is the
/// accumulator) into a [`Head`] and the program left to run after it, reading the head's
/// output as its input 0. `None` when nothing can be peeled. The remaining program has the
/// same inputs; ops the head took become dead constants. It is `None` when the head is the
/// whole epilogue.
pub(super) fn split(ops: &[Ew], result: u32, strides: &[(i64, i64)]) -> Option<(Head, Option<Vec<Ew>>)> {
    let mut uses = vec![0usize; ops.len()];
    for op in ops {
        for x in op.operands() {
            uses[x as usize] += 1;
        }
    }
    uses[result as usize] += 1;
    let constant = |i: u32| match ops[i as usize] {
        Ew::Const(k) if !k.is_nan() => Some(k),
        _ => None,
    };
    let start = ops.iter().position(|op| *op == Ew::Input(0))? as u32;
    let mut head = Head { scale: 1.0, bias: None, residual: None, lo: f32::NEG_INFINITY, hi: f32::INFINITY };
    let (mut cur, mut taken) = (start, Vec::new());
    let mut clamped = false;
    while uses[cur as usize] == 1 && cur != result {
        let Some(user) = ops.iter().position(|op| op.operands().contains(&cur)) else { break };
        let other = |x: u32, y: u32| if x == cur { y } else { x };
        match ops[user] {
            // A scale comes first: (acc + b) * k is not acc * k + b.
            Ew::Mul(x, y) if x != y && head.scale == 1.0 && head.bias.is_none() && !clamped => {
                let Some(k) = constant(other(x, y)) else { break };
                head.scale = k;
            }
            // A bias, then a residual (in that order: each add rounds).
            Ew::Add(x, y) if x != y && head.residual.is_none() && !clamped => {
                let b = other(x, y);
                let Ew::Input(i) = ops[b as usize] else { break };
                let i = i as usize;
                match strides[i] {
                    (1, 0) if head.bias.is_none() => head.bias = Some(BiasInput { input: i, per_row: true }),
                    (0, 1) if head.bias.is_none() => head.bias = Some(BiasInput { input: i, per_row: false }),
                    (rs, 1) if rs > 0 => head.residual = Some(i),
                    _ => break,
                }
                if uses[b as usize] == 1 {
                    taken.push(b);
                }
            }
            Ew::Max(x, y) if x != y && head.lo == f32::NEG_INFINITY => {
                let Some(lo) = constant(other(x, y)) else { break };
                // max after min equals min after max only when the bounds are ordered.
                if lo > head.hi {
                    break;
                }
                head.lo = lo;
                clamped = true;
            }
            Ew::Min(x, y) if x != y && head.hi == f32::INFINITY => {
                let Some(hi) = constant(other(x, y)) else { break };
                if hi < head.lo {
                    break;
                }
                head.hi = hi;
                clamped = true;
            }
            _ => break,
        }
        taken.push(cur);
        cur = user as u32;
    }
    if cur == start {
        return None;
    }
    if cur == result {
        return Some((head, None));
    }
    let mut rest = ops.to_vec();
    for i in taken {
        rest[i as usize] = Ew::Const(0.0);
    }
    rest[cur as usize] = Ew::Input(0);
    Some((head, Some(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: (i64, i64) = (1, 0);
    const COL: (i64, i64) = (0, 1);
    const DENSE: (i64, i64) = (64, 1);

    #[test]
    fn bias_and_relu6_are_the_whole_epilogue() {
        // acc + bias[row], max 0, min 6
        let ops =
            [Ew::Input(0), Ew::Input(1), Ew::Add(0, 1), Ew::Const(0.0), Ew::Max(2, 3), Ew::Const(6.0), Ew::Min(4, 5)];
        let (head, rest) = split(&ops, 6, &[DENSE, ROW]).unwrap();
        let bias = Some(BiasInput { input: 1, per_row: true });
        assert_eq!(head, Head { scale: 1.0, bias, residual: None, lo: 0.0, hi: 6.0 });
        assert!(rest.is_none());
    }

    #[test]
    fn a_residual_add_after_the_bias_joins_the_head() {
        // relu(acc + bias[col] + residual): bias, residual and ReLU are all the head.
        let ops =
            [Ew::Input(0), Ew::Input(1), Ew::Add(1, 0), Ew::Input(2), Ew::Add(2, 3), Ew::Const(0.0), Ew::Max(4, 5)];
        let (head, rest) = split(&ops, 6, &[DENSE, COL, DENSE]).unwrap();
        let bias = Some(BiasInput { input: 1, per_row: false });
        assert_eq!(head, Head { scale: 1.0, bias, residual: Some(2), lo: 0.0, hi: f32::INFINITY });
        assert!(rest.is_none());
        // A residual then a bias: the bias would round after it, so it stays in the program.
        let ops =
            [Ew::Input(0), Ew::Input(1), Ew::Add(0, 1), Ew::Input(2), Ew::Add(2, 3), Ew::Const(0.0), Ew::Max(4, 5)];
        let (head, rest) = split(&ops, 6, &[DENSE, DENSE, COL]).unwrap();
        assert_eq!((head.bias, head.residual), (None, Some(1)));
        let rest = rest.unwrap();
        assert_eq!(rest[2], Ew::Input(0));
        assert_eq!(&rest[3..], &ops[3..]);
    }

    #[test]
    fn what_is_not_a_bias_or_a_bound_is_left_alone() {
        // An addend strided along C's rows is neither a bias nor a residual; a bound read from
        // memory is no constant; a value used twice cannot be rewritten in place; a program of
        // one input has nothing to peel.
        let strided = [Ew::Input(0), Ew::Input(1), Ew::Add(0, 1)];
        assert_eq!(split(&strided, 2, &[DENSE, (16, 2)]), None);
        let loaded = [Ew::Input(0), Ew::Input(1), Ew::Max(0, 1)];
        assert_eq!(split(&loaded, 2, &[DENSE, (0, 0)]), None);
        let twice = [Ew::Input(0), Ew::Input(1), Ew::Add(0, 1), Ew::Mul(2, 2)];
        assert_eq!(split(&twice, 3, &[DENSE, ROW]).map(|(h, _)| h.bias.is_some()), Some(true));
        let shared = [Ew::Input(0), Ew::Const(0.0), Ew::Max(0, 1), Ew::Mul(0, 2)];
        assert_eq!(split(&shared, 3, &[DENSE]), None);
        assert_eq!(split(&[Ew::Input(0)], 0, &[DENSE]), None);
    }

    #[test]
    fn a_scale_is_peeled_only_before_the_bias() {
        // acc * 0.125 + bias[col]: scale and bias both in registers.
        let scaled = [Ew::Input(0), Ew::Const(0.125), Ew::Mul(0, 1), Ew::Input(1), Ew::Add(2, 3)];
        let (head, rest) = split(&scaled, 4, &[DENSE, COL]).unwrap();
        assert_eq!((head.scale, head.bias.map(|b| b.per_row), rest), (0.125, Some(false), None));
        // (acc + bias[col]) * 0.125: the bias is peeled, the multiply stays in the program.
        let late = [Ew::Input(0), Ew::Input(1), Ew::Add(0, 1), Ew::Const(0.125), Ew::Mul(2, 3)];
        let (head, rest) = split(&late, 4, &[DENSE, COL]).unwrap();
        assert_eq!(head.scale, 1.0);
        assert_eq!(rest.unwrap()[2], Ew::Input(0));
        // A scale read from memory is not a constant.
        let loaded = [Ew::Input(0), Ew::Input(1), Ew::Mul(0, 1)];
        assert_eq!(split(&loaded, 2, &[DENSE, (0, 0)]), None);
    }

    #[test]
    fn bounds_in_either_order_clamp_only_when_ordered() {
        let min_then_max = [Ew::Input(0), Ew::Const(6.0), Ew::Min(0, 1), Ew::Const(0.0), Ew::Max(2, 3)];
        let (head, rest) = split(&min_then_max, 4, &[DENSE]).unwrap();
        assert_eq!((head.lo, head.hi, rest), (0.0, 6.0, None));
        // clip(x, 6, 0) is 0 everywhere as min(max(x, 6), 0), but max(min(x, 0), 6) = 6: stop.
        let crossed = [Ew::Input(0), Ew::Const(6.0), Ew::Max(0, 1), Ew::Const(0.0), Ew::Min(2, 3)];
        let (head, rest) = split(&crossed, 4, &[DENSE]).unwrap();
        assert_eq!((head.lo, head.hi), (6.0, f32::INFINITY));
        assert_eq!(rest.unwrap()[2], Ew::Input(0));
    }
}
