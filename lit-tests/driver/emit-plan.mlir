// RUN: %smelt-opt %s --fuse --emit=plan --target h100-sxm | FileCheck %s
// RUN: %smelt-opt %s --fuse --emit=plan --target kpu-t2 | FileCheck %s --check-prefix=KPU
// The launch plan of what the pipeline left: matmul, bias and relu fused into one kernel.
// CHECK: "schema": "smelt.plan/1"
// CHECK: "target": "h100-sxm"
// CHECK: "launches": 1
// CHECK: "role": "input"
// CHECK: "pattern": "linear_relu"
// CHECK: "class": "contraction"
// CHECK: "m": 64
// CHECK: "unit": "gpu"
// CHECK: "grid": [
// KPU: "unit": "kpu"
// KPU: "double_buffered": true
func.func @main(%x: tensor<64x256xf32>, %w: tensor<256x128xf32>, %b: tensor<128xf32>) -> tensor<64x128xf32> {
  %0 = "smelt.matmul"(%x, %w) : (tensor<64x256xf32>, tensor<256x128xf32>) -> tensor<64x128xf32>
  %1 = "smelt.add"(%0, %b) : (tensor<64x128xf32>, tensor<128xf32>) -> tensor<64x128xf32>
  %2 = "smelt.relu"(%1) : (tensor<64x128xf32>) -> tensor<64x128xf32>
  return %2 : tensor<64x128xf32>
}
