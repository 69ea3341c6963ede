import Foundation
import Testing

/// `biggan-fast classifier`, `eval --classifier` and an experiment measured
/// with a classifier, as a user runs them: a check that the pipeline
/// trains, measures and records, at sizes too small for the numbers to
/// mean anything.
@Suite(.serialized)
struct ClassifierCommandTests {
  static let tiny = ["--steps", "5", "--batch", "8", "--held-out", "40", "--widths", "4,8,8", "--threads", "2"]

  static func classifier(_ out: String, in dir: String) throws -> CommandLineTests.Result {
    try EvaluationCommandTests.run(["classifier", "--out", out] + tiny, in: dir)
  }

  @Test("classifier writes a file (the same bytes twice), eval --classifier measures a run and appends to its metrics.jsonl")
  func trainAndEvaluate() throws {
    let dir = try CommandLineTests.scratch("classifier-eval")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let first = try Self.classifier("c.safetensors", in: dir)
    #expect(first.status == 0 && first.output.contains("held-out accuracy: ") && first.output.contains("(40 images)"), "\(first.output)")
    #expect(first.output.contains("step 5/5"), "\(first.output)")
    #expect(try Self.classifier("again.safetensors", in: dir).status == 0)
    #expect(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/c.safetensors")) == Data(contentsOf: URL(fileURLWithPath: "\(dir)/again.safetensors")))

    let train = try EvaluationCommandTests.run(["train", "--steps", "2", "--batch", "8", "--runs", "runs", "--run", "t", "--threads", "2"], in: dir)
    #expect(train.status == 0, "\(train.output)")
    let r = try EvaluationCommandTests.run(
      ["eval", "--classifier", "c.safetensors", "--run", "t", "--count", "20", "--metrics", "accuracy,fcd,cas", "--json", "--threads", "2"], in: dir)
    #expect(r.status == 0, "\(r.output)")
    let report = try EvaluationCommandTests.json(r)
    for key in ["sample_accuracy", "sample_accuracy/two-discs", "classification_accuracy_score", "classifier_held_out_accuracy"] {
      let value = try #require(report[key] as? Double, "\(key) in \(report)")
      #expect((0...1).contains(value), "\(key) \(value)")
    }
    #expect((report["frechet_classifier_distance"] as? Double)?.isFinite == true)
    #expect(report["count"] as? Int == 20)
    let log = try String(contentsOfFile: "\(dir)/runs/t/metrics.jsonl", encoding: .utf8)
    let last = try #require(log.split(separator: "\n").last)
    let entry = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    let eval = try #require(entry["eval"] as? [String: Any])
    #expect(entry["step"] as? Int == 2 && eval["classifier"] as? String == "c.safetensors" && eval["sample_accuracy"] != nil, "\(entry)")

    // Defaults: accuracy and FCD, no CAS; the plain text output.
    let plain = try EvaluationCommandTests.run(["eval", "--classifier", "c.safetensors", "--run", "t", "--count", "20"], in: dir)
    #expect(plain.status == 0 && plain.output.contains("frechet_classifier_distance: ") && !plain.output.contains("classification_accuracy_score"), "\(plain.output)")
    CommandLineTests.expectError(
      try EvaluationCommandTests.run(["eval", "--classifier", "c.safetensors", "--run", "t", "--count", "100000000000"], in: dir),
      "100000000000 images: their pixels and classifier features would need about")
  }

  @Test("experiment width --quick --classifier: results.json holds FCD and sample accuracy")
  func experimentWithClassifier() throws {
    let dir = try CommandLineTests.scratch("classifier-experiment")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(try Self.classifier("c.safetensors", in: dir).status == 0)
    let r = try EvaluationCommandTests.run(["experiment", "width", "--quick", "--classifier", "c.safetensors", "--out", "exp", "--threads", "2"], in: dir)
    #expect(r.status == 0, "\(r.output)")
    let results = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/exp/results.json"))) as? [String: Any])
    #expect((results["measured_with"] as? String)?.contains("data classifier c.safetensors") == true, "\(results)")
    let arms = try #require(results["arms"] as? [[String: Any]])
    #expect(arms.count == 2)
    for arm in arms {
      let points = try #require(arm["points"] as? [[String: Any]])
      #expect(!points.isEmpty)
      for point in points {
        let values = try #require(point["values"] as? [String: Double])
        #expect(values["frechet_classifier_distance"] == point["distance"] as? Double && values["sample_accuracy"] == point["score"] as? Double, "\(point)")
        #expect(values["classifier_held_out_accuracy"] != nil && values["sample_accuracy/disc"] != nil)
      }
    }
    let table = try String(contentsOfFile: "\(dir)/exp/results.md", encoding: .utf8)
    #expect(table.contains("final FCD") && table.contains("final accuracy"), "\(table)")
  }

  @Test("bad classifier flags and files: one line naming the problem, non-zero exit")
  func badInput() throws {
    let dir = try CommandLineTests.scratch("classifier-bad")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(try Self.classifier("c.safetensors", in: dir).status == 0)
    try Data("junk".utf8).write(to: URL(fileURLWithPath: "\(dir)/junk.safetensors"))
    let cases: [([String], String)] = [
      (["classifier"], "--out"),
      (["classifier", "--out", "x.safetensors", "--widths", "4,x"], "--widths: 'x' is not a channel count"),
      (["classifier", "--out", "x.safetensors", "--steps", "0"], "steps 0"),
      (["classifier", "--out", "x.safetensors", "--learning-rate", "-1"], "learning rate -1"),
      (["classifier", "--out", "nowhere/x.safetensors"], "no folder nowhere"),
      (["classifier", "--out", "x.safetensors", "--resolution", "20"], "expected a multiple of 8"),
      (["classifier", "--out", "x.safetensors", "--data", "missing-folder"], "missing-folder"),
      (["eval", "--classifier", "junk.safetensors", "--checkpoint", "nowhere"], "junk.safetensors"),
      (["eval", "--classifier", "c.safetensors", "--images", "."], "--classifier measures a generator"),
      (["eval", "--classifier", "c.safetensors", "--run", "t", "--metrics", "fid"], "'fid' is not a classifier metric"),
      (["eval", "--classifier", "c.safetensors", "--run", "t", "--ref", "r.npz"], "--ref, --plot and --save-features go with Inception"),
      (["eval", "--run", "t", "--data", "builtin"], "--data goes with --classifier"),
      (["experiment", "width", "--quick", "--classifier", "junk.safetensors", "--out", "exp"], "junk.safetensors"),
    ]
    for (arguments, fragment) in cases {
      CommandLineTests.expectError(try EvaluationCommandTests.run(arguments, in: dir), fragment)
    }
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.safetensors"))
  }
}
