// RUN: not %smelt-opt %S/Inputs/two-producers.onnx 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not %smelt-opt %S/Inputs/writes-its-input.onnx 2>&1 | FileCheck %s --check-prefix=INPUT
// RUN: not %smelt-opt %S/Inputs/kernel-shape.onnx 2>&1 | FileCheck %s --check-prefix=KERNEL
// RUN: not %smelt-opt %S/Inputs/negative-shape.onnx 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// RUN: not %smelt-opt %models/mobilenet_v2.onnx --shape nosuch=1x2 2>&1 | FileCheck %s --check-prefix=PIN
// Files ONNX Runtime refuses are refused here too, naming the node and the reason
// (Inputs/make_strict.py writes them).

// TWICE: two-producers.onnx:2:1: error: 'Neg' node 'second': output 'y' is already defined
// INPUT: writes-its-input.onnx:1:1: error: 'Relu' node 'relu': output 'x' is already defined
// KERNEL: error: 'Conv' node 'conv': kernel_shape [5, 5] contradicts the weights' window [3, 3]
// NEGATIVE: error: 'ConstantOfShape' node 'fill': shape [-1, 3] has a negative extent
// PIN: mobilenet_v2.onnx: error: --shape names 'nosuch', which is not an input (inputs: input)

// RUN: %smelt-opt %S/Inputs/two-producers.onnx --lenient | FileCheck %s --check-prefix=LAST
// RUN: %smelt-opt %S/Inputs/kernel-shape.onnx --lenient | FileCheck %s --check-prefix=WEIGHTS
// With --lenient the meaning is the one ONNX Runtime would give it were it lenient: the last
// producer wins, the weights' window wins.
// LAST: "smelt.neg"
// LAST: return
// WEIGHTS: -> tensor<1x1x6x6xf32>
