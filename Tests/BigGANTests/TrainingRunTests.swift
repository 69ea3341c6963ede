import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// The training run as the library runs it: its schedule, its events, its
/// files, and a stop asked for by the caller.
@Suite(.serialized)
struct TrainingRunTests {
  static var schedule: RunSchedule {
    var s = RunSchedule()
    s.steps = 6
    s.logEvery = 2
    s.sampleEvery = 3
    s.checkpointEvery = 3
    s.singularValueEvery = 4
    s.heldOut = 0.25
    return s
  }

  static func run(
    in folder: String, resumingFrom checkpoint: String? = nil, recipe: TrainingRecipe = TrainingTests.recipe
  ) throws -> TrainingRun {
    try TrainingRun(
      model: TrainingTests.model, recipe: recipe, schedule: schedule,
      dataset: ShapesDataset(resolution: 32, count: 64, seed: 1), folder: folder, resumingFrom: checkpoint)
  }

  static func folder(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())").path
    try? FileManager.default.removeItem(atPath: path)
    return path
  }

  @Test("a run reports its schedule's events and writes its checkpoints and sample sheets")
  func events() throws {
    let folder = Self.folder("run-events")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var seen: [String] = []
    let outcome = try Self.run(in: folder).run(stopRequested: { false }) { event in
      switch event {
      case .stepped(let report, _, let window): seen.append("step \(report.step) window \(window.count)")
      case .metrics(let window, let verdicts): seen.append("metrics \(window.map(\.step)) \(verdicts == nil ? "" : "verdicts")")
      case .singularValues(let step, let values): seen.append("sv \(step) \(values.keys.contains("G/linear.weight"))")
      case .checkpointSaved(let path): seen.append("checkpoint \((path as NSString).lastPathComponent)")
      case .samplesSaved(let path): seen.append("samples \((path as NSString).lastPathComponent)")
      case .warning, .evaluated, .bestCheckpointSaved: seen.append("\(event)")
      }
    }
    #expect(outcome == .finished)
    #expect(seen == [
      "step 1 window 1", "step 2 window 2", "metrics [1, 2] verdicts",
      "step 3 window 1", "checkpoint step-00000003", "samples step-00000003.png",
      "step 4 window 2", "metrics [3, 4] verdicts", "sv 4 true",
      "step 5 window 1", "step 6 window 2", "metrics [5, 6] verdicts", "checkpoint step-00000006", "samples step-00000006.png",
    ])
    #expect(Checkpoint.all(in: "\(folder)/checkpoint").map { ($0 as NSString).lastPathComponent } == ["step-00000003", "step-00000006"])
    let state = try Checkpoint.state(at: "\(folder)/checkpoint/step-00000006")
    #expect(state.schedule == Self.schedule && state.recipe == TrainingTests.recipe)
  }

  @Test("a run stopped by its caller checkpoints the step reached; resumed, it ends with the bits of one never stopped (also with R1 and the spectral clamp)", arguments: [false, true])
  func stopAndResume(remedies: Bool) throws {
    var recipe = TrainingTests.recipe
    if remedies {
      recipe.r1Gamma = 1
      recipe.spectralClamp = 1
    }
    let straight = Self.folder("run-straight"), split = Self.folder("run-split")
    defer { for f in [straight, split] { try? FileManager.default.removeItem(atPath: f) } }
    #expect(try Self.run(in: straight, recipe: recipe).run(stopRequested: { false }) { _ in } == .finished)
    let first = try Self.run(in: split, recipe: recipe)
    #expect(try first.run(stopRequested: { first.trainer.step == 4 }) { _ in } == .stopped)
    let reached = try #require(Checkpoint.newestValid(in: "\(split)/checkpoint"))
    #expect((reached as NSString).lastPathComponent == "step-00000004")
    #expect(FileManager.default.fileExists(atPath: "\(split)/samples/step-00000004.png"))
    let second = try Self.run(in: split, resumingFrom: reached, recipe: recipe)
    #expect(second.trainer.step == 4 && second.resumedFrom == reached)
    #expect(try second.run(stopRequested: { false }) { _ in } == .finished)
    for file in ["G", "G_ema", "D", "optimizer"] {
      let a = FileManager.default.contents(atPath: "\(straight)/checkpoint/step-00000006/\(file).safetensors")
      let b = FileManager.default.contents(atPath: "\(split)/checkpoint/step-00000006/\(file).safetensors")
      #expect(a != nil && a == b, "\(file) differs after stopping and resuming")
    }
  }
}
