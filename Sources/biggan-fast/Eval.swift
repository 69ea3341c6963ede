import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// `biggan-fast eval`: FID, IS, KID, precision/recall and intra-class FID
/// of a generator, a folder of images or a statistics file.
struct Eval: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Score a generator, a folder of images or a statistics file with the FID Inception-v3, or a generator with a data classifier.",
    discussion: """
      Metrics (--metrics, comma-separated): fid (against --ref), is (Inception
      Score, 10 splits), kid (Kernel Inception Distance, 100 subsets of 1000,
      against the features in --ref), pr (precision and recall, 3 nearest
      neighbours), ifid (intra-class FID, the mean of per-class FIDs; needs
      labels in --ref). The values follow torch-fidelity's definitions, its
      random draws included, and its key names in --json.
      A generator draws --count images, classes in turn (image i is class
      i mod classes), latents from --seed with --truncation; images are
      quantised as PNG files are (round((x + 1) * 127.5)) before scoring, so
      eval --images on sample's PNGs gives the same numbers. For a --run the
      results are also appended to its metrics.jsonl.
      --truncation-sweep scores one set per truncation and writes the IS-FID
      trade-off (the paper's Figure 2(a)) as a table and --plot PNG.
      With --classifier FILE (from biggan-fast classifier) a generator is
      measured without Inception; metrics: accuracy (the share of samples
      of class y classified as y, overall and per class), fcd (Fréchet
      distance of the classifier's penultimate features, against the real
      held-out images), cas (Classification Accuracy Score: a classifier
      trained on the samples, tested on the real held-out images); default
      accuracy,fcd and --count 5000. The real images are the file's
      held-out split of its data, or of --data. Every result also reports
      the classifier's own held-out accuracy, the ceiling of the others.
      """)

  @OptionGroup var generator: GeneratorSource
  @Option(help: "Score a folder of PNG/JPEG images (any generator's) instead.") var images: String?
  @Option(help: "Compare this statistics file (.npz) with --ref instead (FID only).") var stats: String?
  @Option(help: "Reference statistics (.npz from biggan-fast stats or pytorch-fid).") var ref: String?
  @Option(help: "Metrics: fid, is, kid, pr, ifid, comma-separated (default fid,is); with --classifier: accuracy, fcd, cas (default accuracy,fcd).") var metrics: String?
  @Option(help: "Measure a generator with this data classifier (from biggan-fast classifier) instead of Inception.") var classifier: String?
  @Option(help: "With --classifier: the real data for fcd and cas, as train --data takes it (default: the classifier's own).") var data: String?
  @Option(parsing: .unconditional, help: "Images to generate (or the first N of --images).") var count: Int?
  @Option(parsing: .unconditional, help: "Truncation t in (0, 1].") var truncation: Double = 1
  @Option(name: .customLong("truncation-mode"), help: "How latents are truncated.") var truncationMode: Truncation = .resample
  @Option(name: .customLong("truncation-sweep"), help: "Comma-separated truncations: one evaluation each (IS-FID trade-off).") var truncationSweep: String?
  @Option(help: "With --truncation-sweep: write the IS-FID plot to this PNG file.") var plot: String?
  @Option(parsing: .unconditional, help: "Random seed of the latents.") var seed: UInt64 = 0
  @Option(parsing: .unconditional, help: "Generator batch size.") var batch: Int = 50
  @Option(name: .customLong("is-splits"), parsing: .unconditional, help: "Inception Score splits.") var isSplits: Int = 10
  @Option(name: .customLong("kid-subsets"), parsing: .unconditional, help: "KID subsets.") var kidSubsets: Int = 100
  @Option(name: .customLong("kid-subset-size"), parsing: .unconditional, help: "Images per KID subset.") var kidSubsetSize: Int = 1000
  @Option(name: .customLong("pr-neighbours"), parsing: .unconditional, help: "Nearest neighbours of precision/recall.") var prNeighbours: Int = 3
  @Option(name: .customLong("save-features"), help: "Also write the evaluated images' statistics and features (.npz).") var saveFeatures: String?
  @Flag(help: "Print one JSON object (an array with --truncation-sweep).") var json = false
  @OptionGroup var inception: InceptionOptions
  @OptionGroup var imageLimits: ImageOptions
  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    let sources = [generator.isGiven, images != nil, stats != nil].filter { $0 }.count
    guard sources == 1, !(generator.runName != nil && generator.checkpoint != nil) else {
      throw ValidationError("pass exactly one of --run, --checkpoint, --images and --stats")
    }
    if classifier != nil {
      guard generator.isGiven else { throw ValidationError("--classifier measures a generator: pass --run or --checkpoint") }
      if ref != nil || plot != nil || saveFeatures != nil {
        throw ValidationError("--ref, --plot and --save-features go with Inception metrics, not --classifier")
      }
      _ = try classifierMetricList()
    } else {
      if data != nil { throw ValidationError("--data goes with --classifier (Inception metrics compare with --ref)") }
      _ = try metricList()
    }
    _ = try sweepValues()
    guard truncation > 0 && truncation <= 1 else { throw ValidationError("--truncation must be in (0, 1], got \(truncation)") }
    if let count, count < 2 { throw ValidationError("--count must be at least 2, got \(count)") }
    guard batch >= 1, isSplits >= 1, kidSubsets >= 1, kidSubsetSize >= 2, prNeighbours >= 1 else {
      throw ValidationError("--batch, --is-splits, --kid-subsets and --pr-neighbours must be at least 1, --kid-subset-size at least 2")
    }
    if truncationSweep != nil && !generator.isGiven { throw ValidationError("--truncation-sweep needs a generator (--run or --checkpoint)") }
    if plot != nil && truncationSweep == nil { throw ValidationError("--plot goes with --truncation-sweep") }
    if stats != nil && ref == nil { throw ValidationError("--stats needs --ref (the FID between the two files)") }
  }

  func metricList() throws -> [EvaluationMetric] { try parsedMetrics(default: "fid,is", kind: "metric") }

  func classifierMetricList() throws -> [ClassifierMetric] {
    try parsedMetrics(default: "accuracy,fcd", kind: "classifier metric")
  }

  /// --metrics (or `defaultList`) as metrics of type `M`; a name that is
  /// none of them is one line listing the names.
  private func parsedMetrics<M: RawRepresentable & CaseIterable>(default defaultList: String, kind: String) throws -> [M]
  where M.RawValue == String {
    let names = M.allCases.map(\.rawValue)
    return try (metrics ?? defaultList).split(separator: ",").map { part in
      let name = part.trimmingCharacters(in: .whitespaces)
      guard let metric = M(rawValue: name) else {
        throw ValidationError("--metrics: '\(name)' is not a \(kind); expected \(names.dropLast().joined(separator: ", ")) or \(names.last!)")
      }
      return metric
    }
  }

  func sweepValues() throws -> [Double] {
    try truncationSweep.map { try truncations($0, flag: "--truncation-sweep") } ?? []
  }

  var metricSettings: MetricSettings {
    var s = MetricSettings()
    s.inceptionScoreSplits = isSplits
    s.kidSubsets = kidSubsets
    s.kidSubsetSize = kidSubsetSize
    s.neighbours = prNeighbours
    return s
  }

  func run() throws {
    Machine.keepLargeAllocations()
    compute.applyThreads()
    if let classifier { return try measure(with: classifier) }
    let reference = try ref.map { try ReferenceStatistics(contentsOf: $0) }
    if let stats {
      let mine = try ReferenceStatistics(contentsOf: stats)
      var report = EvaluationReport()
      report.values = [("frechet_inception_distance", try mine.statistics.frechetDistance(to: reference!.statistics))]
      print(format(report, extra: [:]))
      return
    }
    let metricList = try metricList()
    if metricList != [.is] && reference == nil {
      throw ValidationError("--ref is required for \(metricList.filter { $0 != .is }.map(\.rawValue).joined(separator: ", ")) (write one with biggan-fast stats)")
    }
    let extractor = try inception.extractor(precision: compute.precision)
    if let images {
      let source = try openImages(images, resolution: nil, maxPixels: imageLimits.maxImagePixels)
      if let count, count > source.count {
        throw ValidationError("--count \(count): \(images) has only \(source.count) images")
      }
      try checkEvaluable(
        count: count ?? source.count, featureDimension: extractor.network.featureDimension, reference: reference,
        metrics: metricList, settings: metricSettings)
      let extracted = try extractor.features(of: source, count: count)
      try save(extracted)
      print(format(try evaluate(extracted, reference: reference, metrics: metricList, settings: metricSettings), extra: [:]))
      return
    }
    try checkEvaluable(
      count: count ?? 50_000, featureDimension: extractor.network.featureDimension, reference: reference,
      metrics: metricList, settings: metricSettings)
    let (g, folder) = try generator.generator(precision: compute.precision, batch: batch)
    let sweep = try sweepValues()
    var settings = GenerationSettings(count: count ?? 50_000)
    settings.truncationMode = truncationMode
    settings.seed = seed
    settings.batch = batch
    let rows = try extractor.truncationSweep(
      of: g, truncations: sweep.isEmpty ? [truncation] : sweep, settings, reference: reference, metrics: metricList,
      metricSettings: metricSettings
    ) { t, extracted, report in
      guard sweep.isEmpty else { return }
      try save(extracted)
      if !json { print(format(report, extra: ["truncation": t])) }
    }
    if !sweep.isEmpty {
      if !json { print(sweepTable(rows)) }
      if json { print("[" + rows.map { format($0.report, extra: ["truncation": $0.truncation]) }.joined(separator: ",\n") + "]") }
      if let plot {
        try TradeoffPlot.write(rows.map { ($0.truncation, $0.report) }, to: plot)
        if !json { print("wrote \(plot)") }
      }
    }
    try appendToRun(rows, checkpoint: folder, extra: ["resize": inception.resize.rawValue])
  }

  /// Samples the generator and measures the samples with the classifier
  /// at `path`, per truncation; a --run's metrics.jsonl gets the results.
  func measure(with path: String) throws {
    let classifier = try TrainedClassifier(contentsOf: path)
    let record = classifier.record
    let real = try Classifier.realData(of: record, data: data, maxPixels: imageLimits.maxImagePixels)
    let (g, folder) = try generator.generator(precision: compute.precision, batch: batch)
    let sweep = try sweepValues()
    var rows: [(truncation: Double, report: EvaluationReport)] = []
    for t in sweep.isEmpty ? [truncation] : sweep {
      var settings = GenerationSettings(count: count ?? 5000)
      settings.truncation = t
      settings.truncationMode = truncationMode
      settings.seed = seed
      settings.batch = batch
      let report = try classifier.score(generator: g, settings, real: real, metrics: try classifierMetricList()) {
        StandardError.write("\($0)\n")
      }
      rows.append((t, report))
      if sweep.isEmpty || json { continue }
      let values = Self.withoutPerClass(report).values.map { "\($0.key) \(String(format: "%.4g", $0.value))" }
      StandardError.write(String(format: "truncation %g: %@\n", t, values.joined(separator: ", ")))
    }
    if sweep.isEmpty {
      print(format(rows[0].report, extra: ["truncation": truncation]))
    } else if json {
      print("[" + rows.map { format($0.report, extra: ["truncation": $0.truncation]) }.joined(separator: ",\n") + "]")
    } else {
      print(sweepTable(rows.map { ($0.truncation, Self.withoutPerClass($0.report)) }))
    }
    try appendToRun(rows, checkpoint: folder, extra: ["classifier": path])
  }

  /// `report` without its per-class values, for a table.
  static func withoutPerClass(_ report: EvaluationReport) -> EvaluationReport {
    var out = EvaluationReport()
    out.values = report.values.filter { !$0.key.contains("/") }
    return out
  }

  func save(_ extracted: InceptionFeatures) throws {
    guard let saveFeatures else { return }
    try ReferenceStatistics(extracted, keepLogits: true).write(to: saveFeatures)
  }

  /// One line per metric, or a JSON object with `--json`.
  func format(_ report: EvaluationReport, extra: [String: Double]) -> String {
    if json {
      var fields = extra.map { "\"\($0.key)\": \($0.value)" }
      fields += report.values.map { "\"\($0.key)\": \($0.key == "count" ? String(Int($0.value)) : String($0.value))" }
      return "{" + fields.joined(separator: ", ") + "}"
    }
    var lines = extra.map { "\($0.key): \($0.value)" }
    lines += report.values.map { "\($0.key): \($0.key == "count" ? String(Int($0.value)) : String(format: "%.6g", $0.value))" }
    return lines.joined(separator: "\n")
  }

  /// The sweep as a Markdown table: one row per truncation, one column per
  /// value.
  func sweepTable(_ rows: [(truncation: Double, report: EvaluationReport)]) -> String {
    let keys = rows[0].report.values.map(\.key).filter { $0 != "count" }
    var lines = ["| truncation | " + keys.joined(separator: " | ") + " |", "|---" + String(repeating: "|---", count: keys.count) + "|"]
    for row in rows {
      lines.append("| \(row.truncation) | " + keys.map { String(format: "%.4f", row.report[$0] ?? .nan) }.joined(separator: " | ") + " |")
    }
    return lines.joined(separator: "\n")
  }

  /// Appends `{"step", "eval": {...}}` per row to a --run's metrics.jsonl
  /// (nothing for a --checkpoint): the row's report and truncation, and
  /// `extra` (how it was measured); the step is the checkpoint folder's.
  func appendToRun(_ rows: [(truncation: Double, report: EvaluationReport)], checkpoint folder: String?, extra: [String: Any]) throws {
    guard let runFolder = generator.runFolder, let folder else { return }
    let step = Int((folder as NSString).lastPathComponent.dropFirst("step-".count)) ?? -1
    let file = try MetricsFile(path: (runFolder as NSString).appendingPathComponent("metrics.jsonl"))
    for row in rows {
      var values = extra
      values["truncation"] = row.truncation
      for (key, value) in row.report.values { values[key] = value }
      file.record(["step": step, "eval": values])
    }
  }
}
