// RUN: %smelt-opt %s --pass-pipeline='builtin.module(fuse)' | FileCheck %s --check-prefix=ROOF
// RUN: %smelt-opt %s --pass-pipeline='builtin.module(fuse)' --cost-profile=%S/Inputs/attention-slower.json | FileCheck %s --check-prefix=SLOW
// RUN: %smelt-opt %s --pass-pipeline='builtin.module(fuse{cost-profile=%S/Inputs/attention-slower.json})' | FileCheck %s --check-prefix=SLOW
// RUN: %smelt-opt %s --pass-pipeline='builtin.module(fuse)' --cost-profile=%S/Inputs/attention-slower.json 2>&1 >/dev/null | FileCheck %s --check-prefix=NOTE
// RUN: not %smelt-opt %s --pass-pipeline='builtin.module(fuse)' --cost-profile=%S/Inputs/missing.json 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not %smelt-opt %s --pass-pipeline='builtin.module(fuse)' --cost-profile=%s 2>&1 | FileCheck %s --check-prefix=CORRUPT
// The decision follows the measurements: the roofline fuses attention into one op; a profile in
// which fused attention measured slower than its parts (as the seeds found on a CPU) keeps it
// unfused.

// ROOF: "smelt.attention"
// ROOF-NOT: smelt.softmax
// SLOW-NOT: smelt.attention
// SLOW: "smelt.softmax"
// Patterns the profile has no numbers for fall back to the roofline, and the user is told.
// NOTE: note: nothing measured for {{.*}}matmul{{.*}}; the host roofline estimated them (pass 'fuse')
// MISSING: error: {{.*}}missing.json: cannot read
// CORRUPT: error: {{.*}}cost-profile.mlir: not a valid calibration profile
func.func @attention(%q: tensor<1x12x128x64xf32>, %kt: tensor<1x12x64x128xf32>, %v: tensor<1x12x128x64xf32>, %mask: tensor<1x1x128x128xf32>) -> tensor<1x12x128x64xf32> {
  %s = "smelt.constant"() {value = dense<0.125> : tensor<f32>} : () -> tensor<f32>
  %0 = "smelt.matmul"(%q, %kt) : (tensor<1x12x128x64xf32>, tensor<1x12x64x128xf32>) -> tensor<1x12x128x128xf32>
  %1 = "smelt.mul"(%0, %s) : (tensor<1x12x128x128xf32>, tensor<f32>) -> tensor<1x12x128x128xf32>
  %2 = "smelt.add"(%1, %mask) : (tensor<1x12x128x128xf32>, tensor<1x1x128x128xf32>) -> tensor<1x12x128x128xf32>
  %3 = "smelt.softmax"(%2) {axis = 3 : i64} : (tensor<1x12x128x128xf32>) -> tensor<1x12x128x128xf32>
  %4 = "smelt.matmul"(%3, %v) : (tensor<1x12x128x128xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x64xf32>
  return %4 : tensor<1x12x128x64xf32>
}
