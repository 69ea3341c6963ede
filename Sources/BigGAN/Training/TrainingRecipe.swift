/// Every setting of a training run besides the architecture. Defaults are
/// the paper's: hinge loss, Adam (beta1 0, beta2 0.999, eps 1e-8), G lr
/// 5e-5, D lr 2e-4, two D steps per G step, orthogonal regularisation 1e-4,
/// EMA of G with decay 0.9999.
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
  public var steps = 100_000
  public var seed: UInt64 = 0
  public var precision = "fp32"
  public var logEvery = 50
  public var sampleEvery = 1000
  public var checkpointEvery = 1000
  public var keepCheckpoints = 3
  /// Every this many steps, log the top singular values of every weight.
  public var singularValueEvery = 500
  /// Share of the real data held out to watch D overfit (0 disables).
  public var heldOut: Float = 0.02
  /// A loss or spectral norm above this many times its running average
  /// raises a collapse warning.
  public var collapseFactor: Float = 5

  public init() {}

  /// A named recipe with its architecture.
  public struct Preset: Sendable {
    public var model: BigGANConfiguration
    public var recipe: TrainingRecipe
    public var summary: String
  }

  /// `tiny` (the default): a small 32-px model on the built-in shapes that
  /// shows class-conditional samples within about half an hour on 2 cores.
  public static var tiny: Preset {
    var r = TrainingRecipe()
    r.batch = 32
    r.discriminatorSteps = 2
    r.generatorLearningRate = 2e-4
    r.discriminatorLearningRate = 2e-4
    // A short run needs a short average: 0.99 spans about the last 100 steps.
    r.emaDecay = 0.99
    r.emaStart = 200
    r.steps = 1500
    r.logEvery = 10
    r.sampleEvery = 100
    r.checkpointEvery = 100
    r.singularValueEvery = 100
    let model = BigGANConfiguration(
      resolution: 32, generatorChannels: 16, discriminatorChannels: 16, dimZ: 64, sharedDim: 32,
      classes: 10, generatorAttention: [], discriminatorAttention: [])
    return Preset(model: model, recipe: r, summary: "32 px, ch 16, batch 32, built-in shapes, 1500 steps, ~11 min on 2 cores")
  }

  /// BigGAN-PyTorch's CIFAR recipe (`launch_cifar_ema.sh`): batch 50,
  /// four D steps, lr 2e-4 for both, N(0, 0.02) init, no ortho
  /// regularisation, EMA from step 1000.
  public static var cifar32: Preset {
    var r = TrainingRecipe()
    r.batch = 50
    r.discriminatorSteps = 4
    r.generatorLearningRate = 2e-4
    r.discriminatorLearningRate = 2e-4
    r.orthogonalStrength = 0
    r.emaStart = 1000
    r.steps = 500 * 1000
    var model = BigGANConfiguration.cifar32
    model.initialization = .normal(std: 0.02)
    return Preset(model: model, recipe: r, summary: "BigGAN-PyTorch's CIFAR-10 recipe, 32 px, ch 64, batch 50")
  }

  /// The paper's ImageNet recipe at 64 px: 2048 = 256 x 8.
  public static var imagenet64: Preset {
    var r = TrainingRecipe()
    r.accumulate = 8
    return Preset(model: .imagenet64, recipe: r, summary: "the paper's recipe at 64 px, batch 256 x 8")
  }

  /// The paper's ImageNet recipe at 128 px: ch 96, batch 2048 = 256 x 8.
  public static var imagenet128: Preset {
    var r = TrainingRecipe()
    r.accumulate = 8
    return Preset(model: .imagenet128, recipe: r, summary: "the paper's BigGAN at 128 px, ch 96, batch 256 x 8")
  }

  /// BigGAN with the paper's recipe (batch 2048 = 256 x 8) at 256 or 512
  /// px.
  public static func imagenet(_ model: BigGANConfiguration) -> Preset {
    var r = TrainingRecipe()
    r.accumulate = 8
    return Preset(model: model, recipe: r, summary: "the paper's BigGAN at \(model.resolution) px, batch 256 x 8")
  }

  /// BigGAN-deep with the paper's recipe (batch 2048 = 256 x 8) at 128,
  /// 256 or 512 px.
  public static func imagenetDeep(_ model: BigGANConfiguration) -> Preset {
    var r = TrainingRecipe()
    r.accumulate = 8
    return Preset(model: model, recipe: r, summary: "BigGAN-deep at \(model.resolution) px, ch 128, batch 256 x 8")
  }

  /// Every named configuration, for every command (`train --config`, `info
  /// --config`, `bench --config`).
  public static var presets: [String: Preset] {
    [
      "tiny": tiny, "cifar32": cifar32, "imagenet64": imagenet64, "imagenet128": imagenet128,
      "imagenet256": imagenet(.imagenet256), "imagenet512": imagenet(.imagenet512),
      "imagenet128-deep": imagenetDeep(.imagenet128Deep), "imagenet256-deep": imagenetDeep(.imagenet256Deep),
      "imagenet512-deep": imagenetDeep(.imagenet512Deep),
    ]
  }
}

extension TrainingRecipe {
  /// Checks every value a run reads (a recipe from a hand-edited or damaged
  /// `state.json` included); the message names the field and its range.
  public func validate() throws(CheckpointError) {
    func check(_ ok: Bool, _ text: String) throws(CheckpointError) {
      if !ok { throw CheckpointError(description: "recipe: \(text)") }
    }
    for (name, value) in [
      ("batch", batch), ("accumulate", accumulate), ("discriminatorSteps", discriminatorSteps), ("steps", steps),
      ("logEvery", logEvery), ("sampleEvery", sampleEvery), ("checkpointEvery", checkpointEvery),
      ("keepCheckpoints", keepCheckpoints), ("singularValueEvery", singularValueEvery),
    ] {
      try check(value >= 1, "\(name) is \(value); expected at least 1")
    }
    try check(emaStart >= 0, "emaStart is \(emaStart); expected at least 0")
    for (name, value) in [("generatorLearningRate", generatorLearningRate), ("discriminatorLearningRate", discriminatorLearningRate), ("adamEpsilon", adamEpsilon)] {
      try check(value > 0 && value.isFinite, "\(name) is \(value); expected a positive number")
    }
    try check(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "Adam betas \(beta1), \(beta2); expected each in [0, 1)")
    try check(orthogonalStrength >= 0 && orthogonalStrength.isFinite, "orthogonalStrength is \(orthogonalStrength); expected at least 0")
    try check(emaDecay >= 0 && emaDecay < 1, "emaDecay is \(emaDecay); expected [0, 1)")
    try check(heldOut >= 0 && heldOut < 1, "heldOut is \(heldOut); expected [0, 1)")
    try check(collapseFactor > 1 && collapseFactor.isFinite, "collapseFactor is \(collapseFactor); expected above 1")
    try check(["fp32", "bf16"].contains(precision), "precision is '\(precision)'; expected fp32 or bf16")
  }
}
