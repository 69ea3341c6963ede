import BGKernels
import Foundation

/// A training run: a trainer stepped to `schedule.steps`, with the
/// monitors, checkpoints, sample sheets and evaluations of its schedule, in
/// a run folder (`checkpoint/`, `samples/`); everything that happens is
/// reported as a `TrainingEvent`.
///
/// A seeded share of the data (`schedule.heldOut`) is held out of training
/// to watch D overfit. In a data-parallel run every rank makes a
/// `TrainingRun` and calls `run` with the same schedule: the ranks take the
/// same steps and agree on stopping, and rank 0 alone writes files, measures
/// and reports.
public final class TrainingRun {
  public let trainer: Trainer
  public let schedule: RunSchedule
  public let dataset: any ImageDataset
  /// The run folder.
  public let folder: String
  /// The checkpoint the run continues, if it was resumed.
  public let resumedFrom: String?
  /// FID and IS during training, if wanted.
  public var evaluation: TrainingEvaluation?
  /// With replicas: every this many steps, check that every rank's state is
  /// rank 0's (`Trainer.verifyReplicas`), and stop if not.
  public var replicaCheckEvery: Int?
  /// Rank 0's fixed batches of held-out and of training images for D's
  /// verdicts (`nil` on other ranks; the held-out one also with nothing
  /// held out).
  private let heldOutBatch: (Tensor, [Int])?
  private let trainingBatch: (Tensor, [Int])?

  /// How `run` ended.
  public enum Outcome: Equatable, Sendable {
    /// The schedule's steps are done.
    case finished
    /// A stop was requested (on any rank) before them.
    case stopped
  }

  /// A fresh run of `model` on `dataset`, or with `checkpoint` the run that
  /// wrote it, continued: `model` must be the checkpoint's, and so should
  /// the recipe's seed, which also orders the data and splits off the
  /// held-out images. Builds the trainer; `replicas` and
  /// `crossReplicaBatchNorm` are the trainer's.
  public init(
    model: BigGANConfiguration, recipe: TrainingRecipe, schedule: RunSchedule, dataset: any ImageDataset,
    folder: String, resumingFrom checkpoint: String? = nil, replicas: (any ReplicaGroup)? = nil,
    crossReplicaBatchNorm: Bool = true
  ) throws {
    let (heldOut, training) = Self.split(dataset.count, share: schedule.heldOut, seed: recipe.seed &+ 5)
    let state = try checkpoint.map { try Checkpoint.trainerState(at: $0) }
    trainer = try Trainer(
      model: model, recipe: recipe, dataset: dataset, indices: training, replicas: replicas,
      crossReplicaBatchNorm: crossReplicaBatchNorm, restoring: state)
    if let checkpoint { try Checkpoint.loadNetworks(of: trainer, from: checkpoint) }
    self.schedule = schedule
    self.dataset = dataset
    self.folder = folder
    resumedFrom = checkpoint
    // Read here, so that data whose first images cannot be read stops the
    // run before it starts.
    let isRoot = (replicas?.rank ?? 0) == 0
    heldOutBatch = isRoot && !heldOut.isEmpty ? try Self.fixedBatch(heldOut, dataset, size: recipe.batch) : nil
    trainingBatch = isRoot ? try Self.fixedBatch(training, dataset, size: recipe.batch) : nil
  }

  /// The first `size` images of `indices` (at most), as D sees them.
  private static func fixedBatch(_ indices: [Int], _ dataset: any ImageDataset, size: Int) throws -> (Tensor, [Int]) {
    let n = min(size, indices.count), r = dataset.resolution
    var images = Tensor(shape: [n, r, r, 3])
    var labels: [Int] = []
    for (b, i) in indices.prefix(n).enumerated() {
      let (pixels, label) = try dataset.sample(i, epoch: 0)
      for j in 0..<pixels.count { images.storage[b * pixels.count + j] = Float(pixels[j]) / 127.5 - 1 }
      labels.append(label)
    }
    return (images, labels)
  }

  /// The held-out images and the training ones, in a seeded order. A data
  /// set of one image has nothing to hold out.
  private static func split(_ count: Int, share: Float, seed: UInt64) -> (heldOut: [Int], training: [Int]) {
    var order = Array(0..<count)
    var random = SeededRandom(seed: seed)
    order.shuffle(using: &random)
    let held = share > 0 && count >= 2 ? max(1, min(count - 1, Int(Float(count) * share))) : 0
    return (Array(order[0..<held]), Array(order[held...]))
  }

  private var checkpoints: String { (folder as NSString).appendingPathComponent("checkpoint") }
  private var bestFolder: String { (checkpoints as NSString).appendingPathComponent("best") }
  private var isRoot: Bool { (trainer.replicas?.rank ?? 0) == 0 }

  /// Trains until `schedule.steps` or a stop: `stopRequested` is asked
  /// before every step and, with replicas, the ranks stop together when any
  /// asks to. A checkpoint and a sample sheet of the last step are written
  /// either way. An error of the trainer is thrown as it comes; with
  /// replicas, `TrainingError.isShared` tells whether every rank meets it.
  public func run(stopRequested: () -> Bool, events: (TrainingEvent) -> Void) throws -> Outcome {
    let monitor = try isRoot ? Monitor(self) : nil
    var stopped = false
    while trainer.step < schedule.steps {
      if trainer.replicas?.any(stopRequested()) ?? stopRequested() {
        stopped = true
        break
      }
      let report = try trainer.trainStep()
      if let every = replicaCheckEvery, trainer.step % every == 0 { try trainer.verifyReplicas() }
      try monitor?.observe(report, events)
    }
    if let monitor, trainer.step % schedule.checkpointEvery != 0 {
      try monitor.checkpoint(events)
      try monitor.samples(events)
    }
    return stopped ? .stopped : .finished
  }

