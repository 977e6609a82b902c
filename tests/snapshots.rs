//! Snapshot tests (insta) of pass output on the bundled example and on fixtures: a change in
//! what a pass produces shows up as a reviewed diff (`cargo insta review`).

use smelt_compiler::parser::parse_module;
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_passes::registry::create;

fn run(pipeline: &str, text: &str) -> String {
    let mut module = parse_module(text, "input.mlir").unwrap();
    smelt_passes::run_pipeline(&mut module, pipeline).unwrap();
    print_module(&module, PrintOptions::default())
}

const EXAMPLE: &str = include_str!("../examples/resnet-stem.mlir");

#[test]
fn resnet_stem_default_pipeline() {
    insta::assert_snapshot!(run("canonicalize,cse", EXAMPLE));
}

#[test]
fn resnet_stem_shape_inference_only() {
    insta::assert_snapshot!(run("shape-inference", EXAMPLE));
}

#[test]
fn resnet_stem_with_locations() {
    let mut module = parse_module(EXAMPLE, "examples/resnet-stem.mlir").unwrap();
    create("canonicalize", &Default::default()).unwrap().run(&mut module).unwrap();
    insta::assert_snapshot!(print_module(&module, PrintOptions { debug_info: true }));
}
