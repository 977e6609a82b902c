// RUN: not %smelt-opt %models/vit_b_16.graph-only.onnx 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: %smelt-opt %models/vit_b_16.graph-only.onnx --weights=random | FileCheck %s --check-prefix=RANDOM
// RUN: not %smelt-opt %models/resnet18.onnx --shape input=1x3x32x32 2>&1 | FileCheck %s --check-prefix=SHAPE
// RUN: not %smelt-opt %S/Inputs/unique.onnx 2>&1 | FileCheck %s --check-prefix=NOSUPPORT
// RUN: not %smelt-opt %models/resnet18.weights 2>&1 | FileCheck %s --check-prefix=NOTMLIR
// RUN: head -c 3000 %models/mobilenet_v2.onnx > %t.onnx
// RUN: not %smelt-opt %t.onnx 2>&1 | FileCheck %s --check-prefix=TRUNCATED

// MISSING: vit_b_16.graph-only.onnx: error: cannot read external weights file '{{.*}}vit_b_16.dynamo.weights' (initializer '{{.*}}'): {{.*}}; pass --weights=random to use random weights
// RANDOM: func.func @main(%arg0: tensor<1x3x224x224xf32>) -> tensor<1x1000xf32>
// SHAPE: resnet18.onnx: error: --shape input=1x3x32x32 contradicts the model's tensor<1x3x224x224xf32>
// NOSUPPORT: unique.onnx: error: 1 node(s) use 1 operator(s) Smelt does not support: Unique
// NOSUPPORT: note: unsupported operator 'Unique' in node(s)
// NOTMLIR: resnet18.weights: error: not UTF-8 text
// TRUNCATED: error: not a valid ONNX model
