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

      Started by mpirun (or srun), the ranks train one model data-parallel:
      --batch stays the global batch, each rank takes an equal slice of it
      and --threads threads (default: this machine's cores shared between
      its ranks); gradients are summed over the ranks and G's batch-norms
      use the statistics of the global batch (--cross-replica-bn). Rank 0
      alone writes the run folder, which every rank must see at the same
      path, as the data.
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
  @Option(name: .customLong("cross-replica-bn"), help: "With several ranks: 'on' takes G's batch-norm statistics over the global batch, 'off' over each rank's slice.")
  var crossReplicaBN: Switch = .on
  @Option(name: .customLong("check-replicas"), parsing: .unconditional, help: "With several ranks: compare a checksum of every rank's weights, optimizer state and data position every N steps, and stop if they differ.")
  var checkReplicas: Int?
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
    for (flag, v) in [("--steps", steps), ("--batch", batch), ("--accumulate", accumulate), ("--d-steps", dSteps), ("--threads", threads), ("--log-every", logEvery), ("--sample-every", sampleEvery), ("--checkpoint-every", checkpointEvery), ("--keep", keep), ("--check-replicas", checkReplicas)] {
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
    try inJob(threads: threads) { try train(replicas: $0) }
  }

  /// What rank 0 decides from the run folder, for every rank to follow.
  private struct Plan: Codable {
    var data: String
    var checkpoint: String?
  }

  /// Rank 0's choice of data and checkpoint: the run's own data when it
  /// resumes, and its newest complete checkpoint.
  private func plan(folder: String, checkpoints: String) throws -> Plan {
    Checkpoint.removeStale(in: checkpoints)
    var plan = Plan(data: data ?? "builtin")
    guard resume else {
      if !Checkpoint.all(in: checkpoints).isEmpty {
        throw ValidationError("\(folder) already has checkpoints; pass --resume to continue it or --run to start another")
      }
      return plan
    }
    guard let latest = Checkpoint.newestValid(in: checkpoints, skipped: { StandardError.write("skipping \($0)\n") }) else {
      throw ValidationError("--resume: no complete checkpoint in \(checkpoints); train without --resume first")
    }
    if let saved = try Self.savedData(in: folder) {
      if let asked = data, asked != saved, !changeData {
        throw ValidationError("--data \(asked): this run trained on \(saved); resume without --data, or pass --change-data to switch")
      }
      plan.data = changeData ? (data ?? saved) : saved
    }
    plan.checkpoint = latest
    return plan
  }

  /// Runs `body`, whose collective calls every rank makes whatever fails,
  /// on every rank, and agrees on the outcome: when any rank fails, the
  /// lowest failing one reports its error and every rank stops with a
  /// failure, so a mistake all ranks share is one message and no abort.
  private func agreeing<T>(_ replicas: (any ReplicaGroup)?, _ body: () throws -> T) throws -> T {
    guard let replicas else { return try body() }
    let outcome = Result { try body() }
    var failed = true
    if case .success = outcome { failed = false }
    let all = replicas.allGather([failed ? 1 : 0])
    guard let first = all.firstIndex(of: 1) else { return try outcome.get() }
    if first == replicas.rank, case .failure(let error) = outcome {
      StandardError.write("Error: " + (first == 0 ? "" : "rank \(first) of \(replicas.count): ") + "\(error)\n")
    }
    throw ExitCode.failure
  }

  /// A run ready to step, and what its loop needs besides the trainer.
  private struct Prepared {
    let trainer: Trainer
    let dataset: any ImageDataset
    /// The held-out images and the training ones, in the seeded order.
    let heldIndices: [Int]
    let trainIndices: [Int]
  }

  /// Builds the trainer `plan` calls for on this rank: a fresh run, or the
  /// planned checkpoint restored.
  private func prepare(_ plan: Plan, replicas: (any ReplicaGroup)?) throws -> Prepared {
    let preset = TrainingRecipe.presets[config]!
    var model = preset.model, recipe = recipe(from: preset.recipe)
    var position = DataPosition()
    if let path = plan.checkpoint {
      let state = try Checkpoint.state(at: path)
      model = state.model
      var r = self.recipe(from: state.recipe)
      // A resumed run keeps its data and model seeds whatever the flags say.
      r.seed = state.recipe.seed
      recipe = r
      position = state.data
    } else if let initialization {
      model.initialization = initialization == "ortho" ? .orthogonal : .normal(std: 0.02)
    }
    if let replicas, recipe.batch % replicas.count != 0 {
      throw ValidationError("--batch \(recipe.batch) does not split over \(replicas.count) ranks; pass a multiple of \(replicas.count)")
    }
    let dataset = try Self.dataset(plan.data, resolution: model.resolution, seed: recipe.seed, flip: flip, skipBad: skipBad, maxPixels: imageLimits.maxImagePixels)
    if dataset.classes != model.classes {
      guard plan.checkpoint == nil else {
        throw ValidationError("--data \(plan.data) has \(dataset.classes) classes but the checkpoint's model has \(model.classes)")
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
    let localBatch = recipe.batch / (replicas?.count ?? 1)
    try MemoryBudget.require(model.estimatedTrainingBytes(batch: localBatch), for: "--batch \(recipe.batch)", "a training step of \(config)" + (replicas == nil ? "" : " on each rank"))
    let trainIndices = Array(order[heldCount...])
    let trainer = try Trainer(
      model: model, recipe: recipe, dataset: dataset, indices: trainIndices, position: position,
      replicas: replicas, crossReplicaBatchNorm: crossReplicaBN == .on)
    if let path = plan.checkpoint { try Checkpoint.restore(trainer, from: path) }
    return Prepared(trainer: trainer, dataset: dataset, heldIndices: Array(order[0..<heldCount]), trainIndices: trainIndices)
  }

  func train(replicas: MPIReplicaGroup?) throws {
    let isRoot = (replicas?.rank ?? 0) == 0
    let folder = (runs as NSString).appendingPathComponent(runName ?? config)
    let checkpoints = (folder as NSString).appendingPathComponent("checkpoint")
    if let replicas {
      let mine = Array(CommandLine.arguments.dropFirst().joined(separator: "\u{0}").utf8)
      let root = replicas.broadcast(mine, from: 0)
      try agreeing(replicas) {
        guard root == mine else { throw ValidationError("the ranks were started with different arguments; every rank needs rank 0's") }
      }
    }
    // Rank 0 alone touches the run folder: it holds the lock until the
    // process ends (a second train on this run stops here) and decides the
    // data and checkpoint every rank follows.
    let (lock, decided) = try agreeing(replicas) { () throws -> (RunFolderLock?, Plan) in
      guard !(runName ?? config).isEmpty, !(runName ?? config).contains("/") else {
        throw ValidationError("--run '\(runName ?? "")': expected a non-empty name without '/'")
      }
      guard isRoot else { return (nil, Plan(data: "")) }
      let lock = try RunFolderLock(folder: folder)
      return (lock, try plan(folder: folder, checkpoints: checkpoints))
    }
    defer { withExtendedLifetime(lock) {} }
    var chosen = decided
    if let replicas {
      let bytes = replicas.broadcast(isRoot ? Array(try JSONEncoder().encode(chosen)) : [], from: 0)
      chosen = try JSONDecoder().decode(Plan.self, from: Data(bytes))
    }
    let prepared = try agreeing(replicas) { try prepare(chosen, replicas: replicas) }
    try agreeing(replicas) { try prepared.trainer.verifyReplicas() }
    guard isRoot else { return try follow(prepared.trainer) }
    let trainer = prepared.trainer, dataset = prepared.dataset, data = chosen.data
    let model = trainer.model, recipe = trainer.recipe, resumeFrom = chosen.checkpoint
    let heldIndices = prepared.heldIndices, trainIndices = prepared.trainIndices
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
    let ranks = replicas.map { ", \($0.count) ranks (\(crossReplicaBN == .on ? "cross-replica" : "per-replica") batch-norm)" } ?? ""
    log.line("training \(config) in \(folder): \(model.resolution) px, G \(trainer.generator.parameterCount) / D \(trainer.discriminator.parameterCount) parameters, batch \(recipe.batch) x \(recipe.accumulate), \(recipe.precision), \(Machine.threads) threads" + ranks + (resumeFrom.map { ", resumed at step \(trainer.step) from \($0)" } ?? ""))
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
    while trainer.step < recipe.steps && !stopping(stop, replicas) {
      let report: StepReport
      do {
        report = try trainer.trainStep()
        try checkReplicas(trainer)
      } catch {
        // An error of this rank alone ends every rank (in run()); one all
        // ranks meet stops them all here.
        guard replicas == nil || (error as? TrainingError)?.isShared == true else { throw error }
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
    if stopping(stop, replicas) {
      log.line("stopped by signal at step \(trainer.step); resume with --resume")
      throw ExitCode(130)
    }
  }
}

extension Train {
  /// A rank other than 0: the same steps, collective calls and stop
  /// decisions as rank 0, and no files.
  private func follow(_ trainer: Trainer) throws {
    let stop = StopRequest()
    while trainer.step < trainer.recipe.steps && !stopping(stop, trainer.replicas) {
      do {
        _ = try trainer.trainStep()
        try checkReplicas(trainer)
      } catch let error as TrainingError where error.isShared {
        throw ExitCode.failure
      }
    }
    if stopping(stop, trainer.replicas) { throw ExitCode(130) }
  }

  /// Whether a signal reached this process, or with replicas any rank: all
  /// ranks stop at the same step.
  private func stopping(_ stop: StopRequest, _ replicas: (any ReplicaGroup)?) -> Bool {
    replicas?.any(stop.requested) ?? stop.requested
  }

  private func checkReplicas(_ trainer: Trainer) throws {
    if let every = checkReplicas, trainer.step % every == 0 { try trainer.verifyReplicas() }
  }
}

/// `on` or `off`.
enum Switch: String, ExpressibleByArgument, CaseIterable {
  case on, off
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
