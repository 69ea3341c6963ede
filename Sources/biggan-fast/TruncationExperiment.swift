import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// `biggan-fast experiment truncation`: the truncation trade-off of the
/// paper's Section 3.1 and Figure 2(a), G_ema's IS and FID over truncation
/// thresholds.
struct TruncationExperiment: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "truncation",
    abstract: "IS and FID (or a data classifier's accuracy and FCD) of G_ema over truncation thresholds (the paper's Figure 2(a)).",
    discussion: """
      Without --run or --checkpoint, trains a --config preset run into
      <out>/run first (or reuses the checkpoint an earlier call left there).
      Every threshold draws --count images from the same latent seed, so the
      sets differ by the truncation alone. Writes <out>/results.json,
      <out>/results.md (truncation, IS mean +- std, FID), <out>/tradeoff.png
      (IS against FID) and <out>/samples/truncation-T.png (the same latents
      at every threshold). Without --ref the reference statistics are
      computed from the run's data (--data, or what the run trained on) with
      the same Inception. With --classifier FILE (from biggan-fast
      classifier) instead of Inception, every threshold is scored by sample
      accuracy and FCD against the classifier's held-out real images.
      --quick shrinks everything to about a minute: a check of the
      pipeline, not a result.
      """)

  static let paperTruncations = "0.02,0.04,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0"

  /// The sizes of `--quick`, each overridden by its flag.
  enum Quick {
    static let steps = 20, batch = 8, count = 50
    static let truncations = "0.1,0.5,1.0"
  }

  @OptionGroup var generator: GeneratorSource
  @Option(help: "Preset to train when no --run or --checkpoint is given: \(TrainingPreset.names.joined(separator: ", ")).") var config: String = "tiny"
  @Option(parsing: .unconditional, help: "Training steps (default: the preset's).") var steps: Int?
  @Option(help: "Data to train on and to compute reference statistics from, as train --data takes it (default: the run's own, or 'builtin').") var data: String?
  @Option(help: "Reference statistics (.npz from biggan-fast stats); default: computed from the data.") var ref: String?
  @Option(parsing: .unconditional, help: "Images per threshold (and from the data for the reference); default 5000.") var count: Int?
  @Option(name: .customLong("truncations"), help: "Comma-separated truncation thresholds in (0, 1]; default the paper's \(paperTruncations).") var thresholdList: String?
  @Option(name: .customLong("truncation-mode"), help: "How latents are truncated.") var truncationMode: Truncation = .resample
  @Option(help: "Output folder.") var out: String = "experiments/truncation"
  @Option(parsing: .unconditional, help: "Random seed of the latents.") var seed: UInt64 = 0
  @Option(parsing: .unconditional, help: "Generator batch size.") var batch: Int = 50
  @Flag(help: "Sizes that finish in about a minute (\(Quick.steps) steps of batch \(Quick.batch), \(Quick.count) images, thresholds \(Quick.truncations)).") var quick = false
  @Option(help: "Measure with this data classifier (from biggan-fast classifier): sample accuracy and FCD instead of IS and FID.") var classifier: String?
  @OptionGroup var inception: InceptionOptions
  @OptionGroup var imageLimits: ImageOptions
  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    if generator.runName != nil && generator.checkpoint != nil { throw ValidationError("pass at most one of --run and --checkpoint") }
    _ = try thresholds()
    if generator.isGiven && steps != nil { throw ValidationError("--steps trains a new run; it does not go with --run or --checkpoint") }
    if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
    if let count, count < 10 { throw ValidationError("--count must be at least 10 (the Inception Score's splits), got \(count)") }
    guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
    if !generator.isGiven { _ = try preset(named: config) }
    if classifier != nil {
      if ref != nil { throw ValidationError("--ref goes with Inception, not --classifier (FCD compares with the classifier's held-out real images)") }
      return
    }
    guard inception.isGiven else {
      throw ValidationError("nothing to measure with: pass --classifier FILE (make one with biggan-fast classifier), or --inception FILE or set \(InceptionOptions.environmentVariable) (convert the published weights with tools/convert_inception.py)")
    }
  }

  func thresholds() throws -> [Double] {
    try truncations(thresholdList ?? (quick ? Quick.truncations : Self.paperTruncations), flag: "--truncations")
  }

  var imageCount: Int { count ?? (quick ? Quick.count : 5000) }

  func run() throws {
    Machine.keepLargeAllocations()
    compute.applyThreads()
    let thresholds = try thresholds()
    if let classifier { return try measure(with: classifier, at: thresholds) }
    // Everything that can be refused is read before any training.
    let extractor = try inception.extractor(precision: compute.precision)
    var reference = try ref.map { try ReferenceStatistics(contentsOf: $0) }
    // Without --ref, FID's statistics are computed below from the data.
    try checkEvaluable(
      count: imageCount, featureDimension: extractor.network.featureDimension, reference: reference,
      metrics: reference == nil ? [.is] : [.fid, .is])
    do { try FileError.createFolder((out as NSString).appendingPathComponent("samples")) } catch { throw ValidationError("--out \(error.description)") }

    let (g, source, trainedOn) = try generatorToScore()
    if reference == nil {
      let spec = data ?? trainedOn ?? "builtin"
      let images = try openImages(spec, resolution: g.configuration.resolution, maxPixels: imageLimits.maxImagePixels)
      let n = min(imageCount, images.count)
      StandardError.write("reference statistics: \(n) images of \(spec)\n")
      reference = try ReferenceStatistics(try extractor.features(of: images, count: n))
    }

    var settings = GenerationSettings(count: imageCount)
    settings.truncationMode = truncationMode
    settings.seed = seed
    settings.batch = batch
    // The extractor draws its own progress line over each threshold's
    // images; a line per threshold stays once it is scored.
    StandardError.write("scoring \(imageCount) images at each of \(thresholds.count) thresholds\n")
    var done = 0
    let rows = try extractor.truncationSweep(
      of: g, truncations: thresholds, settings, reference: reference, metrics: [.fid, .is]
    ) { t, _, report in
      try writeSheet(g, truncation: t)
      done += 1
      StandardError.write(String(
        format: "[%d/%d] truncation %g: IS %.3f +- %.3f, FID %.3f\n", done, thresholds.count, t,
        report["inception_score_mean"]!, report["inception_score_std"]!, report["frechet_inception_distance"]!))
    }
    try writeResults(rows, generator: source)
    print("wrote \(out)/results.json, results.md, tradeoff.png and samples/")
  }

  /// The sweep measured with the data classifier at `path`: sample
  /// accuracy and FCD per threshold, the classifier refused before any
  /// training when it cannot read the models' images.
  func measure(with path: String, at thresholds: [Double]) throws {
    let resolution = generator.isGiven ? try generator.file().model.resolution : try preset(named: config).model.resolution
    let scorer = try ClassifierScorer(path: path, data: data, resolution: resolution, maxPixels: imageLimits.maxImagePixels)
    do { try FileError.createFolder((out as NSString).appendingPathComponent("samples")) } catch { throw ValidationError("--out \(error.description)") }
    let (g, source, _) = try generatorToScore()
    var settings = GenerationSettings(count: imageCount)
    settings.truncationMode = truncationMode
    settings.seed = seed
    settings.batch = batch
    StandardError.write("scoring \(imageCount) images at each of \(thresholds.count) thresholds\n")
    var rows: [(truncation: Double, report: EvaluationReport)] = []
    for (i, t) in thresholds.enumerated() {
      settings.truncation = t
      let report = try scorer.report(g, settings)
      rows.append((t, report))
      try writeSheet(g, truncation: t)
      StandardError.write(String(
        format: "[%d/%d] truncation %g: accuracy %.4f, FCD %.3f\n", i + 1, thresholds.count, t,
        report["sample_accuracy"]!, report["frechet_classifier_distance"]!))
    }
    try writeResults(rows, generator: source, measuredWith: scorer)
    print("wrote \(out)/results.json, results.md, tradeoff.png and samples/")
  }

  /// G_ema to score, where it came from, and the data its run trained on
  /// (when known): `--run` or `--checkpoint`, or a run trained (or trained
  /// before) in `<out>/run`.
  func generatorToScore() throws -> (Generator, String, String?) {
    if generator.isGiven {
      let (g, folder) = try generator.generator(precision: compute.precision, batch: batch)
      let trainedOn = try generator.trainingRunFolder.flatMap { try Train.savedData(in: $0) }
      return (g, folder ?? generator.checkpoint!, trainedOn)
    }
    let folder = (out as NSString).appendingPathComponent("run")
    let lock = try RunFolderLock(folder: folder)
    defer { withExtendedLifetime(lock) {} }
    let checkpoints = (folder as NSString).appendingPathComponent("checkpoint")
    if let latest = Checkpoint.newestValid(in: checkpoints) {
      StandardError.write("using \(latest) (remove \(folder) to train again)\n")
      let file = try SafeTensorsFile(contentsOf: "\(latest)/G_ema.safetensors")
      let g = try GeneratorSource.generator(file, model: try Checkpoint.configuration(of: file), precision: compute.precision, batch: batch)
      return (g, latest, try Train.savedData(in: folder))
    }
    let run = try train(into: folder)
    let g = run.trainer.average
    g.precision = compute.precision
    return (g, Checkpoint.newestValid(in: checkpoints) ?? folder, data ?? "builtin")
  }

  /// The `--config` preset trained on `--data` into `folder`, as `train`
  /// would with `--steps` (and `--quick`'s batch).
  func train(into folder: String) throws -> TrainingRun {
    let preset = try preset(named: config)
    var model = preset.model, recipe = preset.recipe, schedule = preset.schedule
    if let steps { schedule.steps = steps } else if quick { schedule.steps = Quick.steps }
    if quick {
      recipe.batch = Quick.batch
      schedule.checkpointEvery = schedule.steps
      schedule.sampleEvery = schedule.steps
    }
    let spec = data ?? "builtin"
    let dataset = try Train.dataset(spec, resolution: model.resolution, seed: recipe.seed, maxPixels: imageLimits.maxImagePixels)
    model.classes = dataset.classes
    try MemoryBudget.require(model.estimatedTrainingBytes(batch: recipe.batch), for: "--config \(config)", "a training step")
    let run = try TrainingRun(model: model, recipe: recipe, schedule: schedule, dataset: dataset, folder: folder)
    let log = try RunLog(folder: folder, model: model, recipe: recipe, schedule: schedule, data: spec, resumedStep: nil)
    log.line("training \(config) for \(schedule.steps) steps in \(folder)")
    _ = try run.run(stopRequested: { false }) { log.report($0) }
    log.finish()
    return run
  }

  /// Rows of `columns` images of the first ten classes, the same latents at
  /// every threshold, as `samples/truncation-T.png`.
  func writeSheet(_ g: Generator, truncation t: Double) throws {
    let model = g.configuration, columns = 8
    let labels = ImageGrid.classRows(classes: model.classes, columns: columns)
    var rng = SeededRandom(seed: seed)
    let latents = truncationMode.latents(count: labels.count, dim: model.dimZ, truncation: Float(t), rng: &rng)
    let saved = g.truncation
    g.truncation = t
    defer { g.truncation = saved }
    let sheet = try ImageGrid.sheet(
      of: g, z: try Tensor(shape: [labels.count, model.dimZ], storage: latents), labels: labels, columns: columns, batch: batch)
    let path = (out as NSString).appendingPathComponent(String(format: "samples/truncation-%.2f.png", t))
    try PNG.write(sheet, to: path)
  }

  /// results.json, results.md and tradeoff.png, of IS and FID, or of the
  /// classifier's accuracy and FCD when `scorer` measured them.
  func writeResults(
    _ rows: [(truncation: Double, report: EvaluationReport)], generator source: String, measuredWith scorer: ClassifierScorer? = nil
  ) throws {
    let values = rows.map { row -> [String: Double] in
      var entry = ["truncation": row.truncation]
      for (key, value) in row.report.values where key != "count" { entry[key] = value }
      return entry
    }
    let results: [String: Any] = [
      "generator": source, "images": imageCount, "truncation_mode": truncationMode.rawValue, "seed": seed,
      "measured_with": scorer?.description ?? "the FID Inception network (\(inception.resize.rawValue) resize)",
      "reference": scorer == nil ? ref ?? "computed from the data" : "the classifier's held-out real images", "rows": values,
    ]
    try FileError.write(
      try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys]),
      to: (out as NSString).appendingPathComponent("results.json"))
    var lines = [
      "# Truncation trade-off", "",
      "\(generator.isGiven && generator.raw ? "G" : "G_ema") of \(source), \(imageCount) images per threshold (\(truncationMode.rawValue) truncation, seed \(seed)).", "",
      scorer == nil ? "| truncation | IS | FID |" : "| truncation | sample accuracy | FCD |", "|---|---|---|",
    ]
    for row in rows {
      lines.append(
        scorer == nil
          ? String(
            format: "| %g | %.3f ± %.3f | %.3f |", row.truncation, row.report["inception_score_mean"]!,
            row.report["inception_score_std"]!, row.report["frechet_inception_distance"]!)
          : String(format: "| %g | %.4f | %.3f |", row.truncation, row.report["sample_accuracy"]!, row.report["frechet_classifier_distance"]!))
    }
    if let scorer { lines += ["", "Measured with \(scorer.description)."] }
    try FileError.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: (out as NSString).appendingPathComponent("results.md"))
    let plot = (out as NSString).appendingPathComponent("tradeoff.png")
    if scorer == nil {
      try TradeoffPlot.write(rows, to: plot)
    } else {
      try TradeoffPlot.write(rows, x: ("sample_accuracy", "sample accuracy"), y: ("frechet_classifier_distance", "FCD"), to: plot)
    }
  }
}
