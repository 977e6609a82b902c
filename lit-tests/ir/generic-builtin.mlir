// RUN: %smelt-opt %s | FileCheck %s
// The generic form of builtin and func ops is accepted and printed in custom form.

// CHECK: func.func @f(%arg0: tensor<2xf32>) -> tensor<2xf32> {
// CHECK-NEXT: %0 = "smelt.neg"(%arg0)
// CHECK-NEXT: return %0 : tensor<2xf32>
"builtin.module"() ({
  "func.func"() ({
  ^bb0(%a: tensor<2xf32>):
    %0 = "smelt.neg"(%a) : (tensor<2xf32>) -> tensor<2xf32>
    "func.return"(%0) : (tensor<2xf32>) -> ()
  }) {function_type = (tensor<2xf32>) -> tensor<2xf32>, sym_name = "f"} : () -> ()
}) : () -> ()
