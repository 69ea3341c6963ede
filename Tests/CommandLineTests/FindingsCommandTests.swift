import Foundation
import Testing

/// The paper's findings as `biggan-fast experiment NAME --quick` runs them,
/// scored by the random Inception of BigGANTests' fixture: each command
/// trains its arms, measures them and writes its table and figure. A check
/// of the pipeline, not of the science.
@Suite(.serialized)
struct FindingsCommandTests {
  static let quick = ["--quick", "--count", "20", "--inception", EvaluationCommandTests.weights]

  static func results(_ path: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
  }

  static func expectFiles(_ files: [String], in dir: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for file in files {
      #expect(FileManager.default.fileExists(atPath: "\(dir)/\(file)"), "\(file) missing", sourceLocation: sourceLocation)
    }
  }

  @Test("experiment ortho --quick: one model per arm, each judged amenable or not, two fractions with Wilson bounds")
  func ortho() throws {
    let dir = try CommandLineTests.scratch("experiment-ortho")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try EvaluationCommandTests.run(["experiment", "ortho", "--out", "exp"] + Self.quick, in: dir)
    #expect(r.status == 0, "\(r.output)")
    let results = try Self.results("\(dir)/exp/results.json")
    let fractions = try #require(results["fractions"] as? [[String: Any]])
    #expect(fractions.count == 2, "\(fractions)")
    for f in fractions {
      let low = try #require(f["wilson_low"] as? Double), high = try #require(f["wilson_high"] as? Double)
      #expect(f["models"] as? Int == 1 && 0 <= low && low < high && high <= 1, "\(f)")
    }
    let models = try #require(results["models"] as? [[String: Any]])
    #expect(models.count == 2 && models.allSatisfy { ($0["rows"] as? [Any])?.count == 3 }, "\(models)")
    Self.expectFiles(["results.md", "amenability.png", "runs/no-ortho-seed0/config.json"], in: "\(dir)/exp")
  }

  @Test("experiments batch, width, ablation and stability --quick: every arm measured over its run, equal images seen by the batch arms, D's accuracies in the stability table, curves drawn")
  func comparisons() throws {
    let dir = try CommandLineTests.scratch("experiment-comparisons")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for (name, arms) in [("batch", 3), ("width", 2), ("ablation", 4), ("stability", 4)] {
      let r = try EvaluationCommandTests.run(["experiment", name, "--out", name, "--steps", "8"] + Self.quick, in: dir)
      #expect(r.status == 0, "\(name): \(r.output)")
      let results = try Self.results("\(dir)/\(name)/results.json")
      let measured = try #require(results["arms"] as? [[String: Any]])
      #expect(measured.count == arms, "\(name): \(measured.map { $0["arm"] ?? "?" })")
      for arm in measured {
        let points = try #require(arm["points"] as? [[String: Any]])
        // Two points per arm, or one when an arm takes a single step.
        #expect((1...2).contains(points.count) && points.allSatisfy { ($0["distance"] as? Double)?.isFinite == true }, "\(name): \(arm)")
      }
      Self.expectFiles(["results.md", "curves.png"], in: "\(dir)/\(name)")
    }
    let stability = try String(contentsOfFile: "\(dir)/stability/results.md", encoding: .utf8)
    #expect(stability.contains("D train / held-out accuracy") && stability.contains("R1 gamma 10"), "\(stability)")
    // The 4B arm of the batch experiment sees as many images in a quarter of the steps.
    let batch = try #require(try Self.results("\(dir)/batch/results.json")["arms"] as? [[String: Any]])
    let images = batch.compactMap { (($0["points"] as? [[String: Any]])?.last?["images"] as? Int) }
    #expect(images.count == 3 && Set(images).count == 1, "\(images)")
  }

  /// --jobs 2 trains the arms side by side in processes of their own, one
  /// thread each: the same runs, so the same measurements, with each
  /// process's log beside its run; --jobs 0 is refused before any training.
  @Test("experiment width --quick --jobs 2: the measurements of --jobs 1, a training log per arm")
  func parallelArms() throws {
    let dir = try CommandLineTests.scratch("experiment-jobs")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    func distances(_ out: String) throws -> [[Double]] {
      let arms = try #require(try Self.results("\(dir)/\(out)/results.json")["arms"] as? [[String: Any]])
      return arms.map { (($0["points"] as? [[String: Any]]) ?? []).compactMap { $0["distance"] as? Double } }
    }
    let one = try EvaluationCommandTests.run(["experiment", "width", "--out", "one", "--steps", "8"] + Self.quick, in: dir)
    #expect(one.status == 0, "\(one.output)")
    let two = try EvaluationCommandTests.run(["experiment", "width", "--out", "two", "--steps", "8", "--jobs", "2"] + Self.quick, in: dir)
    #expect(two.status == 0, "\(two.output)")
    #expect(two.output.contains("in its own process (log: two/runs/ch-1.5x.log)"), "\(two.output)")
    let d1 = try distances("one"), d2 = try distances("two")
    #expect(d1.count == 2 && d1 == d2, "\(d1) vs \(d2)")
    Self.expectFiles(["runs/ch-1x.log", "runs/ch-1.5x.log", "curves.png"], in: "\(dir)/two")
    CommandLineTests.expectError(
      try EvaluationCommandTests.run(["experiment", "width", "--out", "zero", "--jobs", "0"] + Self.quick, in: dir),
      "--jobs must be at least 1, got 0")
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/zero/runs/ch-1x"))
  }

  @Test("experiment spectra --quick: the top singular values of G's and D's layers at every logged step, and the figure")
  func spectra() throws {
    let dir = try CommandLineTests.scratch("experiment-spectra")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try EvaluationCommandTests.run(["experiment", "spectra", "--out", "exp", "--steps", "8"] + Self.quick, in: dir)
    #expect(r.status == 0, "\(r.output)")
    let results = try Self.results("\(dir)/exp/results.json")
    let layers = try #require(results["layers"] as? [[String: Any]])
    let names = layers.compactMap { $0["layer"] as? String }
    #expect(names.contains { $0.hasPrefix("G/") } && names.contains { $0.hasPrefix("D/") }, "\(names)")
    #expect(layers.allSatisfy { (($0["sigma0"] as? [Double])?.count ?? 0) == 8 }, "\(layers.first ?? [:])")
    Self.expectFiles(["results.md", "spectra.png"], in: "\(dir)/exp")
  }
}
