import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// The evaluation metrics on inputs with known answers, NumPy's legacy
/// generator against values NumPy printed, and `.npz` round trips.
struct EvaluationMetricsTests {
  static func gaussian(_ n: Int, _ d: Int, seed: UInt64, scale: (Int) -> Float = { _ in 1 }) -> Tensor {
    var random = SeededRandom(seed: seed)
    let values = (0..<n * d).map { random.normal() * scale($0 % d) }
    return try! Tensor(shape: [n, d], storage: values)
  }

  @Test("legacy RandomState: raw outputs, permutation and choice equal NumPy's")
  func numpyRandom() {
    var r = LegacyNumPyRandom(seed: 5)
    #expect((0..<4).map { _ in r.nextUInt32() } == [953_453_411, 236_996_814, 3_739_766_767, 3_570_525_885])
    r = LegacyNumPyRandom(seed: 2020)
    #expect(r.permutation(10) == [2, 4, 9, 1, 5, 7, 6, 3, 8, 0])
    r = LegacyNumPyRandom(seed: 2020)
    #expect(r.choice(100, count: 5) == [43, 12, 93, 23, 87])
    #expect(r.choice(7, count: 7) == [5, 0, 2, 1, 4, 6, 3])
    r = LegacyNumPyRandom(seed: 2020)
    #expect(Array(r.permutation(70000).prefix(5)) == [29755, 22946, 54743, 4856, 30674])
  }

  @Test("FID of diagonal Gaussians equals the closed form; identical statistics give 0")
  func frechetClosedForm() throws {
    let d = 17
    let a = (0..<d).map { 0.5 + Double($0) }, b = (0..<d).map { 2.0 / (1 + Double($0)) }
    func diagonal(_ v: [Double]) -> [Double] {
      var m = [Double](repeating: 0, count: d * d)
      for i in 0..<d { m[i * d + i] = v[i] }
      return m
    }
    let mu1 = (0..<d).map { Double($0) * 0.1 }, mu2 = (0..<d).map { -Double($0) * 0.05 }
    let s1 = try FeatureStatistics(mean: mu1, covariance: diagonal(a))
    let s2 = try FeatureStatistics(mean: mu2, covariance: diagonal(b))
    var expected = 0.0
    for i in 0..<d {
      expected += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i])
      expected += (a[i].squareRoot() - b[i].squareRoot()) * (a[i].squareRoot() - b[i].squareRoot())
    }
    let fid = try s1.frechetDistance(to: s2)
    #expect(abs(fid - expected) <= 1e-10 * expected)
    #expect(abs(try s1.frechetDistance(to: s1)) < 1e-9)
  }

  @Test("FID of rotated covariances and rank-deficient ones: finite, symmetric, near the closed form")
  func frechetRankDeficient() throws {
    // 20 samples in 64 dimensions: both covariances have rank 19.
    let x = Self.gaussian(20, 64, seed: 1), y = Self.gaussian(20, 64, seed: 2, scale: { 1 + Float($0 % 3) })
    let sx = try FeatureStatistics(features: x), sy = try FeatureStatistics(features: y)
    let forward = try sx.frechetDistance(to: sy), backward = try sy.frechetDistance(to: sx)
    #expect(forward.isFinite && forward > 0)
    #expect(abs(forward - backward) <= 1e-9 * forward)
    #expect(abs(try sx.frechetDistance(to: sx)) < 1e-8)
  }

  @Test("covariance by blocks equals the two-pass float64 formula")
  func covariance() throws {
    let n = 37, d = 5
    let x = Self.gaussian(n, d, seed: 3)
    let s = try FeatureStatistics(features: x)
    for i in 0..<d {
      for j in 0..<d {
        var c = 0.0
        for r in 0..<n {
          c += (Double(x.storage[r * d + i]) - s.mean[i]) * (Double(x.storage[r * d + j]) - s.mean[j])
        }
        #expect(abs(s.covariance[i * d + j] - c / Double(n - 1)) < 1e-12)
      }
    }
    #expect(throws: EvaluationError.self) { try FeatureStatistics(features: Self.gaussian(1, 4, seed: 0)) }
    #expect(throws: EvaluationError.self) { try s.frechetDistance(to: FeatureStatistics(features: Self.gaussian(9, 4, seed: 0))) }
  }

  @Test("IS: equal logits score 1; one confident class per image, classes balanced, scores the class count")
  func inceptionScoreBounds() throws {
    let flat = try Tensor(shape: [20, 10], storage: [Float](repeating: 0.3, count: 200))
    let one = try inceptionScore(logits: flat, splits: 2)
    #expect(abs(one.mean - 1) < 1e-12 && one.standardDeviation < 1e-12)
    var peaked = [Float](repeating: 0, count: 40 * 8)
    for i in 0..<40 { peaked[i * 8 + i % 8] = 60 }
    let score = try inceptionScore(logits: Tensor(shape: [40, 8], storage: peaked), splits: 1)
    #expect(abs(score.mean - 8) < 1e-6)
    #expect(throws: EvaluationError.self) { try inceptionScore(logits: flat, splits: 21) }
  }

  @Test("KID: near zero for one distribution, positive for shifted ones; too few images is an error")
  func kernelDistance() throws {
    let a = Self.gaussian(60, 16, seed: 4), b = Self.gaussian(60, 16, seed: 5)
    var shifted = Self.gaussian(60, 16, seed: 6)
    for i in shifted.storage.indices { shifted.storage[i] += 1 }
    let same = try kernelInceptionDistance(generated: a, reference: b, subsets: 10, subsetSize: 30)
    let apart = try kernelInceptionDistance(generated: shifted, reference: b, subsets: 10, subsetSize: 30)
    #expect(abs(same.mean) < 0.05)
    #expect(apart.mean > 10 * abs(same.mean) && apart.mean > 0.1)
    #expect(throws: EvaluationError.self) {
      try kernelInceptionDistance(generated: a, reference: b, subsets: 10, subsetSize: 61)
    }
  }

  @Test("precision and recall: a set against itself is 1 and 1; a far set scores 0")
  func precisionAndRecall() throws {
    let a = Self.gaussian(50, 8, seed: 7)
    let same = try precisionRecall(generated: a, reference: a)
    #expect(same.precision == 1 && same.recall == 1)
    var far = Self.gaussian(50, 8, seed: 8)
    for i in far.storage.indices { far.storage[i] += 100 }
    let apart = try precisionRecall(generated: far, reference: a)
    #expect(apart.precision == 0 && apart.recall == 0)
  }

  @Test(".npz: float32 and float64 arrays round-trip; a missing array and a damaged archive are one-line errors")
  func npzRoundTrip() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("npz-\(getpid())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let mu = NumPyArray(shape: [3], doubles: [1.5, -2, 1e-300])
    let features = NumPyArray(shape: [2, 3], floats: [1, 2, 3, 4, 5, .pi])
    try NPZ.write([("mu", mu), ("features", features)], to: "\(dir)/s.npz")
    let back = try NPZ.read("\(dir)/s.npz")
    #expect(back["mu"] == mu && back["features"] == features)
    #expect(throws: NPY.Failure.self) { try NPZ.read("\(dir)/s.npz", names: ["sigma"]) }
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/s.npz")))
    bytes[bytes.count / 2] ^= 0xff
    try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/bad.npz"))
    #expect(throws: NPY.Failure.self) { try NPZ.read("\(dir)/bad.npz") }
    try Data("not a zip".utf8).write(to: URL(fileURLWithPath: "\(dir)/text.npz"))
    #expect(throws: NPY.Failure.self) { try NPZ.read("\(dir)/text.npz") }
  }
}
