import Foundation
import Testing

@testable import BigGAN

/// The parameter counts the documentation states, against the built
/// models: `biggan-fast info` counts the same way, building each network
/// (weights zeroed, so nothing is drawn) and summing its parameters.
@Suite(.serialized)
struct ParameterCountTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  /// The integers (with thousands commas) that `pattern`'s groups capture
  /// in `file`, relative to the repository.
  static func figures(_ file: String, _ pattern: String) throws -> [Int] {
    let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
    let regex = try NSRegularExpression(pattern: pattern)
    guard let m = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else { return [] }
    return (1..<m.numberOfRanges).compactMap { i in
      Range(m.range(at: i), in: text).flatMap { Int(text[$0].replacingOccurrences(of: ",", with: "")) }
    }
  }

  /// G's and D's parameters, one network alive at a time.
  static func counts(_ c: BigGANConfiguration) throws -> (g: Int, d: Int) {
    let g = try Generator(c, seed: 0, initialization: .zeros).parameterCount
    let d = try Discriminator(c, seed: 0, initialization: .zeros).parameterCount
    return (g, d)
  }

  @Test("README's imagenet128 counts, G 70,433,988 and D 87,982,370, are the built models'")
  func readme() throws {
    let stated = try Self.figures(
      "README.md", #"`biggan-fast info --config imagenet128` prints G ([0-9,]+) and\s+D ([0-9,]+) parameters"#)
    try #require(stated.count == 2, "README.md no longer states the imagenet128 counts")
    let (g, d) = try Self.counts(.imagenet128)
    let counted: [Int] = [g, d]
    #expect(counted == stated)
    #expect(counted == [70_433_988, 87_982_370])
  }

  @Test("Benchmarks/SCALING.md's G + D parameters of the 128-px presets are the built models'")
  func scalingTable() throws {
    for (name, config) in [("imagenet128", BigGANConfiguration.imagenet128), ("imagenet128-deep", .imagenet128Deep)] {
      let stated = try Self.figures("Benchmarks/SCALING.md", #"\n\| \#(name) \| ([0-9,]+) \|"#)
      try #require(stated.count == 1, "SCALING.md no longer states \(name)'s parameters")
      let (g, d) = try Self.counts(config)
      #expect(g + d == stated[0], "\(name)")
    }
  }
}

/// README's table of Table 1's generator ablations against the built models.
@Suite(.serialized)
struct AblationParameterCountTests {
  @Test("README's G counts of the shared/hierarchical combinations at tiny, cifar32 and imagenet128 are the built models'")
  func readmeTable() throws {
    let rows: [(flags: String, shared: Bool, hierarchical: Bool)] = [
      ("(none)", true, true), ("`--no-hier`", true, false), ("`--no-shared`", false, true), ("`--no-shared --no-hier`", false, false),
    ]
    let d128 = try Discriminator(.imagenet128, seed: 0, initialization: .zeros).parameterCount
    for row in rows {
      let pattern = #"\n\| "# + NSRegularExpression.escapedPattern(for: row.flags) + #" \| ([0-9,]+) \| ([0-9,]+) \| ([0-9,]+) \| ([0-9,]+) "#
      let stated = try ParameterCountTests.figures("README.md", pattern)
      try #require(stated.count == 4, "README.md no longer states the counts for \(row.flags)")
      var counted: [Int] = []
      for preset in ["tiny", "cifar32", "imagenet128"] {
        var c = try #require(TrainingPreset.all[preset]).model
        c.sharedEmbedding = row.shared
        c.hierarchical = row.hierarchical
        counted.append(try Generator(c, seed: 0, initialization: .zeros).parameterCount)
      }
      counted.append(counted[2] + d128)
      #expect(counted == stated, "\(row.flags)")
    }
  }
}
