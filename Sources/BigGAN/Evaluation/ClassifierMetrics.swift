import BGKernels
import Foundation

/// A measure of a generator that a data classifier gives.
public enum ClassifierMetric: String, CaseIterable, Sendable {
  /// Sample accuracy: the share of the samples of class y the classifier
  /// assigns to y, overall and per class.
  case accuracy
  /// Classification Accuracy Score (Ravuri & Vinyals 2019): a classifier
  /// trained on the samples by the file's recipe, tested on the real
  /// held-out images.
  case cas
  /// Fréchet classifier distance: FID on the classifier's penultimate
  /// features, samples against the real held-out images.
  case fcd
}

/// Labelled images kept in memory as an `ImageDataset`: a generator's
/// samples for the Classification Accuracy Score's classifier to train on.
struct ImagesInMemory: ImageDataset {
  let images: [(pixels: [UInt8], label: Int)]
  let classes: Int
  let resolution: Int
  var count: Int { images.count }
  var classNames: [String] { (0..<classes).map(String.init) }

  func sample(_ index: Int, epoch: Int) throws -> (pixels: [UInt8], label: Int) { images[index] }
}

extension TrainedClassifier {
  /// Measures `settings.count` samples of `generator` (image `i` of class
  /// `i % classes`) by `metrics`, the real images being the held-out split
  /// of `real` (the file's split when `real` is the file's data). The
  /// report always holds `count` and `classifier_held_out_accuracy`, then
  /// `sample_accuracy` and `sample_accuracy/<class name>`,
  /// `frechet_classifier_distance` and `classification_accuracy_score` as
  /// asked. FCD compares with `reference` when given (from
  /// `heldOutStatistics(of: real)`, for callers that score many generators
  /// against the same data), else with statistics computed here.
  /// `progress(stage)` names each stage as it starts.
  public func score(
    generator: Generator, _ settings: GenerationSettings, real: any ImageDataset, metrics: [ClassifierMetric],
    reference: FeatureStatistics? = nil, progress: (String) -> Void = { _ in }
  ) throws -> EvaluationReport {
    try checkScorable(generator: generator, real: real, count: settings.count)
    progress("sampling \(settings.count) images")
    var stream = GeneratedImageStream(generator, settings)
    var samples: [(pixels: [UInt8], label: Int)] = []
    let line = ProgressLine(total: settings.count, unit: "images")
    for start in stride(from: 0, to: settings.count, by: max(1, settings.batch)) {
      samples += try stream.images(start..<min(settings.count, start + max(1, settings.batch))).map { ($0.image.pixels, $0.label) }
      line.update(samples.count)
    }
    line.finish()
    var report = EvaluationReport()
    report.add("count", Double(samples.count))
    report.add("classifier_held_out_accuracy", record.heldOutAccuracy)
    let generated = try network.outputs(count: samples.count) { range in Array(samples[range]) }
    let heldOut = try ClassifierSplit(count: real.count, recipe: record.recipe).heldOut
    if metrics.contains(.accuracy) {
      report.add("sample_accuracy", ClassifierTraining.accuracy(generated.predictions, generated.labels))
      for k in 0..<record.classes {
        let mine = generated.labels.indices.filter { generated.labels[$0] == k }
        report.add(
          "sample_accuracy/\(record.classNames[k])",
          ClassifierTraining.accuracy(mine.map { generated.predictions[$0] }, mine.map { generated.labels[$0] }))
      }
    }
    if metrics.contains(.fcd) {
      let statistics: FeatureStatistics
      if let reference {
        statistics = reference
      } else {
        progress("classifier features of \(heldOut.count) real held-out images")
        statistics = try heldOutStatistics(of: real)
      }
      let distance = try FeatureStatistics(features: generated.features).frechetDistance(to: statistics)
      report.add("frechet_classifier_distance", distance)
    }
    if metrics.contains(.cas) {
      progress("classification accuracy score: training a classifier on the samples (\(record.recipe.steps) steps)")
      let line = ProgressLine(total: record.recipe.steps, unit: "steps")
      let onSamples = try ClassifierTraining.train(
        on: ImagesInMemory(images: samples, classes: record.classes, resolution: record.resolution),
        indices: Array(samples.indices), recipe: record.recipe
      ) { step, _ in line.update(step) }
      line.finish()
      report.add("classification_accuracy_score", try ClassifierTraining.accuracy(of: onSamples, on: real, indices: heldOut))
    }
    return report
  }

  /// The statistics of this classifier's features of `real`'s held-out
  /// images (the file's split): FCD's reference.
  public func heldOutStatistics(of real: any ImageDataset) throws -> FeatureStatistics {
    let heldOut = try ClassifierSplit(count: real.count, recipe: record.recipe).heldOut
    let features = try network.outputs(count: heldOut.count) { range in try range.map { try real.sample(heldOut[$0], epoch: 0) } }
    return try FeatureStatistics(features: features.features)
  }

  /// Refuses, in one line, a generator or real data this classifier cannot
  /// measure.
  func checkScorable(generator: Generator, real: any ImageDataset, count: Int) throws(EvaluationError) {
    let model = generator.configuration
    guard model.classes == record.classes, model.resolution == record.resolution else {
      throw EvaluationError(
        "the generator draws \(model.classes) classes at \(model.resolution) px but the classifier knows \(record.classes) classes at \(record.resolution) px (trained on \(record.data))")
    }
    guard real.classes == record.classes, real.resolution == record.resolution else {
      throw EvaluationError("the real data has \(real.classes) classes at \(real.resolution) px but the classifier knows \(record.classes) at \(record.resolution) px")
    }
    guard count >= 2 else { throw EvaluationError("classifier metrics: \(count) images; expected at least 2") }
    // Every sample's pixels and features are held until the metrics are computed.
    let perImage = record.resolution * record.resolution * 3 + 8 * network.widths[network.widths.count - 1]
    do { try MemoryBudget.require(Double(count) * Double(perImage), for: "\(count) images", "their pixels and classifier features") } catch {
      throw EvaluationError(error.description)
    }
  }
}
