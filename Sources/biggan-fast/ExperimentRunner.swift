import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// One configuration an experiment trains: its run folder name, its legend
/// label, the `train` flags that make it and its length.
struct ExperimentArm {
  var name: String
  var label: String
  var flags: [String]
  var steps: Int
  var seed: UInt64
}

/// G_ema of one checkpoint of an arm, measured.
struct CheckpointScore {
  var step: Int
  /// Real images D has seen by this step (batch x accumulate x D steps
  /// per G step), the x axis that compares batch sizes at equal compute.
  var images: Int
  var distance: Double
  var score: Double
  var values: [String: Double]
}

/// What an experiment measures a generator with: a distance to the real
/// data (lower is better: FID, or FCD with a data classifier) and a score
/// (higher is better: IS, or the classifier's sample accuracy).
protocol ExperimentScorer {
  var distanceName: String { get }
  var scoreName: String { get }
  /// How the numbers were made, for results.md.
  var description: String { get }
  func measure(_ generator: Generator, _ settings: GenerationSettings) throws -> (distance: Double, score: Double, values: [String: Double])
}

/// FID and IS with the Inception network against reference statistics.
struct InceptionScorer: ExperimentScorer {
  let extractor: InceptionExtractor
  let reference: ReferenceStatistics
  var distanceName: String { "FID" }
  var scoreName: String { "IS" }
  var description: String { "FID and IS with the FID Inception network (\(extractor.resize.rawValue) resize)" }

  func measure(_ generator: Generator, _ settings: GenerationSettings) throws -> (distance: Double, score: Double, values: [String: Double]) {
    let report = try evaluate(try extractor.features(of: generator, settings), reference: reference, metrics: [.fid, .is])
    return (report["frechet_inception_distance"]!, report["inception_score_mean"]!, Dictionary(report.values, uniquingKeysWith: { a, _ in a }))
  }
}

/// FCD and sample accuracy with a data classifier (from `biggan-fast
/// classifier`), the real images being the held-out split of the data.
struct ClassifierScorer: ExperimentScorer {
  let classifier: TrainedClassifier
  let path: String
  let real: any ImageDataset
  /// FCD's reference, computed once for every checkpoint the experiment measures.
  let reference: FeatureStatistics
  var distanceName: String { "FCD" }
  var scoreName: String { "accuracy" }
  var description: String {
    String(format: "FCD and sample accuracy with the data classifier %@ (%.2f%% held-out accuracy on %@)", path, classifier.record.heldOutAccuracy * 100, classifier.record.data)
  }

  /// The classifier at `path`, refused before any training unless it reads
  /// `resolution`-px images of `data`'s classes.
  init(path: String, data: String?, resolution: Int, maxPixels: Int) throws {
    classifier = try TrainedClassifier(contentsOf: path)
    self.path = path
    let record = classifier.record
    guard record.resolution == resolution else {
      throw ValidationError("--classifier \(path): it reads \(record.resolution) px images but the models draw \(resolution) px")
    }
    real = try Classifier.realData(of: record, data: data, maxPixels: maxPixels)
    guard real.classes == record.classes else {
      throw ValidationError("--classifier \(path): it knows \(record.classes) classes but --data \(data ?? record.data) has \(real.classes)")
    }
    reference = try classifier.heldOutStatistics(of: real)
  }

  /// Sample accuracy and FCD of `generator`'s images.
  func report(_ generator: Generator, _ settings: GenerationSettings) throws -> EvaluationReport {
    try classifier.score(generator: generator, settings, real: real, metrics: [.accuracy, .fcd], reference: reference)
  }

  func measure(_ generator: Generator, _ settings: GenerationSettings) throws -> (distance: Double, score: Double, values: [String: Double]) {
    let report = try report(generator, settings)
    return (report["frechet_classifier_distance"]!, report["sample_accuracy"]!, Dictionary(report.values, uniquingKeysWith: { a, _ in a }))
  }
}

