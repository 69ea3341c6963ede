import BigGAN
import Foundation
import Testing

/// A run folder under a flaky machine and careless users: two processes on
/// one run, broken and stray checkpoints, SIGKILL while checkpointing, a
/// closed stderr, a metrics file on a full device, a resume on other data.
@Suite(.serialized)
struct RunSafetyTests {
  static func train(_ arguments: [String], in dir: String) throws -> CommandLineTests.Result {
    try CommandLineTests.run("biggan-fast", ["train"] + arguments, in: dir)
  }

  static func launch(_ arguments: [String], in dir: String, stderr: FileHandle? = nil) throws -> Process {
    let process = Process()
    process.executableURL = CommandLineTests.binary("biggan-fast")
    process.arguments = ["train"] + arguments
    process.currentDirectoryURL = URL(fileURLWithPath: dir)
    process.standardOutput = FileHandle.nullDevice
    process.standardError = stderr ?? FileHandle.nullDevice
    try process.run()
    return process
  }

  @Test("a second train on a held run stops with one line naming the holder; the first finishes")
  func twoProcesses() throws {
    let dir = try CommandLineTests.scratch("lock")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let first = try Self.launch(["--steps", "400", "--run", "r", "--batch", "8"], in: dir)
    // Wait until the first holds the lock (its run folder exists).
    for _ in 0..<200 where !FileManager.default.fileExists(atPath: "\(dir)/runs/r/config.json") { usleep(20_000) }
    let second = try Self.train(["--steps", "5", "--run", "r"], in: dir)
    CommandLineTests.expectError(second, "runs/r is in use by another biggan-fast process (pid \(first.processIdentifier))")
    first.terminate()
    first.waitUntilExit()
  }

