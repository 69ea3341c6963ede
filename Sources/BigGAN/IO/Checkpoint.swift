import BGKernels
import Foundation

/// A checkpoint's `state.json`: everything besides tensors that a resumed
/// run needs to continue exactly. The file keeps the trainer's recipe and
/// the run's schedule in one flat `recipe` object.
public struct CheckpointState: Codable, Equatable, Sendable {
  public var step: Int
  public var model: BigGANConfiguration
  public var recipe: TrainingRecipe
  public var schedule: RunSchedule
  public var latentRandom: [UInt64]
  public var data: DataPosition
  public var generatorOptimizerStep: Int
  public var discriminatorOptimizerStep: Int

  public init(
    step: Int, model: BigGANConfiguration, recipe: TrainingRecipe, schedule: RunSchedule, latentRandom: [UInt64],
    data: DataPosition, generatorOptimizerStep: Int, discriminatorOptimizerStep: Int
  ) {
    self.step = step
    self.model = model
    self.recipe = recipe
    self.schedule = schedule
    self.latentRandom = latentRandom
    self.data = data
    self.generatorOptimizerStep = generatorOptimizerStep
    self.discriminatorOptimizerStep = discriminatorOptimizerStep
  }

  private enum CodingKeys: String, CodingKey {
    case step, model, recipe, latentRandom, data, generatorOptimizerStep, discriminatorOptimizerStep
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    let settings = try c.decode(RunSettings.self, forKey: .recipe)
    self.init(
      step: try c.decode(Int.self, forKey: .step), model: try c.decode(BigGANConfiguration.self, forKey: .model),
      recipe: settings.recipe, schedule: settings.schedule, latentRandom: try c.decode([UInt64].self, forKey: .latentRandom),
      data: try c.decode(DataPosition.self, forKey: .data),
      generatorOptimizerStep: try c.decode(Int.self, forKey: .generatorOptimizerStep),
      discriminatorOptimizerStep: try c.decode(Int.self, forKey: .discriminatorOptimizerStep))
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(step, forKey: .step)
    try c.encode(model, forKey: .model)
    try c.encode(RunSettings(recipe: recipe, schedule: schedule), forKey: .recipe)
    try c.encode(latentRandom, forKey: .latentRandom)
    try c.encode(data, forKey: .data)
    try c.encode(generatorOptimizerStep, forKey: .generatorOptimizerStep)
    try c.encode(discriminatorOptimizerStep, forKey: .discriminatorOptimizerStep)
  }
}

extension CheckpointState {
  /// Checks every field a resumed run reads.
  public func validate() throws(CheckpointError) {
    guard step >= 0, generatorOptimizerStep >= 0, discriminatorOptimizerStep >= 0 else {
      throw CheckpointError(description: "negative step counts (step \(step), optimizer steps \(generatorOptimizerStep), \(discriminatorOptimizerStep))")
    }
    guard latentRandom.count == 4, latentRandom.contains(where: { $0 != 0 }) else {
      throw CheckpointError(description: "latentRandom has \(latentRandom.count) words; expected the generator's 4 state words, not all zero")
    }
    guard data.epoch >= 0, data.offset >= 0 else {
      throw CheckpointError(description: "data position epoch \(data.epoch), offset \(data.offset); expected both at least 0")
    }
    try recipe.validate()
    try schedule.validate()
    do { try model.validate() } catch { throw CheckpointError(description: "model: \(error)") }
  }
}

/// A checkpoint folder that cannot be used, named with what is wrong.
public struct CheckpointError: Error, CustomStringConvertible, Equatable {
  public let description: String
}

