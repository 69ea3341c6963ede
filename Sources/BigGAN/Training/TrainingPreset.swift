/// A named configuration, the one table behind every command's `--config`:
/// the architecture, the trainer's recipe, the run's schedule and a
/// one-line summary.
public struct TrainingPreset: Sendable {
  public var model: BigGANConfiguration
  public var recipe: TrainingRecipe
  public var schedule: RunSchedule
  public var summary: String

  /// Every preset by name (`train --config`, `info --config`, `bench
  /// --config`).
  public static let all: [String: TrainingPreset] = [
    "tiny": tiny, "cifar32": cifar32, "imagenet64": imagenet(.imagenet64, "the paper's recipe at 64 px, batch 256 x 8"),
    "imagenet128": imagenet(.imagenet128, "the paper's BigGAN at 128 px, ch 96, batch 256 x 8"),
    "imagenet256": imagenet(.imagenet256, "the paper's BigGAN at 256 px, batch 256 x 8"),
    "imagenet512": imagenet(.imagenet512, "the paper's BigGAN at 512 px, batch 256 x 8"),
    "imagenet128-deep": imagenet(.imagenet128Deep, "BigGAN-deep at 128 px, ch 128, batch 256 x 8"),
    "imagenet256-deep": imagenet(.imagenet256Deep, "BigGAN-deep at 256 px, ch 128, batch 256 x 8"),
    "imagenet512-deep": imagenet(.imagenet512Deep, "BigGAN-deep at 512 px, ch 128, batch 256 x 8"),
  ]

  /// The names of `all`, sorted.
  public static var names: [String] { all.keys.sorted() }

  /// `tiny` (the default of `train`): a small 32-px model on the built-in
  /// shapes that shows class-conditional samples in about 11 minutes on 2
  /// cores.
  static var tiny: TrainingPreset {
    var r = TrainingRecipe()
    r.batch = 32
    r.discriminatorSteps = 2
    r.generatorLearningRate = 2e-4
    r.discriminatorLearningRate = 2e-4
    // A short run needs a short average: 0.99 spans about the last 100 steps.
    r.emaDecay = 0.99
    r.emaStart = 200
    var s = RunSchedule()
    s.steps = 1500
    s.logEvery = 10
    s.sampleEvery = 100
    s.checkpointEvery = 100
    s.singularValueEvery = 100
    let model = BigGANConfiguration(
      resolution: 32, generatorChannels: 16, discriminatorChannels: 16, dimZ: 64, sharedDim: 32,
      classes: 10, generatorAttention: [], discriminatorAttention: [])
    return TrainingPreset(model: model, recipe: r, schedule: s, summary: "32 px, ch 16, batch 32, built-in shapes, 1500 steps, ~11 min on 2 cores")
  }

  /// BigGAN-PyTorch's CIFAR recipe (`launch_cifar_ema.sh`): batch 50,
  /// four D steps, lr 2e-4 for both, N(0, 0.02) init, no ortho
  /// regularisation, EMA from step 1000.
  static var cifar32: TrainingPreset {
    var r = TrainingRecipe()
    r.batch = 50
    r.discriminatorSteps = 4
    r.generatorLearningRate = 2e-4
    r.discriminatorLearningRate = 2e-4
    r.orthogonalStrength = 0
    r.emaStart = 1000
    var s = RunSchedule()
    s.steps = 500 * 1000
    var model = BigGANConfiguration.cifar32
    model.initialization = .normal(std: 0.02)
    return TrainingPreset(model: model, recipe: r, schedule: s, summary: "BigGAN-PyTorch's CIFAR-10 recipe, 32 px, ch 64, batch 50")
  }

  /// `model` with the paper's ImageNet recipe: batch 2048 = 256 x 8.
  static func imagenet(_ model: BigGANConfiguration, _ summary: String) -> TrainingPreset {
    var r = TrainingRecipe()
    r.accumulate = 8
    return TrainingPreset(model: model, recipe: r, schedule: RunSchedule(), summary: summary)
  }
}
