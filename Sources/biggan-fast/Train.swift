import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// `biggan-fast train`: the paper's training recipe with checkpoints,
/// metrics and samples in a run folder.
struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train BigGAN (the built-in shapes data by default).",
    discussion: """
      Every preset value can be overridden by its flag. The run folder holds
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

      The paper's Section 4.2 remedies for D: --r1 GAMMA (the R1 gradient
      penalty on real images, logged as r1 in metrics.jsonl) and --sv-clamp
      SIGMA (each of D's weights keeps its top singular value at most
      SIGMA). A resumed run keeps its own and refuses a different value.

      The paper's Table 1 steps from SA-GAN to BigGAN: --no-shared (no
      shared class embedding), --no-hier (no hierarchical latents), --g-ch
      and --d-ch (each network's width, e.g. 24 for tiny at 1.5 times its
      16), --batch and --ortho. They set a new run's model; a resumed run
      keeps its own and refuses a different value.

      Presets (--config):
      \(presetList)
      """)

  /// Every preset with its summary, recipe and schedule.
  static var presetList: String {
    TrainingPreset.names.map { name in
      let p = TrainingPreset.all[name]!
      return "\(name): \(p.summary). Recipe: \(p.recipe). Schedule: \(p.schedule). Model: \(describeArchitecture(p.model))."
    }.joined(separator: "\n\n")
  }

  @Option(help: "Preset, listed above with its values: \(TrainingPreset.names.joined(separator: ", ")).")
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
  @Option(parsing: .unconditional, help: "R1 penalty on D, gamma / 2 * E ||dD(x)/dx||^2 over real images (0 disables; needs a D without self-attention).") var r1: Float?
  @Option(name: .customLong("sv-clamp"), parsing: .unconditional, help: "After each D update, clamp the top singular value of each of D's weights to this.") var svClamp: Float?
  @Option(name: .customLong("ema-decay"), parsing: .unconditional, help: "Decay of G's moving average.") var emaDecay: Float?
  @Option(name: .customLong("ema-start"), parsing: .unconditional, help: "Step from which the average decays (a copy before).") var emaStart: Int?
  @Option(help: "Precision of every product: fp32 or bf16.") var precision: Precision?
  @Option(help: "Weight initialisation: ortho (BigGAN's) or N02 (normal, std 0.02).") var initialization: Initialization?
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
  @OptionGroup var ablations: AblationOptions
  @OptionGroup var inception: InceptionOptions
  @OptionGroup var imageLimits: ImageOptions

  func validate() throws {
    _ = try preset(named: config)
    if let heldOut, !(heldOut >= 0 && heldOut < 1) { throw ValidationError("--held-out must be in [0, 1), got \(heldOut)") }
    if let svEvery, svEvery < 1 { throw ValidationError("--sv-every must be at least 1, got \(svEvery)") }
    if let collapseFactor, !(collapseFactor > 1) { throw ValidationError("--collapse-factor must be above 1, got \(collapseFactor)") }
    for (flag, v) in [("--steps", steps), ("--batch", batch), ("--accumulate", accumulate), ("--d-steps", dSteps), ("--threads", threads), ("--log-every", logEvery), ("--sample-every", sampleEvery), ("--checkpoint-every", checkpointEvery), ("--keep", keep), ("--check-replicas", checkReplicas)] {
      if let v, v < 1 { throw ValidationError("\(flag) must be at least 1, got \(v)") }
    }
    for (flag, v) in [("--g-lr", gLR), ("--d-lr", dLR), ("--adam-eps", adamEps)] {
      if let v, !(v > 0) { throw ValidationError("\(flag) must be positive, got \(v)") }
    }
    if let ortho, !(ortho >= 0) { throw ValidationError("--ortho must be at least 0, got \(ortho)") }
    if let r1, !(r1 >= 0 && r1.isFinite) { throw ValidationError("--r1 must be a number at least 0 (0: off), got \(r1)") }
    if let svClamp, !(svClamp > 0 && svClamp.isFinite) { throw ValidationError("--sv-clamp must be a positive number, got \(svClamp)") }
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

  /// `base` with the trainer's values given by flag.
  func recipe(from base: TrainingRecipe) -> TrainingRecipe {
    var r = base
    if let batch { r.batch = batch }
    if let accumulate { r.accumulate = accumulate }
    if let dSteps { r.discriminatorSteps = dSteps }
    if let gLR { r.generatorLearningRate = gLR }
    if let dLR { r.discriminatorLearningRate = dLR }
    if let adamEps { r.adamEpsilon = adamEps }
    if let ortho { r.orthogonalStrength = ortho }
    if let emaDecay { r.emaDecay = emaDecay }
    if let emaStart { r.emaStart = emaStart }
    if let precision { r.precision = precision }
    if let seed { r.seed = seed }
    if let r1 { r.r1Gamma = r1 > 0 ? r1 : nil }
    if let svClamp { r.spectralClamp = svClamp }
    return r
  }

  /// Refuses an `--r1` or `--sv-clamp` other than the resumed run's own:
  /// they change what D learns, as the model flags change what it is.
  func requireUnchangedRemedies(_ saved: TrainingRecipe) throws {
    let keep = "resume without it or start another --run"
    if let r1, (r1 > 0 ? r1 : nil) != saved.r1Gamma {
      let has = saved.r1Gamma.map { "R1 gamma \($0)" } ?? "no R1 penalty"
      throw ValidationError("--r1 \(r1): this run trains with \(has); \(keep)")
    }
    if let svClamp, svClamp != saved.spectralClamp {
      let has = saved.spectralClamp.map { "D's singular values clamped to \($0)" } ?? "no spectral clamp"
      throw ValidationError("--sv-clamp \(svClamp): this run trains with \(has); \(keep)")
    }
  }

  /// `base` with the run's values given by flag.
  func schedule(from base: RunSchedule) -> RunSchedule {
    var s = base
    if let steps { s.steps = steps }
    if let logEvery { s.logEvery = logEvery }
    if let sampleEvery { s.sampleEvery = sampleEvery }
    if let checkpointEvery { s.checkpointEvery = checkpointEvery }
    if let keep { s.keepCheckpoints = keep }
    if let heldOut { s.heldOut = heldOut }
    if let svEvery { s.singularValueEvery = svEvery }
    if let collapseFactor { s.collapseFactor = collapseFactor }
    return s
  }

  func run() throws {
    Machine.keepLargeAllocations()
    try inJob(threads: threads) { try train(replicas: $0) }
  }

  /// What rank 0 decides from the run folder, for every rank to follow.
  private struct Start: Codable {
    var data: String
    var checkpoint: String?
  }

  /// Rank 0's choice of data and checkpoint: the run's own data when it
  /// resumes, and its newest complete checkpoint.
  private func start(folder: String, checkpoints: String) throws -> Start {
    Checkpoint.removeStale(in: checkpoints)
    var start = Start(data: data ?? "builtin")
    guard resume else {
      if !Checkpoint.all(in: checkpoints).isEmpty {
        throw ValidationError("\(folder) already has checkpoints; pass --resume to continue it or --run to start another")
      }
      return start
    }
    guard let latest = Checkpoint.newestValid(in: checkpoints, skipped: { StandardError.write("skipping \($0)\n") }) else {
      throw ValidationError("--resume: no complete checkpoint in \(checkpoints); train without --resume first")
    }
    if let saved = try Self.savedData(in: folder) {
      if let asked = data, asked != saved, !changeData {
        throw ValidationError("--data \(asked): this run trained on \(saved); resume without --data, or pass --change-data to switch")
      }
      start.data = changeData ? (data ?? saved) : saved
    }
    start.checkpoint = latest
    return start
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

  /// The run `start` calls for on this rank: a fresh one, or its
  /// checkpoint's continued.
  private func prepare(_ start: Start, folder: String, replicas: (any ReplicaGroup)?) throws -> TrainingRun {
    let preset = try preset(named: config)
    var model = preset.model, recipe = recipe(from: preset.recipe), schedule = schedule(from: preset.schedule)
    if let path = start.checkpoint {
      let state = try Checkpoint.state(at: path)
      try requireUnchangedRemedies(state.recipe)
      model = state.model
      recipe = self.recipe(from: state.recipe)
      // A resumed run keeps its data and model seeds whatever the flags say.
      recipe.seed = state.recipe.seed
      schedule = self.schedule(from: state.schedule)
      try ablations.requireUnchanged(model)
    } else {
      if let initialization { model.initialization = initialization }
      ablations.apply(to: &model)
      do { try model.validate() } catch {
        throw ValidationError((["--config \(config)"] + ablations.flags).joined(separator: " ") + ": \(error.description)")
      }
    }
    if let replicas, recipe.batch % replicas.count != 0 {
      throw ValidationError("--batch \(recipe.batch) does not split over \(replicas.count) ranks; pass a multiple of \(replicas.count)")
    }
    let dataset = try Self.dataset(start.data, resolution: model.resolution, seed: recipe.seed, flip: flip, skipBad: skipBad, maxPixels: imageLimits.maxImagePixels)
    if dataset.classes != model.classes {
      guard start.checkpoint == nil else {
        throw ValidationError("--data \(start.data) has \(dataset.classes) classes but the checkpoint's model has \(model.classes)")
      }
      model.classes = dataset.classes
    }
    let localBatch = recipe.batch / (replicas?.count ?? 1)
    try MemoryBudget.require(model.estimatedTrainingBytes(batch: localBatch), for: "--batch \(recipe.batch)", "a training step of \(config)" + (replicas == nil ? "" : " on each rank"))
    return try TrainingRun(
      model: model, recipe: recipe, schedule: schedule, dataset: dataset, folder: folder, resumingFrom: start.checkpoint,
      replicas: replicas, crossReplicaBatchNorm: crossReplicaBN == .on)
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
    let (lock, decided) = try agreeing(replicas) { () throws -> (RunFolderLock?, Start) in
      guard !(runName ?? config).isEmpty, !(runName ?? config).contains("/") else {
        throw ValidationError("--run '\(runName ?? "")': expected a non-empty name without '/'")
      }
      guard isRoot else { return (nil, Start(data: "")) }
      let lock = try RunFolderLock(folder: folder)
      return (lock, try start(folder: folder, checkpoints: checkpoints))
    }
    defer { withExtendedLifetime(lock) {} }
    var chosen = decided
    if let replicas {
      let bytes = replicas.broadcast(isRoot ? Array(try JSONEncoder().encode(chosen)) : [], from: 0)
      chosen = try JSONDecoder().decode(Start.self, from: Data(bytes))
    }
    let run = try agreeing(replicas) { try prepare(chosen, folder: folder, replicas: replicas) }
    try agreeing(replicas) { try run.trainer.verifyReplicas() }
    run.replicaCheckEvery = checkReplicas
    let stop = StopRequest()
    let log = try isRoot ? start(run, data: chosen.data, ranks: replicas?.count) : nil
    let outcome: TrainingRun.Outcome
    do {
      outcome = try run.run(stopRequested: { stop.requested }) { log?.report($0) }
    } catch let error as TrainingError where replicas != nil && error.isShared {
      // An error of this rank alone ends every rank (in inJob); one all
      // ranks meet stops them all here, reported once.
      log?.line("error: \(error)")
      throw ExitCode.failure
    }
    log?.finish()
    if outcome == .stopped {
      log?.line("stopped by signal at step \(run.trainer.step); resume with --resume")
      throw ExitCode(130)
    }
  }

  /// Rank 0's part before the first step: the run folder's files, the
  /// evaluation and the opening line.
  private func start(_ run: TrainingRun, data: String, ranks: Int?) throws -> RunLog {
    let trainer = run.trainer, model = trainer.model, recipe = trainer.recipe
    let log = try RunLog(
      folder: run.folder, model: model, recipe: recipe, schedule: run.schedule, data: data,
      resumedStep: run.resumedFrom == nil ? nil : trainer.step)
    try FileError.write(
      try JSONSerialization.data(withJSONObject: run.dataset.classNames, options: [.prettyPrinted]),
      to: (run.folder as NSString).appendingPathComponent("classes.json"))
    run.evaluation = try evalEvery.map { every in
      try TrainingEvaluation(
        every: every, count: evalCount, extractor: try inception.extractor(precision: .fp32),
        reference: try ReferenceStatistics(contentsOf: ref!))
    }
    let replicas = ranks.map { ", \($0) ranks (\(crossReplicaBN == .on ? "cross-replica" : "per-replica") batch-norm)" } ?? ""
    log.line("training \(config) in \(run.folder): \(model.resolution) px, G \(trainer.generator.parameterCount) / D \(trainer.discriminator.parameterCount) parameters, batch \(recipe.batch) x \(recipe.accumulate), \(recipe.precision), \(Machine.threads) threads" + replicas + (run.resumedFrom.map { ", resumed at step \(trainer.step) from \($0)" } ?? ""))
    return log
  }
}

/// `on` or `off`.
enum Switch: String, ExpressibleByArgument, CaseIterable {
  case on, off
}

/// `--initialization`: ortho (BigGAN's orthogonal) or N02 (normal, std 0.02).
extension Initialization: ExpressibleByArgument {
  public init?(argument: String) {
    switch argument {
    case "ortho": self = .orthogonal
    case "N02": self = .normal(std: 0.02)
    default: return nil
    }
  }

  public static var allValueStrings: [String] { ["ortho", "N02"] }
}
