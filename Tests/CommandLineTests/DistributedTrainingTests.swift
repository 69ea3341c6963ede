import BGKernels
import BigGAN
import Foundation
import Testing

/// `biggan-fast train` under `mpirun`: N ranks with a global batch take the
/// steps one process takes, the same N twice gives the same bits, a run
/// resumes with any number of ranks, and a failing rank ends them all.
@Suite(.serialized)
struct DistributedTrainingTests {
  /// The tiny preset where training is not chaotic (learning rates 1e-5,
  /// Adam epsilon 1e-4): with the preset's own, Adam turns rounding noise
  /// in gradients that are zero in exact arithmetic into whole steps and the
  /// first steps amplify any change of rounding about tenfold every two
  /// steps, so no other summation order could follow (CrossReplicaTests).
  static let recipe = [
    "--batch", "12", "--g-lr", "1e-5", "--d-lr", "1e-5", "--adam-eps", "1e-4", "--threads", "1",
    "--log-every", "1", "--sample-every", "1000", "--checkpoint-every", "1", "--keep", "100",
  ]

  static var mpirun: URL {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
      .map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    return URL(fileURLWithPath: path ?? "/usr/bin/mpirun")
  }

  /// `biggan-fast train` on `ranks` ranks (one plain process for 1).
  static func train(ranks: Int, _ arguments: [String], in dir: String, timeout: Double = 300) throws -> CommandLineTests.Result {
    guard ranks > 1 else { return try CommandLineTests.run("biggan-fast", ["train"] + arguments, in: dir, timeout: timeout) }
    return try CommandLineTests.run(
      "mpirun",
      ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", CommandLineTests.binary("biggan-fast").path, "train"] + arguments,
      in: dir, executable: mpirun, timeout: timeout)
  }

  /// Every line of a run's metrics.jsonl that has losses, by step.
  static func losses(_ dir: String, _ run: String) throws -> [Int: [Double]] {
    let text = try String(contentsOfFile: "\(dir)/runs/\(run)/metrics.jsonl", encoding: .utf8)
    var out: [Int: [Double]] = [:]
    for line in text.split(separator: "\n") {
      guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        let step = o["step"] as? Int, let g = o["loss_g"] as? Double
      else { continue }
      out[step] = [g, o["loss_d_real"] as! Double, o["loss_d_fake"] as! Double]
    }
    return out
  }

  /// The tensors of a checkpoint file, by name.
  static func tensors(_ dir: String, _ run: String, step: Int, _ file: String) throws -> [String: [Float]] {
    let f = try SafeTensorsFile(contentsOf: String(format: "%@/runs/%@/checkpoint/step-%08d/%@.safetensors", dir, run, step, file))
    var out: [String: [Float]] = [:]
    for name in f.names { out[name] = try f.tensor(name).storage }
    return out
  }

  /// `sqrt(sum (a - b)^2 / sum a^2)` over the tensors of a checkpoint file
  /// whose names pass `include`.
  static func distance(
    _ dir: String, _ a: String, _ b: String, step: Int, _ file: String, include: (String) -> Bool = { _ in true }
  ) throws -> Double {
    let x = try tensors(dir, a, step: step, file), y = try tensors(dir, b, step: step, file)
    var d2 = 0.0, n2 = 0.0
    for (name, u) in x where include(name) {
      for (p, q) in zip(u, y[name]!) {
        d2 += Double(p - q) * Double(p - q)
        n2 += Double(p) * Double(p)
      }
    }
    return (d2 / max(n2, 1e-300)).squareRoot()
  }