/// Checkpoints: one folder per step (`step-00001000/`) holding `G`, `G_ema`
/// and `D` as safetensors in PyTorch layouts, both optimizers' moments, and
/// `state.json`. A folder is written under a temporary name and renamed into
/// place, so a crash never leaves a partial checkpoint; the newest `keep`
/// are kept.
public enum Checkpoint {
  /// Writes the trainer's networks and state, and the `schedule` its run
  /// follows, into `folder/step-NNNNNNNN` and prunes old ones. Returns the
  /// new checkpoint's path.
  @discardableResult
  public static func save(_ t: Trainer, schedule: RunSchedule, in folder: String, keep: Int) throws -> String {
    let fm = FileManager.default
    let trainer = t.state
    try FileError.createFolder(folder)
    let name = String(format: "step-%08d", trainer.step)
    let final = (folder as NSString).appendingPathComponent(name)
    let temp = (folder as NSString).appendingPathComponent(".\(name).tmp-\(getpid())")
    try? fm.removeItem(atPath: temp)
    try FileError.wrapping(temp, cannot: "create this folder") {
      try fm.createDirectory(atPath: temp, withIntermediateDirectories: false)
    }
    let compact = JSONEncoder()
    compact.outputFormatting = [.sortedKeys]  // the same bytes for the same run
    let config = String(decoding: try compact.encode(t.model), as: UTF8.self)
    let meta = ["format": "biggan-fast checkpoint", "step": "\(trainer.step)", "config": config]
    try StateDict.save(t.generator, to: "\(temp)/G.safetensors", metadata: meta)
    try StateDict.save(t.average, to: "\(temp)/G_ema.safetensors", metadata: meta)
    try StateDict.save(t.discriminator, to: "\(temp)/D.safetensors", metadata: meta)
    var optimizer = SafeTensorsWriter(metadata: meta)
    for (n, v) in trainer.generatorOptimizer.moments { optimizer.add("G.\(n)", v) }
    for (n, v) in trainer.discriminatorOptimizer.moments { optimizer.add("D.\(n)", v) }
    try optimizer.write(to: "\(temp)/optimizer.safetensors")
    let state = CheckpointState(
      step: trainer.step, model: t.model, recipe: t.recipe, schedule: schedule, latentRandom: trainer.latentRandom,
      data: trainer.data, generatorOptimizerStep: trainer.generatorOptimizer.step,
      discriminatorOptimizerStep: trainer.discriminatorOptimizer.step)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try durablyWrite(try encoder.encode(state), to: "\(temp)/state.json")
    syncFolder(temp)
    // A checkpoint of the same step (a resumed finished run, a signal right
    // after a resume) is moved aside, not deleted, until the new one is in
    // place: a crash in between leaves one of the two complete.
    let aside = (folder as NSString).appendingPathComponent(".\(name).old-\(getpid())")
    let replacing = fm.fileExists(atPath: final)
    if replacing {
      try? fm.removeItem(atPath: aside)
      guard rename(final, aside) == 0 else {
        throw CheckpointError(description: "\(final): cannot move the previous checkpoint aside (\(String(cString: strerror(errno))))")
      }
    }
    guard rename(temp, final) == 0 else {
      let reason = String(cString: strerror(errno))
      if replacing { _ = rename(aside, final) }
      throw CheckpointError(description: "\(final): cannot move the checkpoint into place (\(reason))")
    }
    syncFolder(folder)
    if replacing { try? fm.removeItem(atPath: aside) }
    for old in all(in: folder).dropLast(max(keep, 1)) { try? fm.removeItem(atPath: old) }
    return final
  }

  /// Checkpoint folders in `folder` (named `step-` and eight digits),
  /// oldest first.
  public static func all(in folder: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return names.filter { $0.count == 13 && $0.hasPrefix("step-") && $0.dropFirst(5).allSatisfy { $0 >= "0" && $0 <= "9" } }
      .sorted().map { (folder as NSString).appendingPathComponent($0) }
  }

  /// The newest checkpoint in `folder` whose files are all there and whose
  /// `state.json` reads; `skipped` hears of each newer folder passed over
  /// and why.
  public static func newestValid(in folder: String, skipped: (String) -> Void = { _ in }) -> String? {
    let fm = FileManager.default
    for path in all(in: folder).reversed() {
      if let missing = ["G.safetensors", "G_ema.safetensors", "D.safetensors", "optimizer.safetensors", "state.json"]
        .first(where: { !fm.fileExists(atPath: "\(path)/\($0)") })
      {
        skipped("\(path): incomplete (no \(missing))")
        continue
      }
      do { _ = try state(at: path) } catch {
        skipped("\(error)")
        continue
      }
      return path
    }
    return nil
  }

