//! The pass registry: every pass by name, with its options and a constructor.

use crate::options::{Options, PassOption};
use crate::Pass;

pub struct PassInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub options: &'static [PassOption],
    pub create: fn(&Options) -> Result<Box<dyn Pass>, String>,
}

const CANONICALIZE_OPTIONS: &[PassOption] =
    &[PassOption { name: "max-iterations", help: "rounds of the worklist driver before giving up", default: "10" }];

pub static PASSES: &[PassInfo] = &[
    PassInfo {
        name: "canonicalize",
        summary: "fold constants, erase dead ops and apply canonicalization patterns to a fixed point",
        options: CANONICALIZE_OPTIONS,
        create: |o| {
            Ok(Box::new(crate::canonicalize::Canonicalize {
                max_iterations: o.get(CANONICALIZE_OPTIONS, "max-iterations")?,
                fold_only: false,
            }))
        },
    },
    PassInfo {
        name: "fold",
        summary: "apply op fold hooks (constant folding) to a fixed point",
        options: CANONICALIZE_OPTIONS,
        create: |o| {
            let mut p = crate::fold::fold_pass();
            p.max_iterations = o.get(CANONICALIZE_OPTIONS, "max-iterations")?;
            Ok(Box::new(p))
        },
    },
    PassInfo {
        name: "cse",
        summary: "eliminate common subexpressions",
        options: &[],
        create: |_| Ok(Box::new(crate::cse::CommonSubexpressionElimination)),
    },
    PassInfo {
        name: "dce",
        summary: "erase pure operations whose results are unused",
        options: &[],
        create: |_| Ok(Box::new(crate::dce::DeadCodeElimination)),
    },
    PassInfo {
        name: "characterize",
        summary: "annotate every op with its FLOPs and bytes (smelt.flops, smelt.bytes)",
        options: &[],
        create: |_| Ok(Box::new(crate::characterize::Characterize)),
    },
    PassInfo {
        name: "fuse",
        summary: "choose kernels by equality saturation under a (calibrated) cost model; emit smelt.kernel",
        options: crate::fuse::OPTIONS,
        create: |o| Ok(Box::new(crate::fuse::Fuse::from_options(o)?)),
    },
    PassInfo {
        name: "widen-half",
        summary: "compute f16 and bf16 values in f32; the signature keeps its types, cast where values enter and leave",
        options: &[],
        create: |_| Ok(Box::new(crate::widen_half::WidenHalf)),
    },
    PassInfo {
        name: "integer-products",
        summary: "QDQ convolutions and matmuls (8-bit activations, int8 weights) become smelt.quantized_conv2d and smelt.quantized_matmul, run with integer products",
        options: &[],
        create: |_| Ok(Box::new(crate::integer_products::IntegerProducts)),
    },
    PassInfo {
        name: "shape-inference",
        summary: "refine every result type to what its operands imply",
        options: &[],
        create: |_| Ok(Box::new(crate::shape_inference::ShapeInference)),
    },
];

pub fn lookup(name: &str) -> Option<&'static PassInfo> {
    PASSES.iter().find(|p| p.name == name)
}

/// Creates a pass by name with options, checking that every option is declared.
pub fn create(name: &str, options: &Options) -> Result<Box<dyn Pass>, String> {
    let info = lookup(name).ok_or_else(|| {
        let known: Vec<_> = PASSES.iter().map(|p| p.name).collect();
        format!("unknown pass '{name}' (known passes: {})", known.join(", "))
    })?;
    for key in options.0.keys() {
        if !info.options.iter().any(|o| o.name == key) {
            return Err(format!("pass '{name}' has no option '{key}'"));
        }
    }
    (info.create)(options)
}
