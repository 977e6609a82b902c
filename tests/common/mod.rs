//! Helpers shared by the integration tests.
#![allow(dead_code)]

use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;
use std::path::{Path, PathBuf};

/// Every `.mlir` file under `lit-tests/`, sorted.
pub fn lit_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "mlir") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("lit-tests"), &mut files);
    files.sort();
    files
}

/// The printed form of every chunk of every lit file that parses and verifies (negative
/// tests' bad chunks are skipped), as (file, printed) pairs.
pub fn printed_lit_chunks(options: PrintOptions) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for file in lit_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for chunk in smelt::driver::split_input(&text) {
            let Ok(module) = smelt_compiler::parser::parse_module(&chunk, "chunk.mlir") else { continue };
            if verify(&module).is_err() {
                continue;
            }
            out.push((file.clone(), print_module(&module, options)));
        }
    }
    out
}

/// The shared model files (`../shared/models`).
pub fn models() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/models"))
}

/// A shared model imported (graph-only files with seeded random weights) and cleaned up.
pub fn cleaned(file: &str) -> smelt_compiler::Module {
    use smelt_compiler::onnx::{import_file, ImportOptions, Weights};
    let weights = if file.contains("graph-only") { Weights::Random { seed: 7 } } else { Weights::FromFiles };
    let mut m = import_file(&models().join(file), &ImportOptions { weights, ..Default::default() }).unwrap();
    smelt_passes::run_pipeline(&mut m, smelt_passes::CLEANUP_PIPELINE).unwrap();
    m
}