  /// Rank 0's share of a run: its files, measurements and reports.
  private final class Monitor {
    let run: TrainingRun
    var trainer: Trainer { run.trainer }
    var schedule: RunSchedule { run.schedule }
    /// The latents and classes of every sample sheet: a row of `columns`
    /// images for each of the first ten classes.
    let sheetLatents: Tensor
    let sheetLabels: [Int]
    static let columns = 8
    var watch: CollapseWatch
    var bestFID: Double
    var window: [StepReport] = []
    let firstStep: Int
    let started = ContinuousClock.now

    init(_ run: TrainingRun) throws {
      self.run = run
      let model = run.trainer.model
      for sub in ["checkpoint", "samples"] { try FileError.createFolder((run.folder as NSString).appendingPathComponent(sub)) }
      let real = (run.folder as NSString).appendingPathComponent("samples/real.png")
      if !FileManager.default.fileExists(atPath: real) {
        try PNG.write(try ImageGrid.sheet(of: run.dataset, columns: Self.columns), to: real)
      }
      var random = SeededRandom(seed: 12_345)
      sheetLabels = ImageGrid.classRows(classes: model.classes, columns: Self.columns)
      var z = Tensor(shape: [sheetLabels.count, model.dimZ])
      for i in 0..<z.count { z.storage[i] = random.normal() }
      sheetLatents = z
      watch = CollapseWatch(factor: run.schedule.collapseFactor)
      let best = try? Data(contentsOf: URL(fileURLWithPath: "\(run.bestFolder)/best.json"))
      bestFID = (best.flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any])?["frechet_inception_distance"] as? Double ?? .infinity
      firstStep = run.trainer.step
    }

    /// Everything due after the step `report` describes.
    func observe(_ report: StepReport, _ events: (TrainingEvent) -> Void) throws {
      let step = trainer.step
      window.append(report)
      let rate = Double(step - firstStep) / max((ContinuousClock.now - started).seconds, 1e-9)
      events(.stepped(report, stepsPerSecond: rate, window: window))
      if let warning = watch.observe("D loss", report.lossDiscriminatorReal + report.lossDiscriminatorFake) {
        events(.warning(step: step, message: warning))
      }
      if step % schedule.logEvery == 0 || step == schedule.steps {
        events(.metrics(window: window, verdicts: try verdicts()))
        window.removeAll()
      }
      if step % schedule.singularValueEvery == 0 {
        let values = try SingularValues.ofModel(trainer.generator, tag: "G")
          .merging(try SingularValues.ofModel(trainer.discriminator, tag: "D")) { a, _ in a }
        events(.singularValues(step: step, values: values))
        for (name, s) in values.sorted(by: { $0.key < $1.key }) {
          if let warning = watch.observe("top singular value of \(name)", s.first ?? 0) {
            events(.warning(step: step, message: warning))
          }
        }
      }
      // The checkpoint first: a sample sheet that fails must not cost it.
      if step % schedule.checkpointEvery == 0 { try checkpoint(events) }
      if step % schedule.sampleEvery == 0 { try samples(events) }
      if let evaluation = run.evaluation, step % evaluation.every == 0 { try evaluate(evaluation, events) }
    }

    func verdicts() throws -> HeldOutVerdicts? {
      guard let (hx, hy) = run.heldOutBatch, let (tx, ty) = run.trainingBatch else { return nil }
      let held = try trainer.discriminatorVerdict(hx, labels: hy), train = try trainer.discriminatorVerdict(tx, labels: ty)
      return HeldOutVerdicts(trainingMean: train.mean, heldOutMean: held.mean, trainingAccuracy: train.accuracy, heldOutAccuracy: held.accuracy)
    }

    func checkpoint(_ events: (TrainingEvent) -> Void) throws {
      let path = try Checkpoint.save(trainer, schedule: schedule, in: run.checkpoints, keep: schedule.keepCheckpoints)
      events(.checkpointSaved(path: path))
    }

    /// G_ema's sheet, in batches of the training batch so that it never
    /// needs more memory than a training step.
    func samples(_ events: (TrainingEvent) -> Void) throws {
      let sheet = try ImageGrid.sheet(
        of: trainer.average, z: sheetLatents, labels: sheetLabels, columns: Self.columns, batch: trainer.recipe.batch)
      let path = (run.folder as NSString).appendingPathComponent(String(format: "samples/step-%08d.png", trainer.step))
      try PNG.write(sheet, to: path)
      events(.samplesSaved(path: path))
    }

    /// Scores G_ema; a new best FID keeps its checkpoint in
    /// `checkpoint/best`, described by `best.json`.
    func evaluate(_ evaluation: TrainingEvaluation, _ events: (TrainingEvent) -> Void) throws {
      let record = try evaluation.score(trainer.average, batch: trainer.recipe.batch, step: trainer.step)
      events(.evaluated(record))
      guard record.frechetDistance < bestFID else { return }
      bestFID = record.frechetDistance
      let path = try Checkpoint.save(trainer, schedule: schedule, in: run.bestFolder, keep: 1)
      var values = record.values
      values["step"] = record.step
      try FileError.write(try JSONSerialization.data(withJSONObject: values, options: [.sortedKeys, .prettyPrinted]), to: "\(run.bestFolder)/best.json")
      events(.bestCheckpointSaved(path: path))
    }
  }
}
