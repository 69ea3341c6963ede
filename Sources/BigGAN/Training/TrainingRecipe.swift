import BGKernels
import Foundation

/// What the trainer reads: the batch and its accumulation, D steps per G
/// step, Adam, orthogonal regularisation, the EMA of G, the seed and the
/// precision of every product. Defaults are the paper's: hinge loss, Adam
/// (beta1 0, beta2 0.999, eps 1e-8), G lr 5e-5, D lr 2e-4, two D steps per
/// G step, orthogonal regularisation 1e-4, EMA of G with decay 0.9999.
///
/// How long a run trains and how often it logs, samples and checkpoints is
/// its `RunSchedule`.
public struct TrainingRecipe: Codable, Equatable, Sendable {
  public var batch = 256
  /// Batches accumulated per optimizer step, for G and D alike.
  public var accumulate = 1
  public var discriminatorSteps = 2
  public var generatorLearningRate: Float = 5e-5
  public var discriminatorLearningRate: Float = 2e-4
  public var beta1: Float = 0
  public var beta2: Float = 0.999
  public var adamEpsilon: Float = 1e-8
  /// Strength of the off-diagonal orthogonal regularisation on G (0: off).
  public var orthogonalStrength: Float = 1e-4
  public var emaDecay: Float = 0.9999
  public var emaStart = 20_000
  /// Seeds the initialisation, the latents, the data order and the
  /// held-out split.
  public var seed: UInt64 = 0
  public var precision: Precision = .fp32
  /// The R1 penalty's gamma (nil: off): `gamma / 2 * E ||dD(x)/dx||^2`
  /// over the real images, added to D's loss (the paper's Section 4.2).
  /// Like `spectralClamp`, written to a run's files only when on, so the
  /// files of a run without it keep their bytes.
  public var r1Gamma: Float?
  /// After every D update, the top singular value of each of D's weights
  /// is clamped to this (nil: off; `SpectralClamp`).
  public var spectralClamp: Float?

  public init() {}
}

extension TrainingRecipe: CustomStringConvertible {
  /// Every value on one line, e.g. `batch 32 x 1, 2 D steps per G step, G
  /// lr 2e-4, ...`.
  public var description: String {
    "batch \(batch) x \(accumulate), \(discriminatorSteps) D steps per G step, G lr \(compact(generatorLearningRate)), "
      + "D lr \(compact(discriminatorLearningRate)), Adam betas \(compact(beta1)), \(compact(beta2)), eps \(compact(adamEpsilon)), "
      + "ortho \(compact(orthogonalStrength)), EMA \(compact(emaDecay)) from step \(emaStart), \(precision), seed \(seed)"
      + (r1Gamma.map { ", R1 gamma \(compact($0))" } ?? "") + (spectralClamp.map { ", D clamp \(compact($0))" } ?? "")
  }
}

extension TrainingRecipe {
  /// Checks every value the trainer reads (a recipe from a hand-edited or
  /// damaged `state.json` included); the message names the field and its
  /// range.
  public func validate() throws(CheckpointError) {
    for (name, value) in [("batch", batch), ("accumulate", accumulate), ("discriminatorSteps", discriminatorSteps)] {
      try checkRecipe(value >= 1, "\(name) is \(value); expected at least 1")
    }
    try checkRecipe(emaStart >= 0, "emaStart is \(emaStart); expected at least 0")
    for (name, value) in [("generatorLearningRate", generatorLearningRate), ("discriminatorLearningRate", discriminatorLearningRate), ("adamEpsilon", adamEpsilon)] {
      try checkRecipe(value > 0 && value.isFinite, "\(name) is \(value); expected a positive number")
    }
    try checkRecipe(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "Adam betas \(beta1), \(beta2); expected each in [0, 1)")
    try checkRecipe(orthogonalStrength >= 0 && orthogonalStrength.isFinite, "orthogonalStrength is \(orthogonalStrength); expected at least 0")
    try checkRecipe(emaDecay >= 0 && emaDecay < 1, "emaDecay is \(emaDecay); expected [0, 1)")
    for (name, value) in [("r1Gamma", r1Gamma), ("spectralClamp", spectralClamp)] {
      if let value { try checkRecipe(value > 0 && value.isFinite, "\(name) is \(value); expected a positive number (or no \(name): off)") }
    }
  }
}

/// `x` as a person writes it: `2e-4`, `1e-8`, `0.9999`, `0`.
func compact(_ x: Float) -> String {
  let value = Double(x)
  guard value != 0 && abs(value) < 1e-3 else { return String(format: "%g", value) }
  let parts = String(format: "%.3e", value).split(separator: "e")
  var mantissa = String(parts[0])
  while mantissa.hasSuffix("0") { mantissa.removeLast() }
  if mantissa.hasSuffix(".") { mantissa.removeLast() }
  return "\(mantissa)e\(Int(parts[1])!)"
}

/// Throws `text` as a `recipe:` error of `state.json` (where the recipe and
/// the schedule share one object) unless `ok`.
func checkRecipe(_ ok: Bool, _ text: @autoclosure () -> String) throws(CheckpointError) {
  if !ok { throw CheckpointError(description: "recipe: \(text())") }
}
