// RUN: not %smelt-opt %s --pass-pipeline='builtin.module(frob)' 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not %smelt-opt %s --pass-pipeline='canonicalize{bogus=1}' 2>&1 | FileCheck %s --check-prefix=OPTION
// RUN: not %smelt-opt %s --pass-pipeline='canonicalize{max-iterations=many}' 2>&1 | FileCheck %s --check-prefix=VALUE
// RUN: not %smelt-opt %s --pass-pipeline='cse,' 2>&1 | FileCheck %s --check-prefix=SYNTAX
// UNKNOWN: error: unknown pass 'frob' (known passes: canonicalize, fold, cse, dce, characterize, fuse, widen-half, integer-products, shape-inference)
// OPTION: error: pass 'canonicalize' has no option 'bogus'
// VALUE: error: invalid value 'many' for option 'max-iterations'
// SYNTAX: error: invalid --pass-pipeline: pipeline ends with ','
func.func @f() {
  return
}
