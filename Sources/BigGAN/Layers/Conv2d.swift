import BGKernels

/// A spectrally normalised 2-D convolution (BigGAN-PyTorch `SNConv2d`),
/// stride 1, "same" padding, optionally reading its input through a fused
/// nearest x2 upsample.
///
/// Shapes: `x` `[batch, h, w, in]` (`[batch, 2h, 2w, out]` out with
/// upsampling), `weight` `[out, k, k, in]` (PyTorch's OIHW is converted at
/// the file boundary).
public final class Conv2d: Module {
  /// The weight as trained and stored, before spectral normalisation.
  public var weight: Parameter { normalized.parameter }
  public let bias: Parameter?
  let normalized: SpectralNormWeight
  let geometry: ConvolutionGeometry
  var precision: Precision = .fp32
  /// Set by a block whose own backward keeps nothing of this layer's input:
  /// in bf16 the layer then keeps only the input's bf16 bits, all its
  /// weight gradient reads, so the fp32 input can be freed after the
  /// forward. Where the block keeps the input anyway (a ReLU mask, a skip),
  /// a bf16 copy would only add to it.
  var keepsInputAsBFloat16 = false

  /// The input as `backward` reads it.
  private enum SavedInput {
    case fp32(Tensor)
    case bf16(BFloat16Tensor)

    var shape: [Int] {
      switch self {
      case .fp32(let x): x.shape
      case .bf16(let x): x.shape
      }
    }
  }

  /// What `backward` reads: the input and the weight the forward used.
  private struct Saved {
    let input: SavedInput
    let weight: SpectralNormWeight.Normalized
  }
  private var saved: Saved?
  /// The tangent of the last `tangent(_:)`, which the tangent backward's
  /// weight gradient reads.
  private var tangentInput: Tensor?

  init(
    prefix: String, in inChannels: Int, out outChannels: Int, kernel: Int,
    upsample: Bool = false, bias hasBias: Bool = true, spectralNorm eps: Float?,
    initialization: Initialization, rng: inout SeededRandom
  ) {
    normalized = SpectralNormWeight(
      prefix: prefix, shape: [outChannels, kernel, kernel, inChannels], spectralNorm: eps,
      initialization: initialization, rng: &rng)
    bias = hasBias ? Parameter(path(prefix, "bias"), Tensor(shape: [outChannels])) : nil
    geometry = ConvolutionGeometry(kernel: kernel, padding: kernel / 2, upsample: upsample)
  }

  /// The spectral norm, if any.
  var sn: SpectralNorm? { normalized.sn }
  public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }
  public var buffers: [Buffer] { normalized.buffers }

  func forward(_ x: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    saved = nil
    tangentInput = nil
    let (w, plan) = try normalized.resolve(mode: mode, precision: precision) {
      WeightPlan(convolutionWeight: $0, precision: $1)
    }
    if mode.keepsActivations {
      let input: SavedInput = keepsInputAsBFloat16 && precision == .bf16 ? .bf16(BFloat16Tensor(rounding: x)) : .fp32(x)
      saved = Saved(input: input, weight: w)
    }
    return try conv2d(
      x, weight: w.value, bias: bias?.value, geometry: geometry, precision: precision, plan: plan)
  }

  /// `J t` at the last training forward: the tangent `t` (`[rows, h, w,
  /// in]`) convolved by the weight that forward used, without the bias;
  /// keeps `t` for `backward(_:pass: .tangent)`.
  func tangent(_ t: Tensor) throws(KernelError) -> Tensor {
    let s = try peek()
    tangentInput = t
    return try conv2d(t, weight: s.weight.value, bias: nil, geometry: geometry, precision: precision)
  }

  /// Accumulates `pass`'s parameter gradients and returns `dL/dx`.
  func backward(_ dy: Tensor, pass: Pass = .forward) throws(KernelError) -> Tensor {
    let s = try differentiate(dy, pass)
    return try conv2dBackwardData(
      dy, weight: s.weight.value, inputShape: [dy.shape[0]] + s.input.shape.dropFirst(), geometry: geometry,
      precision: precision)
  }

  /// Accumulates `pass`'s parameter gradients only, for a layer whose input
  /// needs no gradient (a discriminator's first layer in a D step).
  func backwardParameters(_ dy: Tensor, pass: Pass = .forward) throws(KernelError) {
    _ = try differentiate(dy, pass)
  }

  private func peek() throws(KernelError) -> Saved {
    guard let s = saved else { throw .shape("\(weight.name): backward without a training- or evaluation-mode forward") }
    return s
  }

  /// Accumulates `pass`'s gradients from `dy` and returns what the forward
  /// saved (taking it in the forward's own pass).
  private func differentiate(_ dy: Tensor, _ pass: Pass) throws(KernelError) -> Saved {
    let s = try peek()
    switch pass {
    case .forward:
      saved = nil
      try accumulateGradients(dy, input: s.input, s.weight, bias: true)
    case .transpose:
      break
    case .tangent:
      guard let t = tangentInput.take() else { throw .shape("\(weight.name): tangent backward without a tangent pass") }
      try accumulateGradients(dy, input: .fp32(t), s.weight, bias: false)
    }
    return s
  }

  private func accumulateGradients(
    _ dy: Tensor, input: SavedInput, _ w: SpectralNormWeight.Normalized, bias withBias: Bool
  ) throws(KernelError) {
    guard weight.requiresGradient else { return }
    let (dw, db) =
      switch input {
      case .fp32(let x): try conv2dBackwardWeight(x, outputGradient: dy, geometry: geometry, precision: precision)
      case .bf16(let x): try conv2dBackwardWeight(x, outputGradient: dy, geometry: geometry)
      }
    try normalized.accumulateGradient(dw, step: w.step)
    if withBias { try bias?.accumulate(db) }
  }
}
