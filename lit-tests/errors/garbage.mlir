// RUN: not %smelt-opt %s --split-input-file 2>&1 | FileCheck %s
// Nonsense never crashes the parser.

// CHECK: garbage.mlir:[[@LINE+1]]:1: error: expected an operation, found '}}}'
}}}

// -----

// CHECK: error: unterminated string
%0 = "smelt.relu

// -----

// CHECK: error: expected a type, found '@@)'
func.func @f(%x: @@) {
  return
}

// -----

// CHECK: error: unknown operation 'relu' (custom syntax is supported for module, func.func and return; use the generic form "dialect.op"(...) for others)
relu %x
