// RUN: %smelt run %onnx-tests/node/test_relu/model.onnx --mode reference --input %onnx-tests/node/test_relu/test_data_set_0/input_0.pb --output %t.pb | FileCheck %s
// RUN: %smelt run %onnx-tests/node/test_relu/model.onnx --mode reference --input %t.pb --json | FileCheck %s --check-prefix=JSON
// RUN: %smelt run %onnx-tests/node/test_relu/model.onnx --mode both --iters 2 --input %onnx-tests/node/test_relu/test_data_set_0/input_0.pb --json | FileCheck %s --check-prefix=BOTH
// RUN: %smelt run %onnx-tests/node/test_relu/model.onnx --mode fused --iters 1 --json | FileCheck %s --check-prefix=FUSED
// RUN: not %smelt run %onnx-tests/node/test_relu/model.onnx --input %t.missing.pb 2>&1 | FileCheck %s --check-prefix=MISSING
// The reference interpreter and the JIT executor run a model on TensorProto (or seeded random)
// inputs and write the first output back as one; `both` compares fused with unfused.

// CHECK: reference: {{[0-9.]+}} ms
// CHECK: output 0: [3,4,5] "f32" mean
// JSON: "mode": "reference"
// JSON: "shape": [
// BOTH-DAG: "fused_ms":
// BOTH-DAG: "unfused_ms":
// BOTH-DAG: "speedup":
// BOTH-DAG: "peak_bytes_fused":
// BOTH-DAG: "peak_bytes_unfused":
// BOTH-DAG: "max_abs_err": 0.0
// FUSED-NOT: unfused_ms
// FUSED: "fused_ms":
// FUSED-NOT: unfused_ms
// MISSING: error: {{.*}}missing.pb: cannot read
