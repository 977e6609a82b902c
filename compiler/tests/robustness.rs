//! Malformed input never panics: every prefix of every lit test, and random mutations of them,
//! either parse (then verify and print without panicking) or give a located diagnostic.
//! `fuzz/` explores the same property with coverage guidance; crashing inputs it finds go to
//! `fuzz/regressions/`, which this test replays.

use proptest::prelude::*;
use smelt_compiler::parser::parse_module;
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;
use std::path::{Path, PathBuf};

fn files(dir: &Path, ext: Option<&str>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)) {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lit-tests");
    files(&root, Some("mlir")).iter().map(|f| std::fs::read_to_string(f).unwrap()).collect()
}

/// Exercises everything downstream of parsing that input can reach.
fn exercise(text: &str) {
    match parse_module(text, "input.mlir") {
        Ok(m) => {
            if verify(&m).is_ok() {
                let printed = print_module(&m, PrintOptions { debug_info: true });
                let again = parse_module(&printed, "printed.mlir").expect("printed IR parses");
                assert_eq!(print_module(&again, PrintOptions { debug_info: true }), printed);
            }
        }
        Err(d) => assert!(d.loc.file_position().is_some(), "parse errors are located: {d}"),
    }
}

#[test]
fn every_prefix_of_every_lit_test_is_handled() {
    for text in corpus() {
        for (i, _) in text.char_indices().step_by(3) {
            exercise(&text[..i]);
        }
    }
}

#[test]
fn fuzzer_regressions_are_handled() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    for f in files(&dir, None) {
        let bytes = std::fs::read(&f).unwrap();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            exercise(text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_lit_tests_are_handled(file in any::<prop::sample::Index>(), edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![
        "", "}", "{", "(", ")", "%0", "%arg0", "\"", "tensor<", "x", "?", "*", ":", "->", "=", ",", "[", "]", "<", ">",
        "dense<", "array<i64: ", "loc(", "^bb0", "-1", "99999999999999999999", "0x", "1.0e", "smelt.kernel", "// -----",
    ])), 1..6)) {
        let corpus = corpus();
        let mut text = corpus[file.index(corpus.len())].clone();
        for (at, insert) in edits {
            let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            let i = boundaries.get(at.index(boundaries.len().max(1))).copied().unwrap_or(0);
            // Replace one character (or insert at the end).
            let end = text[i..].chars().next().map_or(i, |c| i + c.len_utf8());
            text.replace_range(i..end, insert);
        }
        exercise(&text);
    }
}
