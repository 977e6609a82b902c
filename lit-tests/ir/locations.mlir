// RUN: %smelt-opt %s --mlir-print-debuginfo | FileCheck %s
// RUN: %smelt-opt %s --mlir-print-debuginfo | %smelt-opt --mlir-print-debuginfo | FileCheck %s
// Explicit locations are kept; ops without one get their position in the input file.

// CHECK-LABEL: func.func @locs
func.func @locs(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: "smelt.relu"(%arg0) : (tensor<4xf32>) -> tensor<4xf32> loc("conv1"("model.onnx":3:0))
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32> loc("conv1"("model.onnx":3:0))
  // CHECK: "smelt.sigmoid"(%0) : (tensor<4xf32>) -> tensor<4xf32> loc(fused["a", "b"])
  %1 = "smelt.sigmoid"(%0) : (tensor<4xf32>) -> tensor<4xf32> loc(fused["a", "b"])
  // CHECK: "smelt.tanh"(%1) : (tensor<4xf32>) -> tensor<4xf32> loc("{{.*}}locations.mlir":12:8)
  %2 = "smelt.tanh"(%1) : (tensor<4xf32>) -> tensor<4xf32>
  return %2 : tensor<4xf32> loc(unknown)
}
