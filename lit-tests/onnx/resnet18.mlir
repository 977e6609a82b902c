// RUN: %smelt-opt %models/resnet18.onnx --pass-pipeline='builtin.module(canonicalize,cse)' | FileCheck %s
// RUN: %smelt-opt %models/resnet18.onnx --import-only | FileCheck %s --check-prefix=RAW
// RUN: %smelt-opt %models/resnet18.onnx | FileCheck %s --check-prefix=FUSED
// Import plus cleanup: the exporter's Shape/Expand/CastLike bias chains fold away and exactly the
// network's layers remain, with weights held by handle. The default pipeline then fuses: every
// BatchNorm folds into its conv, and each conv takes its residual add and ReLU.

// CHECK: func.func @main(%arg0: tensor<1x3x224x224xf32>) -> tensor<1x1000xf32>
// CHECK: "smelt.constant"() {value = dense_resource<conv1.weight> : tensor<64x3x7x7xf32>}
// CHECK-COUNT-20: "smelt.conv2d"
// CHECK-NOT: smelt.shape
// CHECK-NOT: smelt.expand
// CHECK-NOT: smelt.cast
// CHECK: "smelt.gemm"({{.*}}) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_b = true}
// CHECK-SAME: -> tensor<1x1000xf32>

// RAW: "smelt.shape"(%{{[0-9]+}}) {end = 1 : i64, start = 0 : i64}
// RAW: "smelt.expand"
// RAW: "smelt.cast"

// FUSED-NOT: smelt.batch_norm
// FUSED: "smelt.kernel"
// FUSED: pattern = "conv_relu"
// FUSED: "smelt.max_pool"
// FUSED-COUNT-16: "smelt.kernel"
// FUSED: "smelt.global_avg_pool"
// FUSED: "smelt.gemm"
// FUSED-NOT: smelt.batch_norm
