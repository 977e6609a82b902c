// RUN: %smelt-opt %s -o %t.out.mlir && FileCheck %s < %t.out.mlir
// RUN: cat %s | %smelt-opt - | FileCheck %s
// RUN: %smelt-opt %s --split-input-file | FileCheck %s --check-prefix=SPLIT
// CHECK: func.func @first
// SPLIT: func.func @first
// SPLIT: // -----
// SPLIT: func.func @second
func.func @first() {
  return
}

// -----

func.func @second() {
  return
}
