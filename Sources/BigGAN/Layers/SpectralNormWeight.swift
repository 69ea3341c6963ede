import BGKernels

/// A layer's weight `[rows, ...]` (a convolution's `[out, k, k, in]`, a
/// linear map's `[out, in]`, an embedding's `[classes, features]`),
/// spectrally normalised over its rows unless built without it: the weight
/// a forward computes with, and how a backward turns the gradient of that
/// into the raw weight's.
///
/// Outside training `u` never moves, so `W / sigma` is a function of the
/// weight, `u` and the precision: evaluation keeps it, and the kernel plan
/// made for it (packed micro-panels, Winograd filters), while none of them
/// changes, and sampling pays the normalisation and the weight preparation
/// once instead of on every forward. Training changes the weights every
/// step and so keeps nothing.
final class SpectralNormWeight {
  /// The raw weight, as trained and stored.
  let parameter: Parameter
  /// nil: the weight is used as stored.
  let sn: SpectralNorm?
  private var kept: (key: Key, weight: Normalized, plan: WeightPlan?)?

  /// The weight one forward computed with, `W / sigma` (or `W`), and the
  /// power-iteration step behind it (nil without spectral norm).
  struct Normalized {
    let value: Tensor
    let step: SpectralNorm.Step?
  }

  private struct Key: Equatable {
    var weight: Int
    var u: Int?
    var precision: Precision
  }

  /// A weight of `shape` drawn by `initialization`, then (with `eps`) the
  /// spectral norm's `u`, both from `rng`.
  init(
    prefix: String, shape: [Int], spectralNorm eps: Float?, initialization: Initialization,
    rng: inout SeededRandom
  ) {
    parameter = Parameter(path(prefix, "weight"), initialWeight(shape, initialization, rng: &rng))
    sn = eps.map { SpectralNorm(prefix: prefix, rows: shape[0], eps: $0, rng: &rng) }
  }

  /// The spectral norm's `u0` and `sv0`, if any.
  var buffers: [Buffer] { sn.map { [$0.u, $0.sv] } ?? [] }

  /// The weight a forward in `mode` computes with, and outside training its
  /// plan: training normalises afresh (updating `u`); evaluation and
  /// inference reuse what the last call made while its key holds.
  /// `makePlan` builds a plan for a weight of the given shape (nil, e.g.
  /// when memory is short or the layer has no use for one: unplanned).
  func resolve(
    mode: Mode, precision: Precision, makePlan: ([Int], Precision) -> WeightPlan?
  ) throws(KernelError) -> (weight: Normalized, plan: WeightPlan?) {
    guard !mode.isTraining else {
      kept = nil
      return (try normalize(mode: mode), nil)
    }
    let key = Key(weight: parameter.version, u: sn?.u.version, precision: precision)
    if let kept, kept.key == key { return (kept.weight, kept.plan) }
    // A failed normalisation must not leave a key that claims the old weight.
    kept = nil
    let weight = try normalize(mode: .evaluation)
    let plan = makePlan(weight.value.shape, precision)
    kept = (key, weight, plan)
    return (weight, plan)
  }

  /// Accumulates the raw weight's gradient from `g`, that of the weight a
  /// forward computed with, given that forward's power-iteration step.
  func accumulateGradient(_ g: Tensor, step: SpectralNorm.Step?) throws(KernelError) {
    try parameter.accumulate(try step?.weightGradient(g, weight: parameter.value) ?? g)
  }

  private func normalize(mode: Mode) throws(KernelError) -> Normalized {
    guard let sn else { return Normalized(value: parameter.value, step: nil) }
    let (value, step) = try sn.normalize(parameter.value, mode: mode)
    return Normalized(value: value, step: step)
  }
}
