import Foundation

/// Evaluation during a training run: every `every` steps, the FID and IS of
/// `count` images from G_ema against `reference`. The images come from
/// their own seeded latents with G_ema in inference mode, so evaluating
/// changes no training state: the run's bits are those of a run without
/// it.
public struct TrainingEvaluation {
  public let every: Int
  public let count: Int
  public let extractor: InceptionExtractor
  public let reference: ReferenceStatistics

  /// Checks before training that `count` images can be scored against
  /// `reference` (see `checkEvaluable`).
  public init(every: Int, count: Int, extractor: InceptionExtractor, reference: ReferenceStatistics) throws {
    try checkEvaluable(count: count, featureDimension: extractor.network.featureDimension, reference: reference, metrics: [.fid, .is])
    self.every = every
    self.count = count
    self.extractor = extractor
    self.reference = reference
  }

  /// Scores `generator`'s images, generated `batch` at a time, at `step`.
  func score(_ generator: Generator, batch: Int, step: Int) throws -> EvaluationRecord {
    var settings = GenerationSettings(count: count)
    settings.seed = 54_321
    settings.batch = batch
    let features = try extractor.features(of: generator, settings)
    return EvaluationRecord(
      step: step, report: try evaluate(features, reference: reference, metrics: [.fid, .is]),
      resize: extractor.resize, images: count)
  }
}

/// One evaluation during training.
public struct EvaluationRecord {
  public var step: Int
  /// FID and IS under torch-fidelity's names.
  public var report: EvaluationReport
  /// The preprocessing the images went through.
  public var resize: InceptionResize
  public var images: Int

  /// The values as metrics.jsonl (under `eval`) and `best.json` keep them:
  /// every metric by name, and `resize`.
  public var values: [String: Any] {
    var values: [String: Any] = ["resize": resize.rawValue]
    for (key, value) in report.values { values[key] = value }
    return values
  }

  public var frechetDistance: Double { report["frechet_inception_distance"]! }
}
