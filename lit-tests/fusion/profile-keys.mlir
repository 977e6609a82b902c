// RUN: not %smelt-opt %s --pass-pipeline='builtin.module(fuse)' --cost-profile=%S/Inputs/h100-labelled.json 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not %smelt-opt %s --pass-pipeline='builtin.module(fuse)' --cost-profile=%S/Inputs/other-cpu.json 2>&1 | FileCheck %s --check-prefix=CPU
// RUN: %smelt-opt %s --pass-pipeline='builtin.module(fuse{target=h100-sxm})' --cost-profile=%S/Inputs/h100-labelled.json | FileCheck %s --check-prefix=H100
// A profile prices only the machine it was measured on: one labelled for another target, or
// measured on another CPU model for `host`, is refused by name instead of silently applied.

// TARGET: error: {{.*}}h100-labelled.json: measured for target 'h100-sxm'; it cannot price target 'host'
// CPU: error: {{.*}}other-cpu.json: measured on a 'A CPU this machine is not (TM)', not this machine's
// H100-NOT: smelt.attention
// H100: "smelt.softmax"
func.func @attention(%q: tensor<1x12x128x64xf32>, %kt: tensor<1x12x64x128xf32>, %v: tensor<1x12x128x64xf32>, %mask: tensor<1x1x128x128xf32>) -> tensor<1x12x128x64xf32> {
  %s = "smelt.constant"() {value = dense<0.125> : tensor<f32>} : () -> tensor<f32>
  %0 = "smelt.matmul"(%q, %kt) : (tensor<1x12x128x64xf32>, tensor<1x12x64x128xf32>) -> tensor<1x12x128x128xf32>
  %1 = "smelt.mul"(%0, %s) : (tensor<1x12x128x128xf32>, tensor<f32>) -> tensor<1x12x128x128xf32>
  %2 = "smelt.add"(%1, %mask) : (tensor<1x12x128x128xf32>, tensor<1x1x128x128xf32>) -> tensor<1x12x128x128xf32>
  %3 = "smelt.softmax"(%2) {axis = 3 : i64} : (tensor<1x12x128x128xf32>) -> tensor<1x12x128x128xf32>
  %4 = "smelt.matmul"(%3, %v) : (tensor<1x12x128x128xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x64xf32>
  return %4 : tensor<1x12x128x64xf32>
}
