import Foundation
import Testing

/// `biggan-fast bench`: the images its passes count, and a pass that cannot
/// run says which and why.
@Suite(.serialized)
struct BenchCommandTests {
  @Test("the iteration pass counts every image a training iteration processes, the other passes one batch")
  func images() throws {
    let r = try CommandLineTests.run(
      "biggan-fast", ["bench", "--config", "tiny", "--batch", "3", "--pass", "iteration", "g-forward", "--repeats", "1", "--threads", "2", "--json"])
    #expect(r.status == 0, "\(r.output)")
    let document = try #require(try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any])
    let results = try #require(document["results"] as? [[String: Any]])
    var images: [String: Int] = [:]
    for result in results {
      let pass = try #require(result["pass"] as? String), count = try #require(result["images"] as? Int)
      let median = try #require(result["median_s"] as? Double), rate = try #require(result["images_per_s"] as? Double)
      #expect(abs(rate * median - Double(count)) <= 1e-9 * Double(count), "\(pass)")
      images[pass] = count
    }
    // The paper's recipe: 2 D steps on 3 fake and 3 real images each, then
    // a G step on 3 (no accumulation).
    #expect(images == ["iteration": 2 * 2 * 3 + 3, "g-forward": 3])
  }

  @Test("a pass that cannot run names itself and the reason: a sampling-only model, a batch the ranks cannot split")
  func failures() throws {
    let imported = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("BigGANTests/Fixtures/pretrained/deep128-tiny/G.safetensors").path
    CommandLineTests.expectError(
      try CommandLineTests.run("biggan-fast", ["bench", "--checkpoint", imported, "--pass", "iteration", "--batch", "2", "--repeats", "1"]),
      "--pass iteration of \(imported): blocks.0.0.bn1.stored_mean: per-truncation statistics are for sampling")
    let uneven = try CommandLineTests.run(
      "mpirun",
      ["--allow-run-as-root", "--oversubscribe", "-np", "2", CommandLineTests.binary("biggan-fast").path,
       "bench", "--config", "tiny", "--pass", "iteration", "--batch", "3", "--repeats", "1", "--threads", "1"],
      executable: DistributedTrainingTests.mpirun, timeout: 120)
    #expect(
      uneven.status != 0
        && uneven.output.contains("--pass iteration: cannot build a trainer of --config tiny: batch 3 does not split over 2 ranks"),
      "\(uneven.output)")
  }
}
