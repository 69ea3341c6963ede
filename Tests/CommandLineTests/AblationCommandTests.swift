import BigGAN
import Foundation
import Testing

/// The paper's Table 1 ablations as a user trains them: `train --no-shared
/// --no-hier --g-ch N --d-ch N` records the model, a resume keeps it, and
/// `sample` and `eval` read the run.
@Suite(.serialized)
struct AblationCommandTests {
  static func run(_ arguments: [String], in folder: String? = nil) throws -> CommandLineTests.Result {
    try CommandLineTests.run("biggan-fast", arguments, in: folder)
  }

  @Test("train --no-shared --no-hier --g-ch 8 --d-ch 8 writes its model; a resume with another --g-ch is one line; sample and eval read the run")
  func ablatedRun() throws {
    let dir = try CommandLineTests.scratch("ablation")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let common = ["train", "--run", "a", "--batch", "4", "--checkpoint-every", "1", "--sample-every", "1000", "--log-every", "1"]
    let trained = try Self.run(common + ["--steps", "2", "--no-shared", "--no-hier", "--g-ch", "8", "--d-ch", "8"], in: dir)
    #expect(trained.status == 0, "\(trained.output)")

    let config = try #require(FileManager.default.contents(atPath: "\(dir)/runs/a/config.json"))
    let object = try #require(try JSONSerialization.jsonObject(with: config) as? [String: Any])
    let model = try #require(object["model"] as? [String: Any])
    #expect(model["sharedEmbedding"] as? Bool == false && model["hierarchical"] as? Bool == false)
    #expect(model["generatorChannels"] as? Int == 8 && model["discriminatorChannels"] as? Int == 8)

    // The reference's per-norm embeddings, nn.Embedding(classes, channels).
    let weights = try SafeTensorsFile(contentsOf: "\(dir)/runs/a/checkpoint/step-00000002/G.safetensors")
    #expect(!weights.contains("shared.weight") && !weights.contains("blocks.0.0.bn1.gain_z.weight"))
    #expect(try weights.info("blocks.0.0.bn1.gain.weight").shape == [10, 32])
    #expect(try weights.info("linear.weight").shape == [16 * 32, 64], "the stem takes the whole z")

    let refused = try Self.run(common + ["--steps", "3", "--resume", "--g-ch", "12"], in: dir)
    CommandLineTests.expectError(refused, "--g-ch 12: this run's generator has ch 8; resume without it or start another --run")
    #expect(refused.output.components(separatedBy: "Error:").count == 2, "\(refused.output)")
    let shared = ["train", "--run", "b", "--batch", "4", "--checkpoint-every", "1", "--sample-every", "1000"]
    #expect(try Self.run(shared + ["--steps", "1"], in: dir).status == 0)
    CommandLineTests.expectError(
      try Self.run(shared + ["--steps", "2", "--resume", "--no-shared"], in: dir),
      "--no-shared: this run's generator has a shared class embedding")
    let resumed = try Self.run(common + ["--steps", "3", "--resume", "--no-shared", "--g-ch", "8"], in: dir)
    #expect(resumed.status == 0 && resumed.output.contains("resumed at step 2"), "\(resumed.output)")

    let sampled = try Self.run(["sample", "--run", "a", "--classes", "all", "--count", "1", "--grid", "--output", "out"], in: dir)
    #expect(sampled.status == 0, "\(sampled.output)")
    #expect(try PNG.read("\(dir)/out/grid.png").width > 0)
    // Class blends go through every norm's own embedding.
    let blended = try Self.run(["sample", "--run", "a", "--interpolate", "class", "--count", "1", "--output", "blend"], in: dir)
    #expect(blended.status == 0, "\(blended.output)")

    let w = ["--inception", EvaluationCommandTests.weights]
    let stats = try Self.run(["stats", "--data", "builtin", "--resolution", "32", "--count", "16", "--out", "ref.npz"] + w, in: dir)
    #expect(stats.status == 0, "\(stats.output)")
    let evaluated = try Self.run(["eval", "--run", "a", "--ref", "ref.npz", "--count", "12", "--metrics", "fid"] + w, in: dir)
    #expect(evaluated.status == 0 && evaluated.output.contains("frechet_inception_distance: "), "\(evaluated.output)")
  }

  @Test("ablation flags out of range or for BigGAN-deep are one line naming the problem")
  func badAblations() throws {
    let dir = try CommandLineTests.scratch("ablation-flags")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    CommandLineTests.expectError(try Self.run(["train", "--g-ch", "0"]), "--g-ch must be at least 1, got 0")
    CommandLineTests.expectError(try Self.run(["info", "--d-ch", "-2"]), "--d-ch must be at least 1, got -2")
    CommandLineTests.expectError(
      try Self.run(["info", "--config", "imagenet128-deep", "--no-shared"]), "BigGAN-deep needs the shared class embedding")
    CommandLineTests.expectError(
      try Self.run(["train", "--run", "deep", "--config", "imagenet128-deep", "--no-shared"], in: dir),
      "--config imagenet128-deep --no-shared: BigGAN-deep needs the shared class embedding")
    CommandLineTests.expectError(
      try Self.run(["info", "--config", "imagenet128", "--dim-z", "100"]), "dim_z 100 does not split into 6 equal hierarchical chunks")
    let flat = try Self.run(["info", "--config", "imagenet128", "--dim-z", "100", "--no-hier", "--no-shared"])
    #expect(flat.status == 0 && flat.output.contains("dim_z 100 (stem only), no shared embedding (one per batch-norm)"), "\(flat.output)")
  }
}

