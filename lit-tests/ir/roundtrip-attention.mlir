// RUN: %smelt-opt %s | %smelt-opt | FileCheck %s

// CHECK-LABEL: func.func @attention
func.func @attention(%q: tensor<1x12x128x64xf32>, %kt: tensor<1x12x64x128xf32>, %v: tensor<1x12x128x64xf32>,
                     %mask: tensor<1x1x128x128xf32>) -> (tensor<1x12x128x64xf32>, tensor<1x12x128x64xf32>) {
  // CHECK: "smelt.attention"(%arg0, %arg1, %arg2, %arg3) {scale = 0.125 : f32} : (tensor<1x12x128x64xf32>, tensor<1x12x64x128xf32>, tensor<1x12x128x64xf32>, tensor<1x1x128x128xf32>) -> tensor<1x12x128x64xf32>
  %0 = "smelt.attention"(%q, %kt, %v, %mask) {scale = 0.125 : f32} : (tensor<1x12x128x64xf32>, tensor<1x12x64x128xf32>, tensor<1x12x128x64xf32>, tensor<1x1x128x128xf32>) -> tensor<1x12x128x64xf32>
  // CHECK: "smelt.attention"(%arg0, %arg1, %arg2) : (tensor<1x12x128x64xf32>, tensor<1x12x64x128xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x64xf32>
  %1 = "smelt.attention"(%q, %kt, %v) : (tensor<1x12x128x64xf32>, tensor<1x12x64x128xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x64xf32>
  return %0, %1 : tensor<1x12x128x64xf32>, tensor<1x12x128x64xf32>
}
