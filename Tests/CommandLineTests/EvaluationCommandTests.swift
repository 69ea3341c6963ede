import BigGAN
import Foundation
import Testing

/// `biggan-fast stats`, `eval` and `train --eval-every` as a user runs them,
/// on the width-16 random Inception of BigGANTests' fixture.
@Suite(.serialized)
struct EvaluationCommandTests {
  static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("BigGANTests/Fixtures/inception").path
  static let weights = "\(fixture)/inception-d16.safetensors"

  static func run(_ arguments: [String], in folder: String) throws -> CommandLineTests.Result {
    try CommandLineTests.run("biggan-fast", arguments, in: folder)
  }

  static func json(_ r: CommandLineTests.Result) throws -> [String: Any] {
    let line = try #require(r.output.split(separator: "\n").last { $0.hasPrefix("{") })
    return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
  }

  @Test("stats then eval --images: torch-fidelity's FID, IS, KID, precision and recall; eval --stats: pytorch-fid's FID")
  func imagesAgainstReference() throws {
    let dir = try CommandLineTests.scratch("eval-images")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let stats = try Self.run(["stats", "--data", "\(Self.fixture)/images-b", "--inception", Self.weights, "--out", "b.npz"], in: dir)
    #expect(stats.status == 0, "\(stats.output)")
    let r = try Self.run([
      "eval", "--images", "\(Self.fixture)/images-a", "--ref", "b.npz", "--inception", Self.weights,
      "--metrics", "fid,is,kid,pr", "--is-splits", "3", "--kid-subsets", "10", "--kid-subset-size", "6", "--json",
    ], in: dir)
    #expect(r.status == 0, "\(r.output)")
    let ours = try Self.json(r)
    let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.fixture)/expected.json"))) as! [String: Any]
    let theirs = (expected["metrics"] as! [String: Any])["torch_fidelity"] as! [String: Double]
    for key in ["frechet_inception_distance", "inception_score_mean", "kernel_inception_distance_mean", "precision", "recall"] {
      let a = try #require(ours[key] as? Double, "\(key)"), b = theirs[key]!
      #expect(abs(a - b) <= 1e-3 * max(abs(b), 1e-2), "\(key): \(a) vs \(b)")
    }
    let files = try Self.run(["eval", "--stats", "\(Self.fixture)/stats-a.npz", "--ref", "\(Self.fixture)/stats-b.npz", "--json"], in: dir)
    let fid = try #require(try Self.json(files)["frechet_inception_distance"] as? Double)
    let pytorchFID = (expected["stats"] as! [String: Any])["frechet_inception_distance_a_b"] as! Double
    #expect(abs(fid - pytorchFID) <= 1e-6 * pytorchFID)
  }

  @Test("bad weights, statistics, folders and counts: one line naming the problem, non-zero exit")
  func badInput() throws {
    let dir = try CommandLineTests.scratch("eval-bad")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let fm = FileManager.default
    try fm.createDirectory(atPath: "\(dir)/text", withIntermediateDirectories: true)
    try Data("notes".utf8).write(to: URL(fileURLWithPath: "\(dir)/text/readme.txt"))
    try fm.createDirectory(atPath: "\(dir)/broken", withIntermediateDirectories: true)
    try fm.copyItem(atPath: "\(Self.fixture)/images-a/00000.png", toPath: "\(dir)/broken/00000.png")
    try Data("not a png".utf8).write(to: URL(fileURLWithPath: "\(dir)/broken/00001.png"))
    try NPZ.write([("mu", NumPyArray(shape: [5], doubles: [0, 0, 0, 0, 0])), ("sigma", NumPyArray(shape: [5, 5], doubles: Array(repeating: 0, count: 25)))], to: "\(dir)/small.npz")
    try Data("junk".utf8).write(to: URL(fileURLWithPath: "\(dir)/junk.safetensors"))
    let images = "\(Self.fixture)/images-a", w = ["--inception", Self.weights]
    let cases: [([String], String)] = [
      (["eval", "--images", images, "--metrics", "is"], "no Inception weights: pass --inception FILE or set BIGGAN_FAST_INCEPTION"),
      (["eval", "--images", images, "--metrics", "is", "--inception", "\(dir)/junk.safetensors"], "junk.safetensors"),
      (["eval", "--images", images, "--metrics", "is", "--inception", "\(Self.fixture)/stats-a.npz"], "stats-a.npz"),
      (["eval", "--images", images, "--ref", "small.npz"] + w, "the reference statistics have 5 dimensions but the network gives 128"),
      (["eval", "--images", images, "--ref", "\(Self.fixture)/features-a-tf.npy"] + w, "not a readable .npz archive"),
      (["eval", "--images", "text", "--metrics", "is"] + w, "no PNG or JPEG images"),
      (["eval", "--images", "broken", "--metrics", "is", "--is-splits", "1"] + w, "broken/00001.png"),
      (["eval", "--images", images, "--metrics", "is", "--count", "13"] + w, "--count 13"),
      (["eval", "--images", images, "--ref", "\(Self.fixture)/stats-b.npz", "--metrics", "kid"] + w, "needs the features"),
      (["eval", "--images", images, "--metrics", "fid"] + w, "--ref is required for fid"),
      (["eval", "--images", images, "--metrics", "mse"] + w, "'mse' is not a metric"),
      (["stats", "--data", "nowhere", "--out", "x.npz"] + w, "nowhere: no such folder"),
    ]
    for (arguments, fragment) in cases {
      CommandLineTests.expectError(try Self.run(arguments, in: dir), fragment)
    }
    // KID with fewer images than its subset size fails before any scoring.
    try NPZ.write(
      [("mu", NumPyArray(shape: [128], doubles: Array(repeating: 0, count: 128))),
       ("sigma", NumPyArray(shape: [128, 128], doubles: Array(repeating: 0, count: 128 * 128))),
       ("features", NumPyArray(shape: [2, 128], floats: Array(repeating: 0, count: 256)))],
      to: "\(dir)/two.npz")
    CommandLineTests.expectError(
      try Self.run(["eval", "--images", images, "--ref", "two.npz", "--metrics", "kid"] + w, in: dir),
      "fewer than the subset size 1000")
  }

  @Test("train --eval-every leaves the run's bits alone, logs FID and IS, keeps the best checkpoint; eval --run appends; a sweep draws its plot")
  func duringTraining() throws {
    let dir = try CommandLineTests.scratch("eval-train")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let w = ["--inception", Self.weights]
    let stats = try Self.run(["stats", "--data", "builtin", "--resolution", "32", "--count", "64", "--out", "ref.npz"] + w, in: dir)
    #expect(stats.status == 0, "\(stats.output)")
    let common = ["train", "--steps", "4", "--batch", "8", "--checkpoint-every", "2", "--sample-every", "2", "--log-every", "2"]
    #expect(try Self.run(common + ["--run", "plain"], in: dir).status == 0)
    let evaluated = try Self.run(common + ["--run", "eval", "--eval-every", "2", "--eval-count", "24", "--ref", "ref.npz"] + w, in: dir)
    #expect(evaluated.status == 0, "\(evaluated.output)")
    for file in ["G", "G_ema", "D", "optimizer"] {
      let a = FileManager.default.contents(atPath: "\(dir)/runs/plain/checkpoint/step-00000004/\(file).safetensors")
      let b = FileManager.default.contents(atPath: "\(dir)/runs/eval/checkpoint/step-00000004/\(file).safetensors")
      #expect(a != nil && a == b, "\(file) differs with evaluation")
    }
    let best = try #require(FileManager.default.contents(atPath: "\(dir)/runs/eval/checkpoint/best/best.json"))
    #expect(String(decoding: best, as: UTF8.self).contains("frechet_inception_distance"))
    func evalLines() -> Int {
      let text = (try? String(contentsOfFile: "\(dir)/runs/eval/metrics.jsonl", encoding: .utf8)) ?? ""
      return text.split(separator: "\n").filter { $0.contains("\"eval\"") }.count
    }
    #expect(evalLines() == 2)
    let r = try Self.run(["eval", "--run", "eval", "--ref", "ref.npz", "--count", "20", "--metrics", "fid,is", "--is-splits", "2"] + w, in: dir)
    #expect(r.status == 0, "\(r.output)")
    #expect(evalLines() == 3)
    let sweep = try Self.run(
      ["eval", "--run", "eval", "--ref", "ref.npz", "--count", "20", "--is-splits", "2", "--truncation-sweep", "0.5,1", "--plot", "sweep.png"] + w, in: dir)
    #expect(sweep.status == 0 && sweep.output.contains("| 0.5 |"), "\(sweep.output)")
    #expect(try PNG.read("\(dir)/sweep.png").width == 760)
  }
}