/// The options every training experiment shares: what to train, how long,
/// how many seeds, and how to measure.
struct ExperimentOptions: ParsableArguments {
  @Option(help: "Preset the arms start from: \(TrainingPreset.names.joined(separator: ", ")).") var config: String = "tiny"
  @Option(help: "Data, as train --data takes it (default: builtin).") var data: String = "builtin"
  @Option(parsing: .unconditional, help: "Training steps of the reference arm (default: the experiment's).") var steps: Int?
  @Option(parsing: .unconditional, help: "Seeds per arm (default: the experiment's).") var seeds: Int?
  @Option(parsing: .unconditional, help: "Images per measurement (default 2000, --quick 100).") var count: Int?
  @Option(parsing: .unconditional, help: "Checkpoints measured per arm over its run (default 6, --quick 2).") var points: Int?
  @Option(help: "Measure with this data classifier (from biggan-fast classifier): FCD and sample accuracy.") var classifier: String?
  @Option(help: "With Inception: reference statistics (.npz); default computed from --data.") var ref: String?
  @Flag(help: "Sizes that finish in minutes: a check of the pipeline, not a result.") var quick = false
  @OptionGroup var inception: InceptionOptions
  @OptionGroup var imageLimits: ImageOptions
  @OptionGroup var compute: ComputeOptions
  @Option(parsing: .unconditional, help: ArgumentHelp(
    "Runs trained at once, each in its own process with --threads threads (default 1 each); 1: one after another in this process.",
    discussion: "On a machine with N cores, --jobs N trains N arms side by side, each progress log in <out>/runs/<arm>.log.")) var jobs: Int = 1

  func validate() throws {
    if let steps, steps < 2 { throw ValidationError("--steps must be at least 2, got \(steps)") }
    if let seeds, seeds < 1 { throw ValidationError("--seeds must be at least 1, got \(seeds)") }
    if let count, count < 10 { throw ValidationError("--count must be at least 10, got \(count)") }
    if let points, points < 1 { throw ValidationError("--points must be at least 1, got \(points)") }
    if jobs < 1 { throw ValidationError("--jobs must be at least 1, got \(jobs)") }
    _ = try preset(named: config)
    guard classifier != nil || inception.isGiven else {
      throw ValidationError("nothing to measure with: pass --classifier FILE (make one with biggan-fast classifier) or --inception FILE")
    }
  }

  var imageCount: Int { count ?? (quick ? 100 : 2000) }
  var measuredPoints: Int { points ?? (quick ? 2 : 6) }
  func seedCount(default value: Int) -> Int { seeds ?? (quick ? 1 : value) }
  func stepCount(default value: Int) -> Int { steps ?? (quick ? 8 : value) }
  /// The batch every arm trains with: the preset's, or 8 with --quick.
  var batch: Int { quick ? Self.quickBatch : ((try? preset(named: config))?.recipe.batch ?? 0) }
  static let quickBatch = 8

  /// The scorer the flags ask for (the classifier when one is given),
  /// refused before any training when it cannot work.
  func scorer(resolution: Int) throws -> any ExperimentScorer {
    if let classifier {
      return try ClassifierScorer(path: classifier, data: data, resolution: resolution, maxPixels: imageLimits.maxImagePixels)
    }
    let extractor = try inception.extractor(precision: compute.precision)
    let reference: ReferenceStatistics
    if let ref {
      reference = try ReferenceStatistics(contentsOf: ref)
    } else {
      let images = try openImages(data, resolution: resolution, maxPixels: imageLimits.maxImagePixels)
      let n = min(imageCount, images.count)
      StandardError.write("reference statistics: \(n) images of \(data)\n")
      reference = try ReferenceStatistics(try extractor.features(of: images, count: n))
    }
    return InceptionScorer(extractor: extractor, reference: reference)
  }
}

/// Trains an experiment's arms with `train` itself (so every run folder is
/// an ordinary run: resumable, sampled, logged) and measures their
/// checkpoints. A second call reuses finished arms and resumes interrupted
/// ones, so a long experiment survives being stopped.
struct ExperimentRunner {
  let options: ExperimentOptions
  let out: String
  let scorer: any ExperimentScorer
  var runs: String { (out as NSString).appendingPathComponent("runs") }

  /// Prepares the process (threads, allocator) and `out`, and the scorer.
  init(options: ExperimentOptions, out: String) throws {
    Machine.keepLargeAllocations()
    options.compute.applyThreads()
    self.options = options
    self.out = out
    do { try FileError.createFolder((out as NSString).appendingPathComponent("runs")) } catch { throw ValidationError("--out \(error.description)") }
    scorer = try options.scorer(resolution: try preset(named: options.config).model.resolution)
  }

  func folder(of arm: ExperimentArm) -> String { (runs as NSString).appendingPathComponent(arm.name) }

  /// Trains `arm` to its last step, unless an earlier call already did.
  func train(_ arm: ExperimentArm) throws {
    guard let arguments = try trainArguments(arm, threads: options.compute.threads) else { return }
    StandardError.write("\(describe(arm))\n")
    let command = try Train.parse(arguments)
    try command.run()
  }

