import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// The FID Inception-v3 and the metrics against what torch-fidelity,
/// clean-fid, pytorch-fid and scipy computed for the same inputs
/// (`tools/make_eval_fixture.py`: a width-16 random network, small image
/// folders, their features and metric values).
@Suite(.serialized)
struct InceptionParityTests {
  static let folder: String = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    .appendingPathComponent("inception").path

  nonisolated(unsafe) static let expected: [String: Any] = {
    let data = try! Data(contentsOf: URL(fileURLWithPath: "\(folder)/expected.json"))
    return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
  }()

  static func value(_ path: String...) -> Double {
    var node: Any = expected
    for key in path { node = (node as! [String: Any])[key]! }
    return (node as! NSNumber).doubleValue
  }

  static func array(_ name: String) throws -> NumPyArray { try NPY.readArray("\(folder)/\(name)") }

  static let network = try! InceptionV3(contentsOf: "\(folder)/inception-d16.safetensors")

  static func features(_ set: String, _ resize: InceptionResize) throws -> InceptionFeatures {
    try InceptionExtractor(network: network, resize: resize, batchSize: 5)
      .features(of: ImageFolder(root: "\(folder)/images-\(set)"))
  }

  /// max |ours - theirs| / max |theirs|.
  static func relativeError(_ ours: [Float], _ theirs: [Float]) -> Float {
    zip(ours, theirs).map { abs($0 - $1) }.max()! / theirs.map(abs).max()!
  }

  @Test("pool3 features and unbiased logits within 1e-4 of the libraries, every resize mode, square and non-square inputs",
        arguments: InceptionResize.allCases)
  func features(resize: InceptionResize) throws {
    #expect(Self.network.featureDimension == 128 && Self.network.classes == 1008)
    for set in ["a", "c"] {
      let ours = try Self.features(set, resize)
      let pool3 = try Self.array("features-\(set)-\(resize.rawValue).npy")
      let logits = try Self.array("logits-\(set)-\(resize.rawValue).npy")
      #expect(ours.features.shape == pool3.shape && ours.logits.shape == logits.shape)
      #expect(Self.relativeError(ours.features.storage, pool3.floats) < 1e-4, "\(set) \(resize) pool3")
      #expect(Self.relativeError(ours.logits.storage, logits.floats) < 1e-4, "\(set) \(resize) logits")
    }
  }

  @Test("FID, IS, KID, precision and recall of set a against set b match torch-fidelity's to 1e-3")
  func metrics() throws {
    let a = try Self.features("a", .tf), b = try Self.features("b", .tf)
    var settings = MetricSettings()
    settings.inceptionScoreSplits = 3
    settings.kidSubsets = 10
    settings.kidSubsetSize = 6
    let report = try evaluate(
      a, reference: ReferenceStatistics(b), metrics: [.fid, .is, .kid, .pr], settings: settings)
    for key in [
      "frechet_inception_distance", "inception_score_mean", "inception_score_std",
      "kernel_inception_distance_mean", "kernel_inception_distance_std", "precision", "recall",
    ] {
      let theirs = Self.value("metrics", "torch_fidelity", key)
      let ours = try #require(report[key], "\(key) missing")
      #expect(abs(ours - theirs) <= 1e-3 * max(abs(theirs), 1e-2), "\(key): ours \(ours), torch-fidelity \(theirs)")
    }
  }

  @Test("FID between pytorch-fid's own stats files (deflated and stored .npz) equals its value")
  func pytorchFIDStats() throws {
    let b = try ReferenceStatistics(contentsOf: "\(Self.folder)/stats-b.npz")
    let theirs = Self.value("stats", "frechet_inception_distance_a_b")
    for name in ["stats-a.npz", "stats-a-stored.npz"] {
      let a = try ReferenceStatistics(contentsOf: "\(Self.folder)/\(name)")
      #expect(abs(try a.statistics.frechetDistance(to: b.statistics) - theirs) <= 1e-6 * theirs)
    }
  }

  @Test("FID of full-rank, rank-deficient, zero-feature and nearly singular covariances equals scipy's sqrtm to 1e-6")
  func frechetNumerics() throws {
    let arrays = try NPZ.read("\(Self.folder)/fid_numerics.npz")
    for name in ["full_rank", "rank_deficient", "zero_features", "nearly_singular"] {
      func stats(_ i: Int) throws -> FeatureStatistics {
        try FeatureStatistics(mean: arrays["\(name)_mu\(i)"]!.doubles, covariance: arrays["\(name)_sigma\(i)"]!.doubles)
      }
      let fid = try stats(1).frechetDistance(to: stats(2))
      let scipy = Self.value("fid_numerics", "cases", name, "fid")
      #expect(fid.isFinite && abs(fid - scipy) <= 1e-6 * scipy, "\(name): ours \(fid), scipy \(scipy)")
    }
  }

  @Test("weights files that are not the network are refused, naming the tensor")
  func badWeights() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inception-\(getpid())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let file = try SafeTensorsFile(contentsOf: "\(Self.folder)/inception-d16.safetensors")
    func rewrite(_ path: String, skip: String? = nil, change: String? = nil, extra: Bool = false) throws {
      var writer = SafeTensorsWriter(metadata: file.metadata)
      for name in file.names where name != skip {
        var t = try file.tensor(name)
        if name == change { t = Tensor(shape: [t.count + 1]) }
        writer.add(name, t)
      }
      if extra { writer.add("AuxLogits.fc.weight", Tensor(shape: [2])) }
      try writer.write(to: path)
    }
    try rewrite("\(dir)/missing.safetensors", skip: "Mixed_6c.branch7x7_2.conv.weight")
    try rewrite("\(dir)/shape.safetensors", change: "Mixed_5b.branch1x1.bn.running_var")
    try rewrite("\(dir)/extra.safetensors", extra: true)
    let cases = [
      ("missing", "Mixed_6c.branch7x7_2.conv.weight' missing"),
      ("shape", "Mixed_5b.branch1x1.bn.running_var"),
      ("extra", "unexpected tensor 'AuxLogits.fc.weight'"),
    ]
    for (name, fragment) in cases {
      do {
        _ = try InceptionV3(contentsOf: "\(dir)/\(name).safetensors")
        Issue.record("\(name) loaded")
      } catch {
        #expect(error.description.contains(fragment), "\(name): \(error.description)")
        #expect(!error.description.contains("\n"))
      }
    }
  }
}
