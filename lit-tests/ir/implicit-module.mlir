// RUN: %smelt-opt %s | FileCheck %s
// Top-level functions are wrapped in a module, named modules keep their name.

// CHECK: module {
// CHECK-NEXT: func.func @a() {
// CHECK-NEXT:   return
// CHECK-NEXT: }
// CHECK-NEXT: func.func private @b(%arg0: tensor<?x4xf32>) -> tensor<?x4xf32>
func.func @a() {
  return
}
func.func private @b(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  return %x : tensor<?x4xf32>
}
