// RUN: printf '\xff\xfe' > %t.bin
// RUN: not %smelt-opt %t.bin 2>&1 | FileCheck %s
// RUN: not %smelt-opt %t.missing 2>&1 | FileCheck %s --check-prefix=MISSING
// CHECK: error: not UTF-8 text (byte 0): expected MLIR syntax
// MISSING: error: cannot read: No such file or directory
