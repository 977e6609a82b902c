//! Any bytes: the parser returns a module or a diagnostic, never panics; whatever parses and
//! verifies prints to text that parses back to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smelt_compiler::parser::parse_module;
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(module) = parse_module(text, "fuzz.mlir") else { return };
    if verify(&module).is_err() {
        return;
    }
    let printed = print_module(&module, PrintOptions { debug_info: true });
    let reparsed = parse_module(&printed, "printed.mlir").expect("printed IR parses");
    assert_eq!(print_module(&reparsed, PrintOptions { debug_info: true }), printed);
});