  /// Trains every arm of `arms` to its last step: one after another in
  /// this process, or with --jobs N, up to N at once in processes of their
  /// own (ParallelTraining), each with --threads threads (default 1).
  func train(_ arms: [ExperimentArm]) throws {
    guard options.jobs > 1 else {
      for arm in arms { try train(arm) }
      return
    }
    let jobs = try arms.compactMap { arm in
      try trainArguments(arm, threads: options.compute.threads ?? 1).map {
        ParallelTraining.Job(
          name: arm.name, description: describe(arm), arguments: $0,
          log: (runs as NSString).appendingPathComponent("\(arm.name).log"))
      }
    }
    try ParallelTraining().run(jobs, width: options.jobs)
  }

  /// The `train` arguments that take `arm` to its last step, or nil when an
  /// earlier call already did.
  private func trainArguments(_ arm: ExperimentArm, threads: Int?) throws -> [String]? {
    let checkpoints = (folder(of: arm) as NSString).appendingPathComponent("checkpoint")
    let latest = Checkpoint.newestValid(in: checkpoints)
    if let latest, try Checkpoint.state(at: latest).step >= arm.steps {
      StandardError.write("\(arm.name): trained (remove \(folder(of: arm)) to train again)\n")
      return nil
    }
    let every = max(1, arm.steps / options.measuredPoints)
    var arguments = [
      "--config", options.config, "--data", options.data, "--runs", runs, "--run", arm.name,
      "--steps", String(arm.steps), "--seed", String(arm.seed), "--checkpoint-every", String(every),
      "--keep", String(arm.steps / every + 1), "--sample-every", String(every), "--precision", options.compute.precision.rawValue,
    ]
    if options.quick { arguments += ["--batch", String(ExperimentOptions.quickBatch), "--log-every", "1"] }
    if let threads { arguments += ["--threads", String(threads)] }
    if latest != nil { arguments.append("--resume") }
    return arguments + arm.flags
  }

  private func describe(_ arm: ExperimentArm) -> String {
    "\(arm.name): training \(arm.steps) steps (\(arm.flags.joined(separator: " ")))"
  }

  /// Every checkpoint of `arm`'s run, G_ema measured on the same latents.
  func scores(of arm: ExperimentArm, truncation: Double = 1) throws -> [CheckpointScore] {
    let checkpoints = Checkpoint.all(in: (folder(of: arm) as NSString).appendingPathComponent("checkpoint"))
    return try checkpoints.map { path in
      let state = try Checkpoint.state(at: path)
      let g = try generator(at: path)
      var settings = GenerationSettings(count: options.imageCount)
      settings.truncation = truncation
      let (distance, score, values) = try scorer.measure(g, settings)
      let perStep = state.recipe.batch * state.recipe.accumulate * state.recipe.discriminatorSteps
      StandardError.write(String(format: "%@ step %d: %@ %.3f, %@ %.3f\n", arm.name, state.step, scorer.distanceName, distance, scorer.scoreName, score))
      return CheckpointScore(step: state.step, images: state.step * perStep, distance: distance, score: score, values: values)
    }
  }

  /// G_ema of the checkpoint at `path`.
  func generator(at path: String) throws -> Generator {
    let file = try SafeTensorsFile(contentsOf: "\(path)/G_ema.safetensors")
    return try GeneratorSource.generator(file, model: try Checkpoint.configuration(of: file), precision: options.compute.precision, batch: 50)
  }

  /// The objects of `arm`'s metrics.jsonl, in order.
  func metrics(of arm: ExperimentArm) throws -> [[String: Any]] {
    let path = (folder(of: arm) as NSString).appendingPathComponent("metrics.jsonl")
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
  }

  /// `results.json` (`value` with the scorer's names) and `results.md`.
  func writeResults(_ value: [String: Any], markdown lines: [String]) throws {
    var results = value
    results["measured_with"] = scorer.description
    results["images_per_measurement"] = options.imageCount
    results["config"] = options.config
    results["data"] = options.data
    results["quick"] = options.quick
    try FileError.write(
      try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys]),
      to: (out as NSString).appendingPathComponent("results.json"))
    let footer = ["", "Measured with \(scorer.description), \(options.imageCount) images per measurement; \(options.config) preset on \(options.data)\(options.quick ? " (--quick: a pipeline check, not a result)" : "")."]
    try FileError.write(Data(((lines + footer).joined(separator: "\n") + "\n").utf8), to: (out as NSString).appendingPathComponent("results.md"))
  }
}

/// Mean and sample standard deviation (0 for one value).
func meanAndDeviation(_ values: [Double]) -> (mean: Double, deviation: Double) {
  let mean = values.reduce(0, +) / Double(max(values.count, 1))
  guard values.count > 1 else { return (mean, 0) }
  let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)
  return (mean, variance.squareRoot())
}
