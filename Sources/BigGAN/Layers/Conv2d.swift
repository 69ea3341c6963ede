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

  /// What `backward` reads: the input and the weight the forward used.
  private struct Saved {
    let input: Tensor
    let weight: SpectralNormWeight.Normalized
  }
  private var saved: Saved?

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
    let (w, plan) = try normalized.resolve(mode: mode, precision: precision) {
      WeightPlan(convolutionWeight: $0, precision: $1)
    }
    if mode.keepsActivations { saved = Saved(input: x, weight: w) }
    return try conv2d(
      x, weight: w.value, bias: bias?.value, geometry: geometry, precision: precision, plan: plan)
  }

  /// Accumulates the parameter gradients and returns `dL/dx`.
  func backward(_ dy: Tensor) throws(KernelError) -> Tensor {
    let s = try take()
    try accumulateGradients(dy, s)
    return try conv2dBackwardData(
      dy, weight: s.weight.value, inputShape: s.input.shape, geometry: geometry, precision: precision)
  }

  /// Accumulates the parameter gradients only, for a layer whose input
  /// needs no gradient (a discriminator's first layer in a D step).
  func backwardParameters(_ dy: Tensor) throws(KernelError) {
    try accumulateGradients(dy, try take())
  }

  private func take() throws(KernelError) -> Saved {
    guard let s = saved.take() else { throw .shape("\(weight.name): backward without a training- or evaluation-mode forward") }
    return s
  }

  private func accumulateGradients(_ dy: Tensor, _ s: Saved) throws(KernelError) {
    guard weight.requiresGradient else { return }
    let (dw, db) = try conv2dBackwardWeight(s.input, outputGradient: dy, geometry: geometry, precision: precision)
    try normalized.accumulateGradient(dw, step: s.weight.step)
    try bias?.accumulate(db)
  }
}
