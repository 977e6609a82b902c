//! With the `mlir` feature: MLIR itself, linked in through melior, loads the `smelt` dialect from
//! the IRDL generated out of the op registry and verifies the printed IR of every lit test.
#![cfg(feature = "mlir")]

mod common;

use melior::dialect::DialectRegistry;
use melior::ir::operation::OperationLike;
use melior::ir::Module;
use melior::utility::{load_irdl_dialects, register_all_dialects};
use melior::Context;
use smelt_compiler::printer::PrintOptions;

fn context() -> Context {
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    let context = Context::new();
    context.append_dialect_registry(&registry);
    context.load_all_available_dialects();
    context
}

fn verify_all(context: &Context, chunks: &[(std::path::PathBuf, String)]) {
    for (file, text) in chunks {
        let module = Module::parse(context, text)
            .unwrap_or_else(|| panic!("{}: MLIR cannot parse the printed IR:\n{text}", file.display()));
        assert!(module.as_operation().verify(), "{}: MLIR rejects the printed IR:\n{text}", file.display());
    }
}

#[test]
fn mlir_verifies_every_printed_lit_test_generically() {
    let context = context();
    context.set_allow_unregistered_dialects(true);
    let chunks = common::printed_lit_chunks(PrintOptions { debug_info: true });
    verify_all(&context, &chunks);
}

#[test]
fn mlir_verifies_printed_lit_tests_against_the_irdl_dialect() {
    let context = context();
    let irdl = Module::parse(&context, &smelt_compiler::irdl::generate()).expect("generated IRDL parses");
    assert!(load_irdl_dialects(&irdl), "MLIR rejects the generated IRDL");
    let inexpressible: Vec<&str> = smelt_compiler::dialect::all_ops()
        .filter(|d| d.dialect() == "smelt" && !smelt_compiler::irdl::expressible(d))
        .map(|d| d.name)
        .collect();
    let all = common::printed_lit_chunks(PrintOptions { debug_info: true });
    let total = all.len();
    let chunks: Vec<_> = all
        .into_iter()
        .filter(|(_, text)| !inexpressible.iter().any(|op| text.contains(&format!("\"{op}\""))))
        .collect();
    assert!(chunks.len() * 2 > total, "too few IRDL-checkable chunks: {} of {total}", chunks.len());
    verify_all(&context, &chunks);
}

#[test]
fn mlir_rejects_ir_that_breaks_the_dialect() {
    // The check can fail: an op with the wrong operand count is refused by MLIR too.
    let context = context();
    let irdl = Module::parse(&context, &smelt_compiler::irdl::generate()).unwrap();
    assert!(load_irdl_dialects(&irdl));
    let bad = "func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n  %0 = \"smelt.relu\"(%x, %x) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>\n  return %0 : tensor<4xf32>\n}\n";
    let verified = Module::parse(&context, bad).is_some_and(|m| m.as_operation().verify());
    assert!(!verified, "MLIR accepted a relu with two operands");
}
