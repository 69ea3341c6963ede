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

  @Option(help: "Data: 'builtin' (generated shapes).")
  var data: String = "builtin"

  @Option(name: .customLong("run"), help: "Run name: the run folder is <runs>/<run> (default: the config name).")
  var runName: String?

  @Option(help: "Folder that holds run folders.")
  var runs: String = "runs"

  @Flag(help: "Continue the run from its newest checkpoint.")
  var resume = false

  @Option(help: "Total training steps (G steps).") var steps: Int?
  @Option(help: "Batch size per accumulation.") var batch: Int?
  @Option(help: "Batches accumulated per optimizer step (G and D).") var accumulate: Int?
  @Option(name: .customLong("d-steps"), help: "D steps per G step.") var dSteps: Int?
  @Option(name: .customLong("g-lr"), help: "Generator learning rate.") var gLR: Float?
  @Option(name: .customLong("d-lr"), help: "Discriminator learning rate.") var dLR: Float?
  @Option(name: .customLong("adam-eps"), help: "Adam epsilon.") var adamEps: Float?
  @Option(help: "Orthogonal regularisation strength on G (0 disables).") var ortho: Float?
  @Option(name: .customLong("ema-decay"), help: "Decay of G's moving average.") var emaDecay: Float?
  @Option(name: .customLong("ema-start"), help: "Step from which the average decays (a copy before).") var emaStart: Int?
  @Option(help: "Precision of every product: fp32 or bf16.") var precision: Precision?
  @Option(help: "Threads (default: OMP_NUM_THREADS or one per core).") var threads: Int?
  @Option(help: "Random seed of initialisation, latents and data order.") var seed: UInt64?
  @Option(name: .customLong("log-every"), help: "Steps between metrics lines.") var logEvery: Int?
  @Option(name: .customLong("sample-every"), help: "Steps between sample grids.") var sampleEvery: Int?
  @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints.") var checkpointEvery: Int?
  @Option(help: "Checkpoints kept.") var keep: Int?

  func validate() throws {
    guard TrainingRecipe.presets[config] != nil else {
      throw ValidationError("unknown config '\(config)'; expected one of \(TrainingRecipe.presets.keys.sorted().joined(separator: ", "))")
    }
    guard data == "builtin" else {
      throw ValidationError("--data '\(data)': only 'builtin' is available in this build")
    }
    for (flag, v) in [("--steps", steps), ("--batch", batch), ("--accumulate", accumulate), ("--d-steps", dSteps), ("--threads", threads), ("--log-every", logEvery), ("--sample-every", sampleEvery), ("--checkpoint-every", checkpointEvery), ("--keep", keep)] {
      if let v, v < 1 { throw ValidationError("\(flag) must be at least 1, got \(v)") }
    }
    for (flag, v) in [("--g-lr", gLR), ("--d-lr", dLR), ("--adam-eps", adamEps)] {
      if let v, !(v > 0) { throw ValidationError("\(flag) must be positive, got \(v)") }
    }
    if let ortho, !(ortho >= 0) { throw ValidationError("--ortho must be at least 0, got \(ortho)") }
    if let emaDecay, !(emaDecay >= 0 && emaDecay < 1) { throw ValidationError("--ema-decay must be in [0, 1), got \(emaDecay)") }
    if let emaStart, emaStart < 0 { throw ValidationError("--ema-start must be at least 0, got \(emaStart)") }
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
    return r
  }

  func run() throws {
    Machine.keepLargeAllocations()
    if let threads { Machine.threads = threads }
    let preset = TrainingRecipe.presets[config]!
    let folder = (runs as NSString).appendingPathComponent(runName ?? config)
    let checkpoints = (folder as NSString).appendingPathComponent("checkpoint")
    let existing = Checkpoint.all(in: checkpoints)
    var model = preset.model, recipe = recipe(from: preset.recipe)
    var resumeFrom: String?
    var position = DataPosition()
    if resume {
      guard let latest = existing.last else {
        throw ValidationError("--resume: no checkpoint in \(checkpoints); train without --resume first")
      }
      let state = try Checkpoint.state(at: latest)
      model = state.model
      var r = self.recipe(from: state.recipe)
      // A resumed run keeps its data and model seeds whatever the flags say.
      r.seed = state.recipe.seed
      recipe = r
      position = state.data
      resumeFrom = latest
    } else if !existing.isEmpty {
      throw ValidationError("\(folder) already has checkpoints; pass --resume to continue it or --run to start another")
    }
    let dataset = ShapesDataset(resolution: model.resolution, seed: recipe.seed)
    let trainer = try Trainer(model: model, recipe: recipe, dataset: dataset, position: position)
    if let resumeFrom { try Checkpoint.restore(trainer, from: resumeFrom) }
    let log = try RunLog(folder: folder, model: model, recipe: recipe, data: "builtin shapes (\(dataset.classNames.joined(separator: ", ")))")
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
      let images = try trainer.average.forward(z: sampleZ, labels: sampleLabels, mode: .evaluation)
      let path = (folder as NSString).appendingPathComponent(String(format: "samples/step-%08d.png", trainer.step))
      try PNG.write(ImageGrid.sheet(images, columns: columns), to: path)
      log.note("samples \(path)")
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
      if trainer.step % recipe.logEvery == 0 || trainer.step == recipe.steps {
        log.metrics(window: window, recipe: recipe)
        window.removeAll()
      }
      if trainer.step % recipe.sampleEvery == 0 { try samples() }
      if trainer.step % recipe.checkpointEvery == 0 { try checkpoint() }
    }
    if trainer.step % recipe.checkpointEvery != 0 {
      try samples()
      try checkpoint()
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
