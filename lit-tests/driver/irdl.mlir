// RUN: %smelt irdl | FileCheck %s
// The IRDL definition is generated from the op registry.
// CHECK: irdl.dialect @smelt {
// CHECK: irdl.operation @conv2d {
// CHECK: irdl.operands(x: %{{[0-9]+}}, weight: %{{[0-9]+}}, bias: optional %{{[0-9]+}})
// CHECK: irdl.operation @constant {
// CHECK: irdl.attributes {"value" = %a0}

// CHECK-NOT: irdl.operation @yield
// CHECK-NOT: irdl.operation @kernel
