// RUN: %smelt run %onnx-tests/node/test_relu/model.onnx --input %onnx-tests/node/test_relu/test_data_set_0/input_0.pb --output %t.pb | FileCheck %s
// RUN: %smelt run %onnx-tests/node/test_relu/model.onnx --input %t.pb --json | FileCheck %s --check-prefix=JSON
// RUN: not %smelt run %onnx-tests/node/test_relu/model.onnx --input %t.missing.pb 2>&1 | FileCheck %s --check-prefix=MISSING
// The reference interpreter runs a model on TensorProto inputs and writes its output back as one.

// CHECK: reference: {{[0-9.]+}} ms
// CHECK: output 0: [3,4,5] "f32" mean
// JSON: "mode": "reference"
// JSON: "shape": [
// MISSING: error: {{.*}}missing.pb: cannot read
