import ArgumentParser
import BGKernels
import BigGAN
import Dispatch
import Foundation

/// `biggan-fast train`: the paper's training recipe with checkpoints,
/// metrics and samples in a run folder.
struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train BigGAN (the built-in shapes data by default).",
    discussion: """
      Presets (--config): \(TrainingRecipe.presets.keys.sorted().map { "\($0): \(TrainingRecipe.presets[$0]!.summary)" }.joined(separator: "; ")).
      Every recipe value can be overridden by its flag. The run folder holds
      config.json, metrics.jsonl, samples/ and checkpoint/; --resume
      continues from the newest checkpoint exactly where it stopped.
      SIGINT or SIGTERM writes a checkpoint before exiting.
      """)

  @Option(help: "Preset: \(TrainingRecipe.presets.keys.sorted().joined(separator: ", ")).")
  var config: String = "tiny"

  @Option(help: "Data: 'builtin' (generated shapes, the default), a folder with one sub-folder of PNG/JPEG images per class, or cifar10:FOLDER (the binary data_batch_*.bin files). A resumed run keeps its own.")
  var data: String?

  @Flag(name: .customLong("change-data"), help: "With --resume: continue on the --data given instead of the run's own.")
  var changeData = false

  @Flag(help: "Mirror images at random (folder data).") var flip = false
  @Flag(name: .customLong("skip-bad"), help: "Skip unreadable images (reported by path) instead of stopping.") var skipBad = false
  @Option(name: .customLong("held-out"), parsing: .unconditional, help: "Share of the real data held out to watch D overfit (0 disables).") var heldOut: Float?
  @Option(name: .customLong("sv-every"), parsing: .unconditional, help: "Steps between singular-value logs of every weight.") var svEvery: Int?
  @Option(name: .customLong("collapse-factor"), parsing: .unconditional, help: "Warn when D's loss or a spectral norm exceeds this many times its running average.") var collapseFactor: Float?

  @Option(name: .customLong("run"), help: "Run name: the run folder is <runs>/<run> (default: the config name).")
  var runName: String?

  @Option(help: "Folder that holds run folders.")
  var runs: String = "runs"

  @Flag(help: "Continue the run from its newest checkpoint.")
  var resume = false

  @Option(parsing: .unconditional, help: "Total training steps (G steps).") var steps: Int?
  @Option(parsing: .unconditional, help: "Batch size per accumulation.") var batch: Int?
  @Option(parsing: .unconditional, help: "Batches accumulated per optimizer step (G and D).") var accumulate: Int?
  @Option(name: .customLong("d-steps"), parsing: .unconditional, help: "D steps per G step.") var dSteps: Int?
  @Option(name: .customLong("g-lr"), parsing: .unconditional, help: "Generator learning rate.") var gLR: Float?
  @Option(name: .customLong("d-lr"), parsing: .unconditional, help: "Discriminator learning rate.") var dLR: Float?
  @Option(name: .customLong("adam-eps"), parsing: .unconditional, help: "Adam epsilon.") var adamEps: Float?
  @Option(parsing: .unconditional, help: "Orthogonal regularisation strength on G (0 disables).") var ortho: Float?
  @Option(name: .customLong("ema-decay"), parsing: .unconditional, help: "Decay of G's moving average.") var emaDecay: Float?
  @Option(name: .customLong("ema-start"), parsing: .unconditional, help: "Step from which the average decays (a copy before).") var emaStart: Int?
  @Option(help: "Precision of every product: fp32 or bf16.") var precision: Precision?
  @Option(help: "Weight initialisation: ortho (BigGAN's) or N02 (normal, std 0.02).") var initialization: String?
  @Option(parsing: .unconditional, help: "Threads (default: OMP_NUM_THREADS or one per core).") var threads: Int?
  @Option(parsing: .unconditional, help: "Random seed of initialisation, latents and data order.") var seed: UInt64?
  @Option(name: .customLong("log-every"), parsing: .unconditional, help: "Steps between metrics lines.") var logEvery: Int?
  @Option(name: .customLong("sample-every"), parsing: .unconditional, help: "Steps between sample grids.") var sampleEvery: Int?
  @Option(name: .customLong("checkpoint-every"), parsing: .unconditional, help: "Steps between checkpoints.") var checkpointEvery: Int?
  @Option(parsing: .unconditional, help: "Checkpoints kept.") var keep: Int?
  @Option(name: .customLong("eval-every"), parsing: .unconditional, help: "Steps between FID/IS evaluations of G_ema, logged to metrics.jsonl; the best-FID checkpoint is kept in checkpoint/best (needs --ref and Inception weights).") var evalEvery: Int?
  @Option(name: .customLong("eval-count"), parsing: .unconditional, help: "Images generated per evaluation.") var evalCount: Int = 5000
  @Option(help: "Reference statistics for --eval-every (.npz from biggan-fast stats).") var ref: String?
  @OptionGroup var inception: InceptionOptions
  @OptionGroup var imageLimits: ImageOptions

  func validate() throws {
    guard TrainingRecipe.presets[config] != nil else {
      throw ValidationError("unknown config '\(config)'; expected one of \(TrainingRecipe.presets.keys.sorted().joined(separator: ", "))")
    }
    if let heldOut, !(heldOut >= 0 && heldOut < 1) { throw ValidationError("--held-out must be in [0, 1), got \(heldOut)") }
    if let svEvery, svEvery < 1 { throw ValidationError("--sv-every must be at least 1, got \(svEvery)") }
    if let initialization, !["ortho", "N02"].contains(initialization) {
      throw ValidationError("--initialization must be ortho or N02, got '\(initialization)'")
    }
    if let collapseFactor, !(collapseFactor > 1) { throw ValidationError("--collapse-factor must be above 1, got \(collapseFactor)") }
    for (flag, v) in [("--steps", steps), ("--batch", batch), ("--accumulate", accumulate), ("--d-steps", dSteps), ("--threads", threads), ("--log-every", logEvery), ("--sample-every", sampleEvery), ("--checkpoint-every", checkpointEvery), ("--keep", keep)] {
      if let v, v < 1 { throw ValidationError("\(flag) must be at least 1, got \(v)") }
    }
    for (flag, v) in [("--g-lr", gLR), ("--d-lr", dLR), ("--adam-eps", adamEps)] {
      if let v, !(v > 0) { throw ValidationError("\(flag) must be positive, got \(v)") }
    }
    if let ortho, !(ortho >= 0) { throw ValidationError("--ortho must be at least 0, got \(ortho)") }
    if let emaDecay, !(emaDecay >= 0 && emaDecay < 1) { throw ValidationError("--ema-decay must be in [0, 1), got \(emaDecay)") }
    if let emaStart, emaStart < 0 { throw ValidationError("--ema-start must be at least 0, got \(emaStart)") }
    if let evalEvery {
      guard evalEvery >= 1 else { throw ValidationError("--eval-every must be at least 1, got \(evalEvery)") }
      guard ref != nil else { throw ValidationError("--eval-every needs --ref (reference statistics from biggan-fast stats)") }
    }
    guard evalCount >= 2 else { throw ValidationError("--eval-count must be at least 2, got \(evalCount)") }
  }

  /// The data set a `--data` spec names, at `resolution`: 'builtin',
  /// cifar10:FOLDER or a folder of class sub-folders.
  static func dataset(
    _ data: String, resolution: Int, seed: UInt64, flip: Bool = false, skipBad: Bool = false,
    maxPixels: Int = ImageFile.defaultMaxPixels
  ) throws -> any ImageDataset {
    if data == "builtin" { return ShapesDataset(resolution: resolution, seed: seed) }
    if data.hasPrefix("cifar10:") {
      guard resolution == 32 else {
        throw ValidationError("--data \(data): CIFAR-10 is 32 px but the model is \(resolution) px")
      }
      return try CIFAR10Dataset(folder: String(data.dropFirst("cifar10:".count)))
    }
    return try FolderDataset(root: data, resolution: resolution, flip: flip, skipBad: skipBad, maxPixels: maxPixels)
  }

  /// The data a run trained on, as its config.json records it (nil when
  /// the run has no config.json); a config.json that is not the run's
  /// configuration is an error, not a silent switch to other data.
  static func savedData(in folder: String) throws -> String? {
    let path = (folder as NSString).appendingPathComponent("config.json")
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    let object = try FileError.wrapping(path, cannot: "read the run's configuration") {
      try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path)))
    }
    guard let configuration = object as? [String: Any] else {
      throw ValidationError("\(path): not a run's configuration (a JSON object); restore it or start another --run")
    }
    return configuration["data"] as? String
  }

  func recipe(from base: TrainingRecipe) -> TrainingRecipe {
    var r = base
    if let steps { r.steps = steps }
    if let batch { r.batch = batch }
    if let accumulate { r.accumulate = accumulate }
    if let dSteps { r.discriminatorSteps = dSteps }
    if let gLR { r.generatorLearningRate = gLR }
    if let dLR { r.discriminatorLearningRate = dLR }
    if let adamEps { r.adamEpsilon = adamEps }
    if let ortho { r.orthogonalStrength = ortho }
    if let emaDecay { r.emaDecay = emaDecay }
    if let emaStart { r.emaStart = emaStart }
    if let precision { r.precision = precision.rawValue }
    if let seed { r.seed = seed }
    if let logEvery { r.logEvery = logEvery }
    if let sampleEvery { r.sampleEvery = sampleEvery }
    if let checkpointEvery { r.checkpointEvery = checkpointEvery }
    if let keep { r.keepCheckpoints = keep }
    if let heldOut { r.heldOut = heldOut }
    if let svEvery { r.singularValueEvery = svEvery }
    if let collapseFactor { r.collapseFactor = collapseFactor }
    return r
  }

  func run() throws {
    Machine.keepLargeAllocations()
    if let threads { Machine.threads = threads }
    let preset = TrainingRecipe.presets[config]!
    let folder = (runs as NSString).appendingPathComponent(runName ?? config)
    let checkpoints = (folder as NSString).appendingPathComponent("checkpoint")
    guard !(runName ?? config).isEmpty, !(runName ?? config).contains("/") else {
      throw ValidationError("--run '\(runName ?? "")': expected a non-empty name without '/'")
    }
    // Held until the process ends: a second train on this run stops here.
    let lock = try RunFolderLock(folder: folder)
    defer { withExtendedLifetime(lock) {} }
    Checkpoint.removeStale(in: checkpoints)
    let existing = Checkpoint.all(in: checkpoints)
    var model = preset.model, recipe = recipe(from: preset.recipe)
    var resumeFrom: String?
    var position = DataPosition()
    var data = self.data ?? "builtin"
    if resume {
      guard let latest = Checkpoint.newestValid(in: checkpoints, skipped: { StandardError.write("skipping \($0)\n") }) else {
        throw ValidationError("--resume: no complete checkpoint in \(checkpoints); train without --resume first")
      }
      if let saved = try Self.savedData(in: folder) {
        if let asked = self.data, asked != saved, !changeData {
          throw ValidationError("--data \(asked): this run trained on \(saved); resume without --data, or pass --change-data to switch")
        }
        data = changeData ? (self.data ?? saved) : saved
      }
      let state = try Checkpoint.state(at: latest)
      model = state.model
      var r = self.recipe(from: state.recipe)
      // A resumed run keeps its data and model seeds whatever the flags say.
      r.seed = state.recipe.seed
      recipe = r
      position = state.data
      resumeFrom = latest
    } else if let initialization {
      model.initialization = initialization == "ortho" ? .orthogonal : .normal(std: 0.02)
    }
    if resumeFrom == nil && !existing.isEmpty {
      throw ValidationError("\(folder) already has checkpoints; pass --resume to continue it or --run to start another")
    }
    let dataset = try Self.dataset(data, resolution: model.resolution, seed: recipe.seed, flip: flip, skipBad: skipBad, maxPixels: imageLimits.maxImagePixels)
    if dataset.classes != model.classes {
      guard resumeFrom == nil else {
        throw ValidationError("--data \(data) has \(dataset.classes) classes but the checkpoint's model has \(model.classes)")
      }
      model.classes = dataset.classes
    }
    // A seeded slice of the data is held out to watch D overfit.
    var order = Array(0..<dataset.count)
    var splitRandom = SeededRandom(seed: recipe.seed &+ 5)
    order.shuffle(using: &splitRandom)
    // A data set of one image has nothing to hold out.
    let heldCount = recipe.heldOut > 0 && dataset.count >= 2
      ? max(1, min(dataset.count - 1, Int(Float(dataset.count) * recipe.heldOut))) : 0
    let heldIndices = Array(order[0..<heldCount]), trainIndices = Array(order[heldCount...])
    try MemoryBudget.require(model.estimatedTrainingBytes(batch: recipe.batch), for: "--batch \(recipe.batch)", "a training step of \(config)")
    let trainer = try Trainer(model: model, recipe: recipe, dataset: dataset, indices: trainIndices, position: position)
    if let resumeFrom { try Checkpoint.restore(trainer, from: resumeFrom) }
    let log = try RunLog(folder: folder, model: model, recipe: recipe, data: data, resumedStep: resumeFrom == nil ? nil : trainer.step)
    try FileError.write(
      try JSONSerialization.data(withJSONObject: dataset.classNames, options: [.prettyPrinted]),
      to: (folder as NSString).appendingPathComponent("classes.json"))
    func fixedBatch(_ indices: [Int]) throws -> (Tensor, [Int])? {
      guard !indices.isEmpty else { return nil }
      let n = min(recipe.batch, indices.count), r = model.resolution
      var images = Tensor(shape: [n, r, r, 3])
      var labels: [Int] = []
      for (b, i) in indices.prefix(n).enumerated() {
        let (pixels, label) = try dataset.sample(i, epoch: 0)
        for j in 0..<pixels.count { images.storage[b * pixels.count + j] = Float(pixels[j]) / 127.5 - 1 }
        labels.append(label)
      }
      return (images, labels)
    }
    let heldBatch = try fixedBatch(heldIndices), trainBatch = try fixedBatch(trainIndices)
    // Evaluation draws from its own seeded latents and runs G_ema in
    // inference mode, so it changes no training state: the run's bits are
    // those of a run without it.
    let evaluation = try evalEvery.map { every in
      let extractor = try inception.extractor(precision: .fp32), reference = try ReferenceStatistics(contentsOf: ref!)
      try checkEvaluable(count: evalCount, featureDimension: extractor.network.featureDimension, reference: reference, metrics: [.fid, .is])
      return (every: every, extractor: extractor, reference: reference)
    }
    let bestFolder = (checkpoints as NSString).appendingPathComponent("best")
    var bestFID = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(bestFolder)/best.json"))) as? [String: Any])?["frechet_inception_distance"] as? Double ?? .infinity
    var watch = CollapseWatch(factor: recipe.collapseFactor)
    let stop = StopRequest()
    log.line("training \(config) in \(folder): \(model.resolution) px, G \(trainer.generator.parameterCount) / D \(trainer.discriminator.parameterCount) parameters, batch \(recipe.batch) x \(recipe.accumulate), \(recipe.precision), \(Machine.threads) threads" + (resumeFrom.map { ", resumed at step \(trainer.step) from \($0)" } ?? ""))
    var sampleRandom = SeededRandom(seed: 12_345)
    let columns = 8
    let shownClasses = min(model.classes, 10)
    var sampleZ = Tensor(shape: [shownClasses * columns, model.dimZ])
    for i in 0..<sampleZ.count { sampleZ.storage[i] = sampleRandom.normal() }
    let sampleLabels = (0..<shownClasses).flatMap { Array(repeating: $0, count: columns) }

    func checkpoint() throws {
      let path = try Checkpoint.save(trainer, in: checkpoints, keep: recipe.keepCheckpoints)
      log.note("checkpoint \(path)")
    }
    func samples() throws {
      // In batches of the training batch, so the sheet never needs more
      // memory than a training step.
      var images = Tensor(shape: [sampleLabels.count, model.resolution, model.resolution, 3])
      let size = model.resolution * model.resolution * 3
      for start in stride(from: 0, to: sampleLabels.count, by: recipe.batch) {
        let end = min(sampleLabels.count, start + recipe.batch)
        let z = try Tensor(shape: [end - start, model.dimZ], storage: Array(sampleZ.storage[start * model.dimZ..<end * model.dimZ]))
        let part = try trainer.average.forward(z: z, labels: Array(sampleLabels[start..<end]), mode: .inference)
        images.storage.replaceSubrange(start * size..<end * size, with: part.storage)
      }
      let path = (folder as NSString).appendingPathComponent(String(format: "samples/step-%08d.png", trainer.step))
      try PNG.write(ImageGrid.sheet(images, columns: columns), to: path)
      log.note("samples \(path)")
    }

    func evaluateModel() throws {
      guard let evaluation else { return }
      var settings = GenerationSettings(count: evalCount)
      settings.seed = 54_321
      settings.batch = recipe.batch
      let extracted = try evaluation.extractor.features(of: trainer.average, settings)
      let report = try evaluate(extracted, reference: evaluation.reference, metrics: [.fid, .is])
      var values: [String: Any] = ["resize": inception.resize.rawValue]
      for (key, value) in report.values { values[key] = value }
      log.record(["step": trainer.step, "eval": values])
      let fid = report["frechet_inception_distance"]!
      log.note(String(format: "eval step %d: FID %.3f, IS %.3f +- %.3f (%d images)", trainer.step, fid, report["inception_score_mean"]!, report["inception_score_std"]!, evalCount))
      guard fid < bestFID else { return }
      bestFID = fid
      let path = try Checkpoint.save(trainer, in: bestFolder, keep: 1)
      values["step"] = trainer.step
      try FileError.write(try JSONSerialization.data(withJSONObject: values, options: [.sortedKeys, .prettyPrinted]), to: "\(bestFolder)/best.json")
      log.note("best FID so far: \(path)")
    }

    var window: [StepReport] = []
    let first = trainer.step
    let started = ContinuousClock.now
    while trainer.step < recipe.steps && !stop.requested {
      let report: StepReport
      do { report = try trainer.trainStep() } catch {
        log.line("error: \(error)")
        throw ExitCode.failure
      }
      window.append(report)
      let elapsed = ContinuousClock.now - started
      let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
      let rate = Double(trainer.step - first) / max(seconds, 1e-9)
      log.progress(report: report, total: recipe.steps, stepsPerSecond: rate, window: window)
      if let warning = watch.observe("D loss", report.lossDiscriminatorReal + report.lossDiscriminatorFake) {
        log.line("warning: step \(trainer.step): \(warning)")
        log.record(["step": trainer.step, "warning": warning])
      }
      if trainer.step % recipe.logEvery == 0 || trainer.step == recipe.steps {
        var extra: [String: Any] = [:]
        if let (hx, hy) = heldBatch, let (tx, ty) = trainBatch {
          let held = try trainer.discriminatorVerdict(hx, labels: hy), train = try trainer.discriminatorVerdict(tx, labels: ty)
          extra = [
            "d_train_mean": Double(train.mean), "d_heldout_mean": Double(held.mean),
            "d_train_accuracy": Double(train.accuracy), "d_heldout_accuracy": Double(held.accuracy),
          ]
        }
        log.metrics(window: window, recipe: recipe, extra: extra)
        window.removeAll()
      }
      if trainer.step % recipe.singularValueEvery == 0 {
        let values = try SingularValues.ofModel(trainer.generator, tag: "G")
          .merging(try SingularValues.ofModel(trainer.discriminator, tag: "D")) { a, _ in a }
        log.record(["step": trainer.step, "singular_values": values.mapValues { $0.map(Double.init) }])
        for (name, s) in values.sorted(by: { $0.key < $1.key }) {
          if let warning = watch.observe("top singular value of \(name)", s.first ?? 0) {
            log.line("warning: step \(trainer.step): \(warning)")
            log.record(["step": trainer.step, "warning": warning])
          }
        }
      }
      // The checkpoint first: a sample sheet that fails must not cost it.
      if trainer.step % recipe.checkpointEvery == 0 { try checkpoint() }
      if trainer.step % recipe.sampleEvery == 0 { try samples() }
      if let evaluation, trainer.step % evaluation.every == 0 { try evaluateModel() }
    }
    if trainer.step % recipe.checkpointEvery != 0 {
      try checkpoint()
      try samples()
    }
    log.finish()
    if stop.requested {
      log.line("stopped by signal at step \(trainer.step); resume with --resume")
      throw ExitCode(130)
    }
  }
}

/// Set when SIGINT or SIGTERM arrives, so the loop can checkpoint and stop.
final class StopRequest: @unchecked Sendable {
  private let lock = NSLock()
  private var flag = false
  private var sources: [DispatchSourceSignal] = []

  init() {
    for sig in [SIGINT, SIGTERM] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      source.setEventHandler { [weak self] in self?.set() }
      source.resume()
      sources.append(source)
    }
  }

  private func set() {
    lock.lock()
    flag = true
    lock.unlock()
  }

  var requested: Bool {
    lock.lock()
    defer { lock.unlock() }
    return flag
  }
}