  @Test("--resume skips broken, partial and stray checkpoint folders, saying which; stale temporaries go; metrics past the resumed step are dropped")
  func resumeFallback() throws {
    let dir = try CommandLineTests.scratch("fallback")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let common = ["--run", "f", "--batch", "8", "--checkpoint-every", "2", "--log-every", "1", "--keep", "5"]
    #expect(try Self.train(common + ["--steps", "4"], in: dir).status == 0)
    let checkpoints = "\(dir)/runs/f/checkpoint"
    try FileManager.default.removeItem(atPath: "\(checkpoints)/step-00000004/state.json")
    try FileManager.default.createDirectory(atPath: "\(checkpoints)/step-abc", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: "\(checkpoints)/.step-00000006.tmp-1", withIntermediateDirectories: true)
    let resumed = try Self.train(common + ["--steps", "4", "--resume"], in: dir)
    #expect(resumed.status == 0, "\(resumed.output)")
    #expect(resumed.output.contains("skipping \(checkpoints.replacingOccurrences(of: "\(dir)/", with: ""))/step-00000004: incomplete (no state.json)"), "\(resumed.output)")
    #expect(resumed.output.contains("resumed at step 2"))
    #expect(!FileManager.default.fileExists(atPath: "\(checkpoints)/.step-00000006.tmp-1"))
    // Steps 3 and 4 were logged twice (before and after the resume): once each now.
    let steps = try String(contentsOfFile: "\(dir)/runs/f/metrics.jsonl", encoding: .utf8).split(separator: "\n")
      .compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["step"] as? Int }
    #expect(steps == [1, 2, 3, 4], "\(steps)")
    #expect(FileManager.default.fileExists(atPath: "\(checkpoints)/step-00000004/state.json"))
  }

  @Test("a resumed run keeps its data; another --data is refused unless --change-data")
  func resumeRemembersData() throws {
    let dir = try CommandLineTests.scratch("data")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(try Self.train(["--run", "d", "--batch", "8", "--steps", "2"], in: dir).status == 0)
    CommandLineTests.expectError(
      try Self.train(["--run", "d", "--steps", "3", "--resume", "--data", "cifar10:elsewhere"], in: dir),
      "this run trained on builtin; resume without --data, or pass --change-data")
    let resumed = try Self.train(["--run", "d", "--steps", "3", "--resume"], in: dir)
    #expect(resumed.status == 0, "\(resumed.output)")
  }

  @Test("SIGKILL at any moment while checkpointing every step leaves a complete checkpoint to resume from")
  func killedWhileCheckpointing() throws {
    let dir = try CommandLineTests.scratch("kill")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let common = ["--run", "k", "--batch", "8", "--checkpoint-every", "1", "--sample-every", "1000", "--keep", "2"]
    let checkpoints = "\(dir)/runs/k/checkpoint"
    for round in 0..<4 {
      let before = Checkpoint.newestValid(in: checkpoints)
      let process = try Self.launch(common + ["--steps", "1000"] + (round == 0 ? [] : ["--resume"]), in: dir)
      // Once a new checkpoint is out, kill at a different offset into the
      // following saves each round.
      for _ in 0..<3000 where Checkpoint.newestValid(in: checkpoints) == before { usleep(10_000) }
      usleep(UInt32(37_000 * (round + 1)))
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      #expect(Checkpoint.newestValid(in: "\(dir)/runs/k/checkpoint") != nil, "round \(round): no complete checkpoint")
    }
    let finished = try Self.train(common + ["--steps", "1", "--resume"], in: dir)
    #expect(finished.status == 0, "\(finished.output)")
  }

  @Test("a closed stderr keeps log lines out of metrics.jsonl; a metrics file on a full device loses lines, not the run")
  func loggingFailures() throws {
    let dir = try CommandLineTests.scratch("logging")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let closed = Process()
    closed.executableURL = URL(fileURLWithPath: "/bin/sh")
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var binary = products.appendingPathComponent("biggan-fast").path
    if !FileManager.default.fileExists(atPath: binary) { binary = products.deletingLastPathComponent().appendingPathComponent("biggan-fast").path }
    closed.arguments = ["-c", "'\(binary)' train --run c --batch 8 --steps 2 --log-every 1 2>&-"]
    closed.currentDirectoryURL = URL(fileURLWithPath: dir)
    try closed.run()
    closed.waitUntilExit()
    #expect(closed.terminationStatus == 0)
    let lines = try String(contentsOfFile: "\(dir)/runs/c/metrics.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 2 && lines.allSatisfy { $0.hasPrefix("{") }, "\(lines)")

    try FileManager.default.createDirectory(atPath: "\(dir)/runs/full", withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: "\(dir)/runs/full/metrics.jsonl", withDestinationPath: "/dev/full")
    let full = try Self.train(["--run", "full", "--batch", "8", "--steps", "2", "--log-every", "1"], in: dir)
    #expect(full.status == 0, "\(full.output)")
    #expect(full.output.contains("cannot append"))
    #expect(Checkpoint.newestValid(in: "\(dir)/runs/full/checkpoint") != nil)
  }

  @Test("damaged state.json values (checkpointEvery 0, short RNG state, negative position, emaDecay 2) are refused by name")
  func damagedState() throws {
    let dir = try CommandLineTests.scratch("state")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(try Self.train(["--run", "s", "--batch", "8", "--steps", "2"], in: dir).status == 0)
    let path = "\(dir)/runs/s/checkpoint/step-00000002/state.json"
    let bytes = try #require(FileManager.default.contents(atPath: path))
    let original = try #require(try JSONSerialization.jsonObject(with: bytes) as? [String: Any])
    let edits: [(String, ([String: Any]) -> [String: Any], String)] = [
      ("checkpointEvery 0", { var o = $0; var r = o["recipe"] as! [String: Any]; r["checkpointEvery"] = 0; o["recipe"] = r; return o }, "checkpointEvery is 0"),
      ("emaDecay 2", { var o = $0; var r = o["recipe"] as! [String: Any]; r["emaDecay"] = 2; o["recipe"] = r; return o }, "emaDecay is 2"),
      ("negative offset", { var o = $0; var d = o["data"] as! [String: Any]; d["offset"] = -1; o["data"] = d; return o }, "data position"),
      ("short RNG state", { var o = $0; o["latentRandom"] = [1, 2]; return o }, "latentRandom has 2 words"),
    ]
    for (name, edit, fragment) in edits {
      try JSONSerialization.data(withJSONObject: edit(original)).write(to: URL(fileURLWithPath: path))
      let r = try Self.train(["--run", "s", "--steps", "3", "--resume"], in: dir)
      #expect(r.status != 0 && r.output.contains(fragment) && r.output.contains("no complete checkpoint"), "\(name): \(r.output)")
      #expect(!r.output.contains("Fatal error"))
    }
  }

  /// The state.json `train --batch 4 --steps 1` wrote before the trainer's
  /// recipe and the run's schedule were separate types: one flat `recipe`
  /// object, precision a string.
  static let earlierState = """
    {
      "data" : {
        "epoch" : 0,
        "offset" : 8
      },
      "discriminatorOptimizerStep" : 2,
      "generatorOptimizerStep" : 1,
      "latentRandom" : [
        18040620294764162025,
        2263114227530706236,
        10460349220639341562,
        9626024851733413941
      ],
      "model" : {
        "architecture" : "biggan",
        "bnEps" : 1e-05,
        "classes" : 10,
        "dimZ" : 64,
        "discriminatorAttention" : [

        ],
        "discriminatorChannels" : 16,
        "generatorAttention" : [

        ],
        "generatorChannels" : 16,
        "hierarchical" : true,
        "initialization" : {
          "orthogonal" : {

          }
        },
        "resolution" : 32,
        "sharedDim" : 32,
        "snEps" : 1e-06,
        "spectralNorm" : true,
        "statisticsRows" : 1
      },
      "recipe" : {
        "accumulate" : 1,
        "adamEpsilon" : 1e-08,
        "batch" : 4,
        "beta1" : 0,
        "beta2" : 0.999,
        "checkpointEvery" : 100,
        "collapseFactor" : 5,
        "discriminatorLearningRate" : 0.0002,
        "discriminatorSteps" : 2,
        "emaDecay" : 0.99,
        "emaStart" : 200,
        "generatorLearningRate" : 0.0002,
        "heldOut" : 0.02,
        "keepCheckpoints" : 3,
        "logEvery" : 10,
        "orthogonalStrength" : 0.0001,
        "precision" : "fp32",
        "sampleEvery" : 100,
        "seed" : 0,
        "singularValueEvery" : 100,
        "steps" : 1
      },
      "step" : 1
    }
    """

  @Test("a checkpoint whose state.json is in the earlier format resumes to the bits of a run never stopped; new ones are written the same")
  func earlierStateFormat() throws {
    let dir = try CommandLineTests.scratch("earlier-state")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(try Self.train(["--run", "straight", "--batch", "4", "--steps", "3", "--threads", "1"], in: dir).status == 0)
    #expect(try Self.train(["--run", "old", "--batch", "4", "--steps", "1", "--threads", "1"], in: dir).status == 0)
    let state = "\(dir)/runs/old/checkpoint/step-00000001/state.json"
    #expect(try String(contentsOfFile: state, encoding: .utf8) == Self.earlierState)
    try Data(Self.earlierState.utf8).write(to: URL(fileURLWithPath: state))
    let resumed = try Self.train(["--run", "old", "--steps", "3", "--threads", "1", "--resume"], in: dir)
    #expect(resumed.status == 0 && resumed.output.contains("resumed at step 1"), "\(resumed.output)")
    for file in ["G", "G_ema", "D", "optimizer"] {
      let a = FileManager.default.contents(atPath: "\(dir)/runs/straight/checkpoint/step-00000003/\(file).safetensors")
      let b = FileManager.default.contents(atPath: "\(dir)/runs/old/checkpoint/step-00000003/\(file).safetensors")
      #expect(a != nil && a == b, "\(file) differs after resuming from the earlier state.json")
    }
  }

  @Test("a data set of one image trains; a FIFO named like an image is refused instead of hanging")
  func oddData() throws {
    let dir = try CommandLineTests.scratch("odd-data")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(atPath: "\(dir)/data/a", withIntermediateDirectories: true)
    try PNG.write(PNG.Image(width: 8, height: 8, pixels: [UInt8](repeating: 90, count: 192)), to: "\(dir)/data/a/x.png")
    let one = try Self.train(["--data", "data", "--run", "one", "--batch", "4", "--steps", "2"], in: dir)
    #expect(one.status == 0, "\(one.output)")
    #expect(mkfifo("\(dir)/data/a/y.png", 0o644) == 0)
    CommandLineTests.expectError(
      try Self.train(["--data", "data", "--run", "two", "--batch", "4", "--steps", "2"], in: dir),
      "data/a/y.png: not a regular file")
  }
}
