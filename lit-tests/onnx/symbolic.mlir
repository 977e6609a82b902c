// A symbolic batch keeps its name from the file (onnx-mlir's dim_params form), for callers
// that show input shapes as ONNX Runtime does; pinning the input with --shape drops it.
// RUN: %smelt-opt %S/../../tests/models/symbolic_batch_cnn/model.onnx | FileCheck %s
// RUN: %smelt-opt %S/../../tests/models/symbolic_batch_cnn/model.onnx --shape x=2x3x16x16 | FileCheck %s --check-prefix=PINNED

// CHECK: func.func @main(%arg0: tensor<?x3x16x16xf32>) -> tensor<?x10xf32> attributes {input_dim_params = ["0:N"], input_names = ["x"], output_dim_params = ["0:N"], output_names = ["y"]}

// PINNED: func.func @main(%arg0: tensor<2x3x16x16xf32>) -> tensor<2x10xf32> attributes {input_names = ["x"], output_dim_params = ["0:N"], output_names = ["y"]}
