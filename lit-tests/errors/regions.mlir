// RUN: %smelt-opt %s --split-input-file --verify-diagnostics

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // A kernel body is isolated: it cannot read values from outside.
  // expected-error @+3 {{use of undefined value '%x'}}
  %k = "smelt.kernel"(%x) ({
  ^bb0(%a: tensor<4xf32>):
    %r = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
    "smelt.yield"(%r) : (tensor<4xf32>) -> ()
  }) {pattern = "relu"} : (tensor<4xf32>) -> tensor<4xf32>
  return %k : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'smelt.kernel' op body must end with `smelt.yield`}}
  %k = "smelt.kernel"(%x) ({
  ^bb0(%a: tensor<4xf32>):
    %r = "smelt.relu"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  }) {pattern = "relu"} : (tensor<4xf32>) -> tensor<4xf32>
  return %k : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'smelt.yield' op must be the last operation in its block}}
  "smelt.yield"(%x) : (tensor<4xf32>) -> ()
  return %x : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'smelt.kernel' op body argument #0 has type tensor<8xf32> but input #0 is tensor<4xf32>}}
  %k = "smelt.kernel"(%x) ({
  ^bb0(%a: tensor<8xf32>):
    "smelt.yield"(%a) : (tensor<8xf32>) -> ()
  }) {pattern = "id"} : (tensor<4xf32>) -> tensor<4xf32>
  return %k : tensor<4xf32>
}

// -----

// expected-error @+1 {{'func.func' op body must end with `func.return`}}
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'smelt.kernel' op body holds an op with regions (a kernel inside a kernel); kernels do not nest}}
  %k = "smelt.kernel"(%x) ({
  ^bb0(%a: tensor<4xf32>):
    %i = "smelt.kernel"(%a) ({
    ^bb0(%b: tensor<4xf32>):
      %e = "smelt.exp"(%b) : (tensor<4xf32>) -> tensor<4xf32>
      "smelt.yield"(%e) : (tensor<4xf32>) -> ()
    }) {pattern = "exp"} : (tensor<4xf32>) -> tensor<4xf32>
    "smelt.yield"(%i) : (tensor<4xf32>) -> ()
  }) {pattern = "exp"} : (tensor<4xf32>) -> tensor<4xf32>
  return %k : tensor<4xf32>
}

// -----

// expected-error @+5 {{'func.func' op redefines symbol '@g'}}
// expected-note @+1 {{first defined here}}
func.func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
func.func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

func.func @h() -> tensor<2xi32> {
  // expected-error @+1 {{i32 literal '99999999999' is out of range}}
  %c = "smelt.constant"() {value = dense<[99999999999, 1]> : tensor<2xi32>} : () -> tensor<2xi32>
  return %c : tensor<2xi32>
}