/// The paper's Section 4.2 remedies for D as a user trains them: `train
/// --r1 GAMMA` logs the penalty, `--sv-clamp SIGMA` clamps D, both are
/// recorded only when on, and a resume keeps them.
@Suite(.serialized)
struct StabilityCommandTests {
  static func run(_ arguments: [String], in folder: String? = nil) throws -> CommandLineTests.Result {
    try CommandLineTests.run("biggan-fast", arguments, in: folder)
  }

  static func metrics(_ path: String) throws -> [[String: Any]] {
    let text = try #require(FileManager.default.contents(atPath: path).flatMap { String(data: $0, encoding: .utf8) })
    return try text.split(separator: "\n").map { line in
      try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }
  }

  static func recipe(_ path: String) throws -> [String: Any] {
    let data = try #require(FileManager.default.contents(atPath: path))
    let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    return try #require(object["recipe"] as? [String: Any])
  }

  @Test("train --r1 1 and --sv-clamp log r1 and record their values; a resume with another value is one line")
  func remedies() throws {
    let dir = try CommandLineTests.scratch("stability")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let common = ["train", "--batch", "4", "--checkpoint-every", "1", "--sample-every", "1000", "--log-every", "1"]
    let r1 = try Self.run(common + ["--run", "r1", "--steps", "2", "--r1", "1", "--accumulate", "2"], in: dir)
    #expect(r1.status == 0, "\(r1.output)")
    let lines = try Self.metrics("\(dir)/runs/r1/metrics.jsonl").filter { $0["loss_g"] != nil }
    #expect(lines.count == 2 && lines.allSatisfy { ($0["r1"] as? Double).map { $0 > 0 && $0.isFinite } ?? false }, "\(lines)")
    #expect(try Self.recipe("\(dir)/runs/r1/config.json")["r1Gamma"] as? Double == 1)
    #expect(try Self.recipe("\(dir)/runs/r1/checkpoint/step-00000002/state.json")["r1Gamma"] as? Double == 1)
    CommandLineTests.expectError(
      try Self.run(common + ["--run", "r1", "--steps", "3", "--resume", "--r1", "10"], in: dir),
      "--r1 10.0: this run trains with R1 gamma 1.0; resume without it or start another --run")
    let resumed = try Self.run(common + ["--run", "r1", "--steps", "3", "--resume", "--r1", "1"], in: dir)
    #expect(resumed.status == 0 && resumed.output.contains("resumed at step 2"), "\(resumed.output)")

    let clamp = try Self.run(common + ["--run", "clamp", "--steps", "1", "--sv-clamp", "0.5", "--precision", "bf16", "--r1", "10"], in: dir)
    #expect(clamp.status == 0, "\(clamp.output)")
    let recipe = try Self.recipe("\(dir)/runs/clamp/config.json")
    #expect(recipe["spectralClamp"] as? Double == 0.5 && recipe["r1Gamma"] as? Double == 10)
    CommandLineTests.expectError(
      try Self.run(common + ["--run", "clamp", "--steps", "2", "--resume", "--sv-clamp", "2"], in: dir),
      "--sv-clamp 2.0: this run trains with D's singular values clamped to 0.5")

    // Off, nothing is recorded: a run's files read as before, and a resume
    // cannot switch a remedy on.
    #expect(try Self.run(common + ["--run", "plain", "--steps", "1", "--r1", "0"], in: dir).status == 0)
    let plain = try Self.recipe("\(dir)/runs/plain/checkpoint/step-00000001/state.json")
    #expect(plain["r1Gamma"] == nil && plain["spectralClamp"] == nil, "\(plain)")
    #expect(try Self.metrics("\(dir)/runs/plain/metrics.jsonl").allSatisfy { $0["r1"] == nil })
    CommandLineTests.expectError(
      try Self.run(common + ["--run", "plain", "--steps", "2", "--resume", "--r1", "1"], in: dir),
      "--r1 1.0: this run trains with no R1 penalty")
  }

  @Test("bad --r1 and --sv-clamp values, and R1 on a D with self-attention, are one line")
  func badValues() throws {
    let dir = try CommandLineTests.scratch("stability-flags")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    CommandLineTests.expectError(try Self.run(["train", "--r1", "-1"]), "--r1 must be a number at least 0 (0: off), got -1.0")
    CommandLineTests.expectError(try Self.run(["train", "--r1", "nan"]), "--r1 must be a number at least 0")
    CommandLineTests.expectError(try Self.run(["train", "--sv-clamp", "0"]), "--sv-clamp must be a positive number, got 0.0")
    CommandLineTests.expectError(try Self.run(["train", "--sv-clamp", "x"]), "--sv-clamp")
    CommandLineTests.expectError(
      try Self.run(["train", "--run", "attn", "--config", "imagenet64", "--g-ch", "8", "--d-ch", "8", "--batch", "2", "--steps", "1", "--r1", "1"], in: dir),
      "--r1: the R1 penalty needs a discriminator without self-attention")
  }
}
