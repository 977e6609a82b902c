// ResNet-18's stem as PyTorch's exporter writes it: conv, batch norm, relu, max pool, with the
// exporter's shape arithmetic for a flatten still in the graph. smelt-opt folds the shape chain
// and infers every shape.
module @resnet_stem {
  func.func @main(%x: tensor<1x3x224x224xf32>) -> (tensor<1x64x56x56xf32>, tensor<?x?xf32>) {
    %w = "smelt.constant"() {value = dense_resource<conv1.weight> : tensor<64x3x7x7xf32>} : () -> tensor<64x3x7x7xf32>
    %scale = "smelt.constant"() {value = dense_resource<bn1.weight> : tensor<64xf32>} : () -> tensor<64xf32>
    %bias = "smelt.constant"() {value = dense_resource<bn1.bias> : tensor<64xf32>} : () -> tensor<64xf32>
    %mean = "smelt.constant"() {value = dense_resource<bn1.running_mean> : tensor<64xf32>} : () -> tensor<64xf32>
    %var = "smelt.constant"() {value = dense_resource<bn1.running_var> : tensor<64xf32>} : () -> tensor<64xf32>
    %conv = "smelt.conv2d"(%x, %w) {strides = array<i64: 2, 2>, pads = array<i64: 3, 3, 3, 3>} : (tensor<1x3x224x224xf32>, tensor<64x3x7x7xf32>) -> tensor<*xf32>
    %bn = "smelt.batch_norm"(%conv, %scale, %bias, %mean, %var) {epsilon = 1.0e-05 : f32} : (tensor<*xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<*xf32>
    %relu = "smelt.relu"(%bn) : (tensor<*xf32>) -> tensor<*xf32>
    %relu_again = "smelt.relu"(%bn) : (tensor<*xf32>) -> tensor<*xf32>
    %pool = "smelt.max_pool"(%relu) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<*xf32>) -> tensor<1x64x56x56xf32>
    %gap = "smelt.global_avg_pool"(%pool) : (tensor<1x64x56x56xf32>) -> tensor<*xf32>
    %shape = "smelt.shape"(%gap) : (tensor<*xf32>) -> tensor<4xi64>
    %zero = "smelt.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
    %batch = "smelt.gather"(%shape, %zero) {axis = 0 : i64} : (tensor<4xi64>, tensor<i64>) -> tensor<i64>
    %axes = "smelt.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
    %batch1 = "smelt.unsqueeze"(%batch, %axes) : (tensor<i64>, tensor<1xi64>) -> tensor<1xi64>
    %rest = "smelt.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
    %target = "smelt.concat"(%batch1, %rest) {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64>
    %flat = "smelt.reshape"(%gap, %target) : (tensor<*xf32>, tensor<2xi64>) -> tensor<?x?xf32>
    return %pool, %flat : tensor<1x64x56x56xf32>, tensor<?x?xf32>
  }
}
