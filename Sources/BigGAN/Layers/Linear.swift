import BGKernels

/// A fully connected layer `y = x W^T + b`, spectrally normalised unless
/// built without it (BigGAN-PyTorch `SNLinear`).
///
/// Shapes: `x` `[batch, inFeatures]`, `weight` `[outFeatures, inFeatures]`,
/// `y` `[batch, outFeatures]`.
public final class Linear: Module {
  /// The weight as trained and stored, before spectral normalisation.
  public var weight: Parameter { normalized.parameter }
  public let bias: Parameter?
  let normalized: SpectralNormWeight
  var precision: Precision = .fp32

  /// What `backward` reads: the input and the weight the forward used.
  private struct Saved {
    let input: Tensor
    let weight: SpectralNormWeight.Normalized
  }
  private var saved: Saved?
  /// The tangent of the last `tangent(_:)`, which the tangent backward's
  /// weight gradient reads.
  private var tangentInput: Tensor?

  init(
    prefix: String, in inFeatures: Int, out outFeatures: Int, bias hasBias: Bool = true,
    spectralNorm eps: Float?, initialization: Initialization, rng: inout SeededRandom
  ) {
    normalized = SpectralNormWeight(
      prefix: prefix, shape: [outFeatures, inFeatures], spectralNorm: eps,
      initialization: initialization, rng: &rng)
    bias = hasBias ? Parameter(path(prefix, "bias"), Tensor(shape: [outFeatures])) : nil
  }

  /// The spectral norm, if any.
  var sn: SpectralNorm? { normalized.sn }
  public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }
  public var buffers: [Buffer] { normalized.buffers }

  func forward(_ x: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    saved = nil
    tangentInput = nil
    let (w, plan) = try normalized.resolve(mode: mode, precision: precision) {
      WeightPlan(matrixRows: $0[0], columns: $0[1], precision: $1)
    }
    if mode.keepsActivations { saved = Saved(input: x, weight: w) }
    var y: Tensor
    if let plan {
      y = try matmul(x, transposing: w.value, plan: plan)
    } else {
      y = try matmul(x, w.value, transposeB: true, precision: precision)
    }
    if let bias {
      let n = y.shape[0], o = y.shape[1]
      for i in 0..<n { for j in 0..<o { y.storage[i * o + j] += bias.value.storage[j] } }
    }
    return y
  }

  /// `J t = t W^T` at the last training forward, with the weight it used
  /// and no bias; keeps `t` (`[rows, in]`) for `backward(_:pass: .tangent)`.
  func tangent(_ t: Tensor) throws(KernelError) -> Tensor {
    guard let s = saved else { throw .shape("\(weight.name): tangent without a training- or evaluation-mode forward") }
    tangentInput = t
    return try matmul(t, s.weight.value, transposeB: true, precision: precision)
  }

  /// Accumulates `pass`'s parameter gradients and returns `dL/dx`.
  func backward(_ dy: Tensor, pass: Pass = .forward) throws(KernelError) -> Tensor {
    guard let s = saved else { throw .shape("\(weight.name): backward without a training- or evaluation-mode forward") }
    var input: Tensor?
    switch pass {
    case .forward:
      saved = nil
      input = s.input
    case .transpose:
      break
    case .tangent:
      guard let t = tangentInput.take() else { throw .shape("\(weight.name): tangent backward without a tangent pass") }
      input = t
    }
    if let input, weight.requiresGradient {
      var dw = Tensor(shape: weight.value.shape)
      try gemm(dy, input, into: &dw, transposeA: true, precision: precision)
      try normalized.accumulateGradient(dw, step: s.weight.step)
    }
    if pass == .forward, let bias, bias.requiresGradient {
      let n = dy.shape[0], o = dy.shape[1]
      var db = Tensor(shape: [o])
      for i in 0..<n { for j in 0..<o { db.storage[j] += dy.storage[i * o + j] } }
      try bias.accumulate(db)
    }
    return try matmul(dy, s.weight.value, precision: precision)
  }
}