  /// Removes what interrupted saves leave in `folder` (hidden temporary and
  /// set-aside checkpoint folders); call while holding the run's lock.
  public static func removeStale(in folder: String) {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    for name in names where name.hasPrefix(".step-") && (name.contains(".tmp-") || name.contains(".old-")) {
      try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(name))
    }
  }

  /// Writes `data` to `path` and flushes it to disk.
  static func durablyWrite(_ data: Data, to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw CheckpointError(description: "\(path): cannot create (\(String(cString: strerror(errno))))") }
    defer { close(fd) }
    guard writeAll(fd, Array(data)), fsync(fd) == 0 else {
      throw CheckpointError(description: "\(path): cannot write (\(String(cString: strerror(errno))))")
    }
  }

  /// Flushes a folder's entries (renames, new files) to disk.
  static func syncFolder(_ path: String) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
      _ = fsync(fd)
      close(fd)
    }
  }

  /// The model configuration a weights file carries in its metadata.
  public static func configuration(of file: SafeTensorsFile) throws -> BigGANConfiguration {
    guard let json = file.metadata["config"] else {
      throw CheckpointError(description: "\(file.path): no model configuration in its metadata; pass a checkpoint folder or a file written by biggan-fast")
    }
    let model: BigGANConfiguration
    do { model = try JSONDecoder().decode(BigGANConfiguration.self, from: Data(json.utf8)) } catch {
      throw CheckpointError(description: "\(file.path): unreadable model configuration in its metadata (\(FileError.reason(error)))")
    }
    do { try model.validate() } catch {
      throw CheckpointError(description: "\(file.path): the model configuration in its metadata is invalid: \(error)")
    }
    // Whatever the metadata says is built before the tensors are compared
    // with it: a model too big for the machine is refused here.
    try MemoryBudget.require(4 * model.estimatedGeneratorParameters, for: file.path, "the generator its metadata describes")
    return model
  }

  /// Reads `state.json` of a checkpoint folder.
  public static func state(at path: String) throws -> CheckpointState {
    let file = "\(path)/state.json"
    guard let data = FileManager.default.contents(atPath: file) else {
      throw CheckpointError(description: "\(file): missing; not a biggan-fast checkpoint")
    }
    let state: CheckpointState
    do { state = try JSONDecoder().decode(CheckpointState.self, from: data) } catch {
      throw CheckpointError(description: "\(file): unreadable (\(FileError.reason(error)))")
    }
    do { try state.validate() } catch { throw CheckpointError(description: "\(file): \(error.description)") }
    return state
  }

  /// The trainer state the checkpoint at `path` holds: `state.json`'s step,
  /// latent stream and data position, and both optimizers' moments.
  public static func trainerState(at path: String) throws -> TrainerState {
    let s = try state(at: path)
    let file = try SafeTensorsFile(contentsOf: "\(path)/optimizer.safetensors")
    func optimizer(_ prefix: String, step: Int) throws -> Adam.State {
      let names = file.names.filter { $0.hasPrefix(prefix) }
      return Adam.State(step: step, moments: try names.map { (String($0.dropFirst(prefix.count)), try file.tensor($0)) })
    }
    return TrainerState(
      step: s.step, latentRandom: s.latentRandom, data: s.data,
      generatorOptimizer: try optimizer("G.", step: s.generatorOptimizerStep),
      discriminatorOptimizer: try optimizer("D.", step: s.discriminatorOptimizerStep))
  }

  /// Loads G, G_ema and D of the checkpoint at `path` into `t`'s networks,
  /// which must be of the checkpoint's model.
  public static func loadNetworks(of t: Trainer, from path: String) throws {
    let s = try state(at: path)
    guard s.model == t.model else {
      throw CheckpointError(description: "\(path): saved for another model configuration (resolution \(s.model.resolution), ch \(s.model.generatorChannels)) than this run's (resolution \(t.model.resolution), ch \(t.model.generatorChannels))")
    }
    try StateDict.load(t.generator, from: try SafeTensorsFile(contentsOf: "\(path)/G.safetensors"))
    try StateDict.load(t.average, from: try SafeTensorsFile(contentsOf: "\(path)/G_ema.safetensors"))
    try StateDict.load(t.discriminator, from: try SafeTensorsFile(contentsOf: "\(path)/D.safetensors"))
  }
}
