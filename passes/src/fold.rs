//! `fold`: constant folding only — every op's fold hook to a fixed point, and erasure of what
//! becomes dead. A subset of `canonicalize`, for pipelines that want no other rewrites.

pub use crate::canonicalize::Canonicalize;

/// The `fold` pass: canonicalization restricted to fold hooks.
pub fn fold_pass() -> Canonicalize {
    Canonicalize { fold_only: true, ..Canonicalize::default() }
}
