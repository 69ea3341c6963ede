import BGKernels

/// A fully connected layer `y = x W^T + b`, spectrally normalised unless
/// built without it (BigGAN-PyTorch `SNLinear`).
///
/// Shapes: `x` `[batch, inFeatures]`, `weight` `[outFeatures, inFeatures]`,
/// `y` `[batch, outFeatures]`.
public final class Linear: Module {
  public let weight: Parameter
  public let bias: Parameter?
  let sn: SpectralNorm?
  var precision: Precision = .fp32
  private var input = Tensor(shape: [0])
  private var effective = Tensor(shape: [0])
  private var evaluation = EvaluationWeight()

  init(
    prefix: String, in inFeatures: Int, out outFeatures: Int, bias hasBias: Bool = true,
    spectralNorm eps: Float?, initialization: Initialization, rng: inout SeededRandom
  ) {
    weight = Parameter(path(prefix, "weight"), initialWeight([outFeatures, inFeatures], initialization, rng: &rng))
    bias = hasBias ? Parameter(path(prefix, "bias"), Tensor(shape: [outFeatures])) : nil
    sn = eps.map { SpectralNorm(prefix: prefix, rows: outFeatures, eps: $0, rng: &rng) }
  }

  public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }
  public var buffers: [Buffer] { sn.map { [$0.u, $0.sv] } ?? [] }

  func forward(_ x: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    input = mode.keepsActivations ? x : Tensor(shape: [0])
    let plan: WeightPlan?
    (effective, plan) = try evaluation.resolve(mode: mode, weight: weight, sn: sn, precision: precision) {
      WeightPlan(matrixRows: $0[0], columns: $0[1], precision: $1)
    }
    var y: Tensor
    if let plan {
      y = try matmul(x, transposing: effective, plan: plan)
    } else {
      y = try matmul(x, effective, transposeB: true, precision: precision)
    }
    if let bias {
      let n = y.shape[0], o = y.shape[1]
      for i in 0..<n { for j in 0..<o { y.storage[i * o + j] += bias.value.storage[j] } }
    }
    return y
  }

  /// Accumulates the parameter gradients and returns `dL/dx`.
  func backward(_ dy: Tensor) throws(KernelError) -> Tensor {
    guard input.count > 0 else { throw .shape("\(weight.name): backward without a training- or evaluation-mode forward") }
    if weight.requiresGradient {
      var dw = Tensor(shape: weight.value.shape)
      try gemm(dy, input, into: &dw, transposeA: true, precision: precision)
      try weight.accumulate(try sn?.weightGradient(dw, weight: weight.value) ?? dw)
    }
    if let bias, bias.requiresGradient {
      let n = dy.shape[0], o = dy.shape[1]
      var db = Tensor(shape: [o])
      for i in 0..<n { for j in 0..<o { db.storage[j] += dy.storage[i * o + j] } }
      try bias.accumulate(db)
    }
    return try matmul(dy, effective, precision: precision)
  }
}
