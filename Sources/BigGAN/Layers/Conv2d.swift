import BGKernels

/// A spectrally normalised 2-D convolution (BigGAN-PyTorch `SNConv2d`),
/// stride 1, "same" padding, optionally reading its input through a fused
/// nearest x2 upsample.
///
/// Shapes: `x` `[batch, h, w, in]` (`[batch, 2h, 2w, out]` out with
/// upsampling), `weight` `[out, k, k, in]` (PyTorch's OIHW is converted at
/// the file boundary).
public final class Conv2d: Module {
  public let weight: Parameter
  public let bias: Parameter?
  let sn: SpectralNorm?
  let geometry: ConvolutionGeometry
  var precision: Precision = .fp32
  private var input = Tensor(shape: [0])
  private var effective = Tensor(shape: [0])
  private var evaluation = EvaluationWeight()

  init(
    prefix: String, in inChannels: Int, out outChannels: Int, kernel: Int,
    upsample: Bool = false, bias hasBias: Bool = true, spectralNorm eps: Float?,
    initialization: Initialization, rng: inout SeededRandom
  ) {
    weight = Parameter(
      path(prefix, "weight"),
      initialWeight([outChannels, kernel, kernel, inChannels], initialization, rng: &rng))
    bias = hasBias ? Parameter(path(prefix, "bias"), Tensor(shape: [outChannels])) : nil
    sn = eps.map { SpectralNorm(prefix: prefix, rows: outChannels, eps: $0, rng: &rng) }
    geometry = ConvolutionGeometry(kernel: kernel, padding: kernel / 2, upsample: upsample)
  }

  public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }
  public var buffers: [Buffer] { sn.map { [$0.u, $0.sv] } ?? [] }

  func forward(_ x: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    input = mode.keepsActivations ? x : Tensor(shape: [0])
    let plan: WeightPlan?
    (effective, plan) = try evaluation.resolve(mode: mode, weight: weight, sn: sn, precision: precision) {
      WeightPlan(convolutionWeight: $0, precision: $1)
    }
    return try conv2d(
      x, weight: effective, bias: bias?.value, geometry: geometry, precision: precision,
      plan: plan)
  }

  /// Accumulates the parameter gradients and returns `dL/dx`.
  func backward(_ dy: Tensor) throws(KernelError) -> Tensor {
    try backwardParameters(dy)
    return try conv2dBackwardData(
      dy, weight: effective, inputShape: input.shape, geometry: geometry, precision: precision)
  }

  /// Accumulates the parameter gradients only, for a layer whose input
  /// needs no gradient (a discriminator's first layer in a D step).
  func backwardParameters(_ dy: Tensor) throws(KernelError) {
    guard input.count > 0 else { throw .shape("\(weight.name): backward without a training- or evaluation-mode forward") }
    if weight.requiresGradient {
      let (dw, db) = try conv2dBackwardWeight(
        input, outputGradient: dy, geometry: geometry, precision: precision)
      try weight.accumulate(try sn?.weightGradient(dw, weight: weight.value) ?? dw)
      try bias?.accumulate(db)
    }
  }
}
