//! print(parse(x)) == x for everything the printer emits, and every registered op is covered.

mod common;

use smelt_compiler::parser::parse_module;
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;

fn assert_fixed_point(options: PrintOptions) {
    let chunks = common::printed_lit_chunks(options);
    assert!(chunks.len() >= 30, "expected the lit suite to provide many chunks, got {}", chunks.len());
    for (file, printed) in chunks {
        let reparsed = parse_module(&printed, "printed.mlir")
            .unwrap_or_else(|e| panic!("{}: printed IR does not parse:\n{e}\n{printed}", file.display()));
        verify(&reparsed).unwrap_or_else(|e| panic!("{}: printed IR does not verify: {e:?}", file.display()));
        reparsed.check_invariants().unwrap();
        assert_eq!(print_module(&reparsed, options), printed, "{}: printing is not a fixed point", file.display());
    }
}

#[test]
fn printed_ir_is_a_fixed_point() {
    assert_fixed_point(PrintOptions::default());
}

#[test]
fn printed_ir_with_locations_is_a_fixed_point() {
    assert_fixed_point(PrintOptions { debug_info: true });
}

#[test]
fn every_registered_op_has_a_roundtrip_test() {
    let ir_tests: String = common::lit_files()
        .into_iter()
        .filter(|f| f.parent().unwrap().ends_with("ir"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let missing: Vec<&str> = smelt_compiler::dialect::all_ops()
        .map(|d| d.name)
        .filter(|name| name.starts_with("smelt.") && !ir_tests.contains(&format!("\"{name}\"")))
        .collect();
    assert!(missing.is_empty(), "ops without a round-trip lit test in lit-tests/ir: {missing:?}");
}
