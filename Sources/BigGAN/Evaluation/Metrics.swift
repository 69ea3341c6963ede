import BGKernels

/// A metric `biggan-fast eval` can report.
public enum EvaluationMetric: String, CaseIterable, Sendable {
  /// Fréchet Inception Distance against the reference statistics.
  case fid
  /// Inception Score of the evaluated images alone.
  case `is`
  /// Kernel Inception Distance against the reference features.
  case kid
  /// Improved precision and recall against the reference features.
  case pr
  /// Intra-class FID: the mean over classes of each class's FID.
  case ifid
}

/// How the metrics are computed; the defaults are torch-fidelity's.
public struct MetricSettings: Sendable {
  public var inceptionScoreSplits = 10
  public var kidSubsets = 100
  public var kidSubsetSize = 1000
  public var neighbours = 3
  public init() {}
}

/// Metric values under torch-fidelity's key names
/// (`frechet_inception_distance`, `inception_score_mean`, ...), in the
/// order they were computed.
public struct EvaluationReport: Sendable {
  public var values: [(key: String, value: Double)] = []

  public init() {}

  public subscript(key: String) -> Double? { values.first { $0.key == key }?.value }

  mutating func add(_ key: String, _ value: Double) { values.append((key, value)) }
}

/// Checks, before any image is scored, that `count` images with features
/// of `featureDimension` can give `metrics` against `reference`: the
/// reference has the right dimension and what each metric reads, and there
/// are enough images for IS's splits and KID's subsets, and their
/// features fit in the machine's memory.
public func checkEvaluable(
  count: Int, featureDimension: Int, reference: ReferenceStatistics?, metrics: [EvaluationMetric],
  settings: MetricSettings = MetricSettings()
) throws(EvaluationError) {
  // Every image's features and logits (fewer than the features) are held
  // until the metrics are computed.
  do { try MemoryBudget.require(Double(count) * Double(featureDimension) * 8, for: "\(count) images", "their Inception features") } catch {
    throw EvaluationError(error.description)
  }
  for metric in metrics {
    if metric != .is {
      guard let reference else {
        throw EvaluationError("\(metric.rawValue): needs reference statistics (--ref FILE.npz, from biggan-fast stats)")
      }
      guard reference.statistics.dimension == featureDimension else {
        throw EvaluationError(
          "\(metric.rawValue): the reference statistics have \(reference.statistics.dimension) dimensions but the network gives \(featureDimension); they come from another network")
      }
      if metric != .fid, reference.features == nil {
        throw EvaluationError("\(metric.rawValue): the reference file has mu and sigma only; it needs the features (write it with biggan-fast stats)")
      }
      if metric == .ifid, reference.labels == nil {
        throw EvaluationError("ifid: the reference file has no labels (write it with biggan-fast stats on labelled data)")
      }
    }
    switch metric {
    case .is where count < settings.inceptionScoreSplits:
      throw EvaluationError("IS: \(count) images cannot make \(settings.inceptionScoreSplits) splits; use more images or fewer --is-splits")
    case .kid where count < settings.kidSubsetSize || reference!.features!.shape[0] < settings.kidSubsetSize:
      throw EvaluationError(
        "KID: \(count) images and \(reference!.features!.shape[0]) reference images, fewer than the subset size \(settings.kidSubsetSize); use more images or a smaller --kid-subset-size")
    case .pr where count <= settings.neighbours:
      throw EvaluationError("precision/recall: \(count) images; expected more than the \(settings.neighbours) neighbours")
    default: break
    }
  }
}

/// Computes `metrics` for `evaluated` features against `reference` (needed
/// by every metric but IS), after `checkEvaluable`.
public func evaluate(
  _ evaluated: InceptionFeatures, reference: ReferenceStatistics?, metrics: [EvaluationMetric],
  settings: MetricSettings = MetricSettings()
) throws(EvaluationError) -> EvaluationReport {
  try checkEvaluable(
    count: evaluated.features.shape[0], featureDimension: evaluated.features.shape[1], reference: reference,
    metrics: metrics, settings: settings)
  var report = EvaluationReport()
  report.add("count", Double(evaluated.features.shape[0]))
  for metric in metrics {
    switch metric {
    case .fid:
      let fid = try FeatureStatistics(features: evaluated.features).frechetDistance(to: reference!.statistics)
      report.add("frechet_inception_distance", fid)
    case .is:
      let score = try inceptionScore(logits: evaluated.logits, splits: settings.inceptionScoreSplits)
      report.add("inception_score_mean", score.mean)
      report.add("inception_score_std", score.standardDeviation)
    case .kid:
      let kid = try kernelInceptionDistance(
        generated: evaluated.features, reference: reference!.features!, subsets: settings.kidSubsets,
        subsetSize: settings.kidSubsetSize)
      report.add("kernel_inception_distance_mean", kid.mean)
      report.add("kernel_inception_distance_std", kid.standardDeviation)
    case .pr:
      let pr = try precisionRecall(generated: evaluated.features, reference: reference!.features!, neighbours: settings.neighbours)
      report.add("precision", pr.precision)
      report.add("recall", pr.recall)
    case .ifid:
      report.add("intra_class_frechet_inception_distance", try intraClassFID(evaluated, reference: reference!.features!, reference!.labels!))
    }
  }
  return report
}

/// The mean over classes of the FID between each class's evaluated and
/// reference features.
func intraClassFID(_ evaluated: InceptionFeatures, reference: Tensor, _ referenceLabels: [Int])
  throws(EvaluationError) -> Double
{
  guard let labels = evaluated.labels else { throw EvaluationError("ifid: the evaluated images have no class labels") }
  var total = 0.0, classes = 0
  for k in Set(referenceLabels).sorted() {
    let mine = labels.indices.filter { labels[$0] == k }
    let theirs = referenceLabels.indices.filter { referenceLabels[$0] == k }
    guard mine.count >= 2 else {
      throw EvaluationError("ifid: class \(k) has \(mine.count) evaluated images; expected at least 2 per class (raise --count)")
    }
    guard theirs.count >= 2 else { throw EvaluationError("ifid: class \(k) has \(theirs.count) reference images; expected at least 2") }
    let a = try FeatureStatistics(features: rows(evaluated.features, mine))
    let b = try FeatureStatistics(features: rows(reference, theirs))
    total += try a.frechetDistance(to: b)
    classes += 1
  }
  return total / Double(classes)
}
