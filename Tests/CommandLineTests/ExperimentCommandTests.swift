import Foundation
import Testing

/// `biggan-fast experiment truncation --quick` as a user runs it, on the
/// random Inception of BigGANTests' fixture: a check that the pipeline
/// trains, scores and writes its files, not of the numbers.
@Suite(.serialized)
struct ExperimentCommandTests {
  @Test("experiment truncation --quick trains a run, writes one result row and one sample sheet per threshold, the table and the plot")
  func truncationQuick() throws {
    let dir = try CommandLineTests.scratch("experiment-truncation")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let w = ["--inception", EvaluationCommandTests.weights]
    let r = try EvaluationCommandTests.run(["experiment", "truncation", "--quick", "--out", "exp"] + w, in: dir)
    #expect(r.status == 0, "\(r.output)")
    let results = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/exp/results.json"))) as? [String: Any])
    let rows = try #require(results["rows"] as? [[String: Double]])
    #expect(rows.map { $0["truncation"] } == [0.1, 0.5, 1.0])
    for row in rows {
      let fid = try #require(row["frechet_inception_distance"]), score = try #require(row["inception_score_mean"])
      #expect(fid.isFinite && score >= 1, "\(row)")
    }
    let table = try String(contentsOfFile: "\(dir)/exp/results.md", encoding: .utf8)
    #expect(table.contains("| truncation | IS | FID |") && table.contains("| 0.5 | "), "\(table)")
    for file in ["tradeoff.png", "samples/truncation-0.10.png", "samples/truncation-0.50.png", "samples/truncation-1.00.png", "run/config.json"] {
      #expect(FileManager.default.fileExists(atPath: "\(dir)/exp/\(file)"), "\(file)")
    }
    // A second call scores the run the first one trained.
    let again = try EvaluationCommandTests.run(["experiment", "truncation", "--quick", "--out", "exp", "--truncations", "1"] + w, in: dir)
    #expect(again.status == 0 && again.output.contains("using exp/run/checkpoint/step-00000020"), "\(again.output)")
  }

  @Test("bad thresholds and missing weights: one line naming the problem before any training, non-zero exit")
  func badInput() throws {
    let dir = try CommandLineTests.scratch("experiment-bad")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let w = ["--inception", EvaluationCommandTests.weights]
    let cases: [([String], String)] = [
      (["--truncations", "0,0.5"] + w, "'0' is not a truncation in (0, 1]"),
      (["--truncations", "1.5"] + w, "'1.5' is not a truncation in (0, 1]"),
      ([], "nothing to measure with: pass --classifier FILE"),
      (["--classifier", "c.safetensors", "--ref", "r.npz"], "--ref goes with Inception, not --classifier"),
      (["--classifier", "missing.safetensors"], "missing.safetensors"),
      (["--inception", "nowhere.safetensors"], "nowhere.safetensors: no such file"),
      (["--ref", "nope.npz"] + w, "nope.npz"),
      (["--run", "a", "--steps", "3"] + w, "--steps trains a new run"),
    ]
    for (arguments, fragment) in cases {
      CommandLineTests.expectError(try EvaluationCommandTests.run(["experiment", "truncation", "--quick", "--out", "exp"] + arguments, in: dir), fragment)
    }
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/exp/run"))
  }

  @Test("the truncation sweep measured with a data classifier: sample accuracy and FCD per threshold, table and plot")
  func truncationWithClassifier() throws {
    let dir = try CommandLineTests.scratch("experiment-classifier")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let classifier = try ClassifierCommandTests.classifier("c.safetensors", in: dir)
    #expect(classifier.status == 0, "\(classifier.output)")
    let r = try EvaluationCommandTests.run(
      ["experiment", "truncation", "--quick", "--out", "exp", "--classifier", "c.safetensors", "--truncations", "0.5,1"], in: dir)
    #expect(r.status == 0, "\(r.output)")
    let table = (try? String(contentsOfFile: "\(dir)/exp/results.md", encoding: .utf8)) ?? ""
    #expect(table.contains("| truncation | sample accuracy | FCD |") && table.contains("| 0.5 | ") && table.contains("data classifier c.safetensors"), "\(table)")
    for file in ["tradeoff.png", "samples/truncation-0.50.png", "samples/truncation-1.00.png", "results.json"] {
      #expect(FileManager.default.fileExists(atPath: "\(dir)/exp/\(file)"), "\(file)")
    }
  }
}