  static func relative(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).map { abs($0 - $1) / max(abs($0), 1e-3) }.max() ?? 0
  }

  static func expectSuccess(_ r: CommandLineTests.Result, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.status == 0, "\(r.output.suffix(2000))", sourceLocation: sourceLocation)
  }

  @Test("2 and 3 ranks take the steps of one process: losses, gradients and weights after 1 and 20 steps")
  func sameStepsAsOneProcess() throws {
    let dir = try CommandLineTests.scratch("mpi-same")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for ranks in [1, 2, 3] {
      Self.expectSuccess(try Self.train(ranks: ranks, Self.recipe + ["--steps", "20", "--run", "n\(ranks)", "--check-replicas", "5"], in: dir))
    }
    let one = try Self.losses(dir, "n1")
    for ranks in [2, 3] {
      let run = "n\(ranks)", many = try Self.losses(dir, run)
      #expect(Self.relative(one[1]!, many[1]!) < 1e-5, "\(ranks) ranks, step 1 losses \(one[1]!) vs \(many[1]!)")
      #expect(Self.relative(one[20]!, many[20]!) < 1e-4, "\(ranks) ranks, step 20 losses \(one[20]!) vs \(many[20]!)")
      for file in ["G", "D", "G_ema"] {
        let first = try Self.distance(dir, "n1", run, step: 1, file), last = try Self.distance(dir, "n1", run, step: 20, file)
        #expect(first < 1e-5, "\(ranks) ranks, \(file) after 1 step: \(first)")
        #expect(last < 1e-4, "\(ranks) ranks, \(file) after 20 steps: \(last)")
      }
      // With beta1 = 0 the first moment after one step is the gradient.
      // G's gradient goes through D's ReLUs after D's first updates, whose
      // gradients the ranks add in another order, so D's weights differ by
      // a few ulps; here one unit of D sits within that of its kink and
      // flips, moving G's gradient by 1.5e-3 (D's by 3e-7; seed 3 or a 5%
      // held-out share give 1e-6 for both). The weights agree to 1e-5.
      let gradients = try Self.distance(dir, "n1", run, step: 1, "optimizer") { $0.contains(".m.") }
      #expect(gradients < 2e-3, "\(ranks) ranks, gradients of step 1: \(gradients)")
      let a = try Checkpoint.state(at: "\(dir)/runs/n1/checkpoint/step-00000020")
      let b = try Checkpoint.state(at: "\(dir)/runs/\(run)/checkpoint/step-00000020")
      #expect(a.data == b.data && a.latentRandom == b.latentRandom)
    }
  }

  @Test("the same ranks twice give the same bits; per-replica batch-norm gives other steps")
  func determinism() throws {
    let dir = try CommandLineTests.scratch("mpi-bits")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let steps = ["--steps", "3"]
    for run in ["a", "b"] {
      Self.expectSuccess(try Self.train(ranks: 2, Self.recipe + steps + ["--run", run, "--check-replicas", "1"], in: dir))
    }
    Self.expectSuccess(try Self.train(ranks: 1, Self.recipe + steps + ["--run", "one"], in: dir))
    Self.expectSuccess(try Self.train(ranks: 2, Self.recipe + steps + ["--run", "off", "--cross-replica-bn", "off"], in: dir))
    for file in ["G", "G_ema", "D", "optimizer"] {
      let a = FileManager.default.contents(atPath: "\(dir)/runs/a/checkpoint/step-00000003/\(file).safetensors")
      let b = FileManager.default.contents(atPath: "\(dir)/runs/b/checkpoint/step-00000003/\(file).safetensors")
      #expect(a != nil && a == b, "\(file) differs between two runs on 2 ranks")
    }
    // Statistics of each half-batch instead of the whole: the generator
    // computes something else, far beyond rounding.
    let shared = try Self.distance(dir, "one", "a", step: 1, "G"), split = try Self.distance(dir, "one", "off", step: 1, "G")
    #expect(shared < 1e-5 && split > 100 * shared, "G after 1 step: cross-replica \(shared), per-replica \(split)")
    let losses = try Self.losses(dir, "one")[1]!, splitLosses = try Self.losses(dir, "off")[1]!
    #expect(Self.relative(losses, splitLosses) > 1e-4, "per-replica losses \(splitLosses) vs \(losses)")
  }

  @Test("a run resumes with any number of ranks: 2, then 1, then 3, as one process")
  func resumeAcrossRankCounts() throws {
    let dir = try CommandLineTests.scratch("mpi-resume")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    Self.expectSuccess(try Self.train(ranks: 1, Self.recipe + ["--steps", "15", "--run", "one"], in: dir))
    Self.expectSuccess(try Self.train(ranks: 2, Self.recipe + ["--steps", "5", "--run", "r"], in: dir))
    Self.expectSuccess(try Self.train(ranks: 1, Self.recipe + ["--steps", "10", "--run", "r", "--resume"], in: dir))
    Self.expectSuccess(try Self.train(ranks: 3, Self.recipe + ["--steps", "15", "--run", "r", "--resume"], in: dir))
    for file in ["G", "D", "G_ema"] {
      let d = try Self.distance(dir, "one", "r", step: 15, file)
      #expect(d < 1e-4, "\(file) after 15 steps on 2, 1 and 3 ranks: \(d)")
    }
    let a = try Checkpoint.state(at: "\(dir)/runs/one/checkpoint/step-00000015")
    let b = try Checkpoint.state(at: "\(dir)/runs/r/checkpoint/step-00000015")
    #expect(a.data == b.data && a.latentRandom == b.latentRandom && a.step == b.step)
  }

  @Test("a batch that does not split, other arguments on one rank and a killed rank end every rank with a clear message")
  func failures() throws {
    let dir = try CommandLineTests.scratch("mpi-fail")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let uneven = try Self.train(ranks: 3, ["--batch", "32", "--steps", "2", "--run", "u"], in: dir, timeout: 120)
    #expect(uneven.status != 0 && uneven.output.contains("--batch 32 does not split over 3 ranks"), "\(uneven.output)")
    #expect(Checkpoint.all(in: "\(dir)/runs/u/checkpoint").isEmpty)
    // One rank with a flag the others lack, one with a bad flag.
    let binary = CommandLineTests.binary("biggan-fast").path
    let base = ["--allow-run-as-root", "--oversubscribe", "-np", "1", binary, "train", "--steps", "2", "--batch", "8"]
    let other = try CommandLineTests.run(
      "mpirun", base + ["--run", "o", ":", "-np", "1", binary, "train", "--steps", "3", "--batch", "8", "--run", "o"],
      in: dir, executable: Self.mpirun, timeout: 120)
    #expect(other.status != 0 && other.output.contains("started with different arguments"), "\(other.output)")
    let bad = try CommandLineTests.run(
      "mpirun", base + ["--run", "b", ":", "-np", "1", binary, "train", "--steps", "2", "--batch", "8", "--run", "b", "--bogus"],
      in: dir, executable: Self.mpirun, timeout: 120)
    #expect(bad.status != 0 && bad.output.contains("--bogus") && !bad.output.contains("terminated by signal"), "\(bad.output)")
    // A rank killed mid-run: mpirun ends the other and fails at once.
    let process = Process()
    process.executableURL = Self.mpirun
    process.arguments = [
      "--allow-run-as-root", "--oversubscribe", "-np", "2", binary, "train", "--steps", "100000", "--run", "k",
      "--batch", "8", "--threads", "1",
    ]
    process.currentDirectoryURL = URL(fileURLWithPath: dir)
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    Thread.sleep(forTimeInterval: 8)
    let ranks = try CommandLineTests.run("pgrep", ["-P", "\(process.processIdentifier)"], executable: URL(fileURLWithPath: "/usr/bin/pgrep"))
    let pids = ranks.output.split(separator: "\n").compactMap { Int32($0) }
    #expect(pids.count == 2, "ranks: \(ranks.output)")
    kill(pids.last ?? 0, SIGKILL)
    let killed = Date()
    while process.isRunning && Date().timeIntervalSince(killed) < 60 { Thread.sleep(forTimeInterval: 0.2) }
    let ended = !process.isRunning
    if !ended { process.terminate() }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(ended && process.terminationStatus != 0, "\(output.suffix(1500))")
    #expect(output.contains("exited on signal 9"), "\(output.suffix(1500))")
  }
}
