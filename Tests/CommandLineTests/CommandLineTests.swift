import BGKernels
import BigGAN
import Foundation
import Testing

/// The built command-line tools, run as a user would: bad input gives one
/// clear line and a non-zero exit; a run interrupted and resumed ends with the
/// same checkpoint bytes as one that was not.
@Suite(.serialized)
struct CommandLineTests {
  struct Result {
    var status: Int32
    var output: String
  }

  /// A tool built next to this test bundle.
  static func binary(_ tool: String) -> URL {
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let binary = products.appendingPathComponent(tool)
    guard FileManager.default.fileExists(atPath: binary.path) else {
      return products.deletingLastPathComponent().appendingPathComponent(tool)
    }
    return binary
  }

  /// Runs a tool built next to this test bundle (or, with `executable`,
  /// that program); past `timeout` seconds it is terminated and the result
  /// says so.
  static func run(
    _ tool: String, _ arguments: [String], in folder: String? = nil, executable: URL? = nil,
    timeout: Double? = nil
  ) throws -> Result {
    let process = Process()
    process.executableURL = executable ?? binary(tool)
    process.arguments = arguments
    if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let watchdog = DispatchWorkItem { [process] in
      if process.isRunning { process.terminate() }
    }
    if let timeout { DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog) }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    watchdog.cancel()
    var output = String(decoding: data, as: UTF8.self)
    if process.terminationReason == .uncaughtSignal { output += "\n[terminated by signal \(process.terminationStatus)]" }
    return Result(status: process.terminationStatus, output: output)
  }

  static func scratch(_ name: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(name)-\(getpid())").path
    try? FileManager.default.removeItem(atPath: path)
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  /// A small random 1000-class generator (ImageNet's classes, no names of
  /// its own) written as a weights file.
  static func writeImageNetModel(to path: String) throws {
    let config = BigGANConfiguration(
      resolution: 32, generatorChannels: 2, discriminatorChannels: 2, dimZ: 8, sharedDim: 4,
      classes: 1000, generatorAttention: [], discriminatorAttention: [])
    let g = try Generator(config, seed: 1, initialization: .normal(std: 0.1))
    let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
    try StateDict.save(g, to: path, metadata: ["config": json])
  }

  static func expectError(_ r: Result, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.status != 0, "exit status", sourceLocation: sourceLocation)
    let first = r.output.split(separator: "\n").first.map(String.init) ?? ""
    #expect(first.hasPrefix("Error: ") && first.contains(fragment), "first line: \(first)", sourceLocation: sourceLocation)
    #expect(!r.output.contains("Fatal error") && !r.output.contains("Stack dump"), sourceLocation: sourceLocation)
  }

  @Test("one preset registry: info shows every preset with its recipe and schedule; train --help lists each one's values")
  func presets() throws {
    let help = try Self.run("biggan-fast", ["train", "--help"]).output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    for name in TrainingPreset.names {
      let preset = TrainingPreset.all[name]!
      let r = try Self.run("biggan-fast", ["info", "--config", name])
      #expect(r.status == 0 && r.output.contains("config:        \(name)"), "\(name): \(r.output)")
      #expect(r.output.contains("recipe:        \(preset.recipe)") && r.output.contains("schedule:      \(preset.schedule)"), "\(r.output)")
      #expect(help.contains("\(name): \(preset.summary). Recipe: \(preset.recipe). Schedule: \(preset.schedule)."), "\(name)")
    }
    #expect(help.contains("tiny: ") && help.contains("G lr 2e-4") && help.contains("EMA 0.99 from step 200"))
    #expect(TrainingPreset.all["imagenet256"] != nil && TrainingPreset.all["tiny"] != nil)
  }

  @Test("a truncation near 0 does not hang the resample loop; empty --classes is an error")
  func tinyTruncation() throws {
    var rng = SeededRandom(seed: 1)
    let z = Truncation.resample.latents(count: 4, dim: 128, truncation: 1e-30, rng: &rng)
    #expect(z.allSatisfy { abs($0) <= 2e-30 })
    rng = SeededRandom(seed: 1)
    let usual = Truncation.resample.latents(count: 4, dim: 128, truncation: 0.5, rng: &rng)
    #expect(usual.allSatisfy { abs($0) <= 1 } && Set(usual).count == usual.count)
    let dir = try Self.scratch("classes")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(try Self.run("biggan-fast", ["train", "--run", "t", "--batch", "8", "--steps", "1"], in: dir).status == 0)
    Self.expectError(try Self.run("biggan-fast", ["sample", "--run", "t", "--classes", ""], in: dir), "--classes is empty")
  }

  @Test("bad flags and values are one line naming the problem, exit status non-zero")
  func badFlags() throws {
    let dir = try Self.scratch("flags")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    Self.expectError(try Self.run("biggan-fast", ["train", "--bogus"]), "bogus")
    Self.expectError(try Self.run("biggan-fast", ["train", "--config", "huge"]), "unknown config 'huge'")
    Self.expectError(try Self.run("biggan-fast", ["train", "--steps", "0"]), "--steps must be at least 1")
    Self.expectError(try Self.run("biggan-fast", ["train", "--g-lr", "-1"]), "--g-lr")
    Self.expectError(try Self.run("biggan-fast", ["train", "--data", "\(dir)/missing"], in: dir), "no such folder")
    Self.expectError(try Self.run("biggan-fast", ["train", "--data", "cifar10:\(dir)"], in: dir), "data_batch")
    Self.expectError(try Self.run("biggan-fast", ["sample", "--run", "nothing"], in: dir), "no checkpoint in runs/nothing; train first or pass --checkpoint")
    Self.expectError(try Self.run("biggan-fast", ["sample", "--run", "x", "--truncation", "1.5"]), "--truncation must be in (0, 1]")
    Self.expectError(try Self.run("biggan-fast", ["sample", "--checkpoint", "\(dir)/none.safetensors"]), "no such file")
    try Data("garbage".utf8).write(to: URL(fileURLWithPath: "\(dir)/bad.safetensors"))
    Self.expectError(try Self.run("biggan-fast", ["sample", "--checkpoint", "\(dir)/bad.safetensors"]), "bad.safetensors")
    Self.expectError(try Self.run("biggan-fast", ["info", "--config", "imagenet128", "--g-attention", "48"]), "generator attention at 48 px")
    Self.expectError(try Self.run("bgkernels", ["bench", "--case", "gemm/none"]), "unknown case 'gemm/none'")
  }

  @Test("fixed choices are typed: --help lists them, a bad one is one line naming the choices")
  func typedChoices() throws {
    // Help wraps its lines: compare with runs of whitespace as one space.
    func unwrapped(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
    let help = unwrapped(try Self.run("biggan-fast", ["sample", "--help"]).output)
    #expect(help.contains("(values: resample, scale; default: resample)"), "\(help)")
    #expect(help.contains("(values: pretrained, linear; default: pretrained)"), "\(help)")
    for description in ["class fixed, latents blended", "latent fixed, class embeddings blended", "latents and class embeddings blended"] {
      #expect(help.contains("- \(description)"), "\(description)")
    }
    #expect(unwrapped(try Self.run("biggan-fast", ["eval", "--help"]).output).contains("(values: resample, scale; default: resample)"))
    for (arguments, fragments) in [
      (["sample", "--run", "r", "--truncation-mode", "clip"], ["'clip' is invalid for '--truncation-mode", "'resample'", "'scale'"]),
      (["eval", "--run", "r", "--truncation-mode", "clip"], ["'clip' is invalid for '--truncation-mode", "'resample'", "'scale'"]),
      (["sample", "--run", "r", "--statistics-blend", "cubic"], ["'cubic' is invalid for '--statistics-blend", "'pretrained'", "'linear'"]),
      (["sample", "--run", "r", "--interpolate", "w"], ["'w' is invalid for '--interpolate", "--interpolate must be z, class or both"]),
    ] {
      for fragment in fragments { Self.expectError(try Self.run("biggan-fast", arguments), fragment) }
    }
  }

  @Test("train, interrupt, resume: the same checkpoint bytes as an uninterrupted run; then sample")
  func trainResumeSample() throws {
    let dir = try Self.scratch("train")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let common = ["train", "--batch", "4", "--log-every", "1", "--sample-every", "100", "--checkpoint-every", "100", "--threads", "2"]
    let straight = try Self.run("biggan-fast", common + ["--run", "straight", "--steps", "4"], in: dir)
    #expect(straight.status == 0, "\(straight.output)")
    let first = try Self.run("biggan-fast", common + ["--run", "split", "--steps", "2"], in: dir)
    #expect(first.status == 0, "\(first.output)")
    Self.expectError(try Self.run("biggan-fast", common + ["--run", "split", "--steps", "4"], in: dir), "pass --resume")
    let second = try Self.run("biggan-fast", common + ["--run", "split", "--steps", "4", "--resume"], in: dir)
    #expect(second.status == 0, "\(second.output)")
    for file in ["G.safetensors", "G_ema.safetensors", "D.safetensors", "optimizer.safetensors"] {
      let a = FileManager.default.contents(atPath: "\(dir)/runs/straight/checkpoint/step-00000004/\(file)")
      let b = FileManager.default.contents(atPath: "\(dir)/runs/split/checkpoint/step-00000004/\(file)")
      #expect(a != nil && a == b, "\(file) differs between the straight and the resumed run")
    }
    let lines = try String(contentsOfFile: "\(dir)/runs/split/metrics.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(lines.filter { $0.contains("\"loss_g\"") }.count == 4)
    let sample = try Self.run("biggan-fast", ["sample", "--run", "split", "--classes", "1,4", "--count", "2", "--grid", "--output", "out"], in: dir)
    #expect(sample.status == 0, "\(sample.output)")
    let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").sorted()
    #expect(files == ["class1_0000.png", "class1_0001.png", "class4_0000.png", "class4_0001.png", "grid.png"])
    let sweep = try Self.run("biggan-fast", ["sample", "--run", "split", "--classes", "2", "--sweep", "0.25,0.5,1", "--output", "sweep"], in: dir)
    #expect(sweep.status == 0, "\(sweep.output)")
    #expect(FileManager.default.fileExists(atPath: "\(dir)/sweep/sweep.png"))
    Self.expectError(try Self.run("biggan-fast", ["sample", "--run", "split", "--sweep", "0.5,1.5"], in: dir), "--sweep: '1.5'")
    for mode in ["z", "class", "both"] {
      let sheet = try Self.run("biggan-fast", ["sample", "--run", "split", "--interpolate", mode, "--count", "2", "--output", "interp-\(mode)"], in: dir)
      #expect(sheet.status == 0, "\(sheet.output)")
      let png = FileManager.default.contents(atPath: "\(dir)/interp-\(mode)/interp.png")
      #expect(png != nil)
    }
    Self.expectError(try Self.run("biggan-fast", ["sample", "--run", "split", "--interpolate", "y"], in: dir), "--interpolate must be z, class or both")
    Self.expectError(try Self.run("biggan-fast", ["sample", "--run", "split", "--classes", "golden retriever"], in: dir), "names are for 1000-class ImageNet models")
  }

  @Test("sample takes the class names a run was trained on: the built-in data's and an image folder's")
  func sampleByRunNames() throws {
    let dir = try Self.scratch("run-names")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let train = ["train", "--steps", "2", "--batch", "4", "--threads", "2", "--sample-every", "100"]
    func sample(_ arguments: [String], into output: String) throws -> [String] {
      let r = try Self.run("biggan-fast", ["sample", "--count", "1", "--output", output] + arguments, in: dir)
      #expect(r.status == 0, "\(r.output)")
      return try FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(output)").sorted()
    }
    let shapes = try Self.run("biggan-fast", train + ["--run", "shapes"], in: dir)
    #expect(shapes.status == 0, "\(shapes.output)")
    #expect(try sample(["--run", "shapes", "--classes", "disc, ring"], into: "a") == ["class0_0000.png", "class3_0000.png"])
    // A checkpoint inside the run folder finds the run's names too; case is
    // ignored when only one name matches.
    let weights = "runs/shapes/checkpoint/step-00000002/G_ema.safetensors"
    #expect(try sample(["--checkpoint", weights, "--classes", "Two-Discs,1"], into: "b") == ["class1_0000.png", "class9_0000.png"])
    Self.expectError(
      try Self.run("biggan-fast", ["sample", "--run", "shapes", "--classes", "disc,rings"], in: dir),
      "--classes: 'rings' is not a class of this run (runs/shapes/classes.json: disc, square, triangle, ring, cross, diamond, horizontal-bars, vertical-bars, checkerboard, two-discs) nor a class index in 0..<10")

    for (label, name) in ["apples", "pears"].enumerated() {
      try FileManager.default.createDirectory(atPath: "\(dir)/fruit/\(name)", withIntermediateDirectories: true)
      for i in 0..<2 {
        let pixels = (0..<40 * 36 * 3).map { UInt8(truncatingIfNeeded: $0 * (label + 2) + i) }
        try PNG.write(PNG.Image(width: 40, height: 36, pixels: pixels), to: "\(dir)/fruit/\(name)/\(i).png")
      }
    }
    let fruit = try Self.run("biggan-fast", train + ["--run", "fruit", "--data", "fruit"], in: dir)
    #expect(fruit.status == 0, "\(fruit.output)")
    #expect(try sample(["--run", "fruit", "--classes", "pears"], into: "c") == ["class1_0000.png"])
    Self.expectError(try Self.run("biggan-fast", ["sample", "--run", "fruit", "--classes", "plums"], in: dir), "(runs/fruit/classes.json: apples, pears)")
  }

  @Test("SIGINT or SIGTERM stops train with status 130 and a complete checkpoint of the step reached, which --resume continues", arguments: [SIGINT, SIGTERM])
  func stopBySignal(_ signal: Int32) throws {
    let dir = try Self.scratch("signal-\(signal)")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let common = ["train", "--run", "s", "--batch", "4", "--log-every", "1", "--sample-every", "1000", "--checkpoint-every", "1000", "--threads", "1"]
    let process = Process()
    process.executableURL = Self.binary("biggan-fast")
    process.arguments = common + ["--steps", "100000"]
    process.currentDirectoryURL = URL(fileURLWithPath: dir)
    try Data().write(to: URL(fileURLWithPath: "\(dir)/log.txt"))
    let log = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/log.txt"))
    process.standardOutput = log
    process.standardError = log
    try process.run()
    // A few steps logged: the run is in its loop, past setting up.
    func logged() -> Int {
      ((try? String(contentsOfFile: "\(dir)/runs/s/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
    }
    for _ in 0..<6000 where logged() < 3 && process.isRunning { usleep(10_000) }
    kill(process.processIdentifier, signal)
    let sent = Date()
    while process.isRunning && Date().timeIntervalSince(sent) < 60 { usleep(10_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    try log.close()
    let output = try String(contentsOfFile: "\(dir)/log.txt", encoding: .utf8)
    #expect(process.terminationReason == .exit && process.terminationStatus == 130, "\(output.suffix(1000))")
    let stopLine = try #require(output.split(separator: "\n").first { $0.hasPrefix("stopped by signal at step ") }, "\(output.suffix(1000))")
    let step = try #require(Int(stopLine.dropFirst("stopped by signal at step ".count).prefix { $0.isNumber }))
    #expect(step >= 3 && stopLine.hasSuffix("; resume with --resume"), "\(stopLine)")
    let reached = String(format: "runs/s/checkpoint/step-%08d", step)
    #expect(Checkpoint.newestValid(in: "\(dir)/runs/s/checkpoint") == "\(dir)/\(reached)")
    #expect(try Checkpoint.state(at: "\(dir)/\(reached)").step == step)
    #expect(FileManager.default.fileExists(atPath: String(format: "%@/runs/s/samples/step-%08d.png", dir, step)))
    let resumed = try Self.run("biggan-fast", common + ["--steps", "\(step + 2)", "--resume"], in: dir)
    #expect(resumed.status == 0 && resumed.output.contains("resumed at step \(step) from \(reached)"), "\(resumed.output)")
    #expect(Checkpoint.newestValid(in: "\(dir)/runs/s/checkpoint") == String(format: "%@/runs/s/checkpoint/step-%08d", dir, step + 2))
  }

  @Test("sample a 1000-class model by ImageNet names and by soft class vectors")
  func sampleByName() throws {
    let dir = try Self.scratch("names")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Self.writeImageNetModel(to: "\(dir)/G.safetensors")
    let named = try Self.run("biggan-fast", ["sample", "--checkpoint", "G.safetensors", "--classes", "golden retriever, Volcano", "--count", "1", "--output", "out"], in: dir)
    #expect(named.status == 0, "\(named.output)")
    let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").sorted()
    #expect(files == ["class207_0000.png", "class980_0000.png"])
    Self.expectError(try Self.run("biggan-fast", ["sample", "--checkpoint", "G.safetensors", "--classes", "crane"], in: dir), "ambiguous")
    Self.expectError(try Self.run("biggan-fast", ["sample", "--checkpoint", "G.safetensors", "--output", "/proc/none"], in: dir), "--output /proc/none: cannot create this folder")
    Self.expectError(try Self.run("biggan-fast", ["sample", "--checkpoint", "G.safetensors", "--classes", "golden retreiver"], in: dir), "did you mean 'golden retriever' (207)")

    var y = [Float](repeating: 0, count: 2 * 1000)
    (y[207], y[1000 + 207], y[1000 + 980]) = (1, 0.25, 0.75)
    try NPY.write(y, shape: [2, 1000], to: "\(dir)/y.npy")
    try NPY.write((0..<16).map { Float($0 % 5) * 0.3 - 0.6 }, shape: [2, 8], to: "\(dir)/z.npy")
    let soft = try Self.run("biggan-fast", ["sample", "--checkpoint", "G.safetensors", "--z", "z.npy", "--y", "y.npy", "--out", "npy", "--output", "soft"], in: dir)
    #expect(soft.status == 0, "\(soft.output)")
    let (values, shape) = try NPY.read("\(dir)/soft/samples.npy")
    #expect(shape == [2, 32, 32, 3] && values.allSatisfy { $0.isFinite && abs($0) <= 1 })
    try NPY.write([Float](repeating: 0, count: 3 * 1000), shape: [3, 1000], to: "\(dir)/y3.npy")
    Self.expectError(try Self.run("biggan-fast", ["sample", "--checkpoint", "G.safetensors", "--z", "z.npy", "--y", "y3.npy"], in: dir), "expected [2] class indices or [2, 1000] class vectors")
  }
}
