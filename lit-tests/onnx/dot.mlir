// RUN: %smelt-opt %models/resnet18.onnx --emit=dot > %t.dot
// RUN: FileCheck %s < %t.dot
// RUN: dot -Tsvg %t.dot -o %t.svg
// RUN: FileCheck %s --check-prefix=SVG < %t.svg
// RUN: %smelt-opt %S/../ir/roundtrip-kernel.mlir --emit=dot | FileCheck %s --check-prefix=KERNEL
// The op graph as Graphviz; rendered by graphviz's dot to check it is valid.

// CHECK: digraph smelt {
// CHECK: input0 [label="input 0", shape=ellipse];
// CHECK: [label="conv2d\n+2 const", shape=box];
// CHECK: input0 -> op0 [label="tensor<1x3x224x224xf32>"];
// SVG: <svg
// KERNEL: subgraph cluster_0 {
// KERNEL-NEXT: label="conv_relu"; style=rounded; color=blue;
