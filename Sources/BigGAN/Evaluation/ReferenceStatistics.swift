import BGKernels
import Foundation

/// A data set's Inception statistics as an `.npz` file: `mu` (float64
/// `[D]`) and `sigma` (float64 `[D, D]`), the layout pytorch-fid's
/// `--save-stats` and BigGAN-PyTorch's `I128_inception_moments.npz` use, so
/// their files work here and ours there; plus, when written by `biggan-fast
/// stats`, `features` (float32 `[N, D]`, for KID and precision/recall),
/// `labels` (int64 `[N]`, for intra-class FID) and optionally
/// `logits_unbiased` (float32 `[N, classes]`).
public struct ReferenceStatistics {
  public var statistics: FeatureStatistics
  public var features: Tensor?
  public var labels: [Int]?
  public var logits: Tensor?

  public init(statistics: FeatureStatistics, features: Tensor? = nil, labels: [Int]? = nil, logits: Tensor? = nil) {
    self.statistics = statistics
    self.features = features
    self.labels = labels
    self.logits = logits
  }

  /// The statistics of extracted features, keeping the features and labels.
  public init(_ extracted: InceptionFeatures, keepLogits: Bool = false) throws(EvaluationError) {
    self.init(
      statistics: try FeatureStatistics(features: extracted.features), features: extracted.features,
      labels: extracted.labels, logits: keepLogits ? extracted.logits : nil)
  }

  /// Reads `path`; `mu` and `sigma` are required, the rest optional.
  public init(contentsOf path: String) throws(EvaluationError) {
    let arrays: [String: NumPyArray]
    do { arrays = try NPZ.read(path) } catch { throw EvaluationError(error.description) }
    guard let mu = arrays["mu"], let sigma = arrays["sigma"] else {
      throw EvaluationError(
        "\(path): no 'mu' and 'sigma' arrays (it has \(arrays.keys.sorted().joined(separator: ", "))); expected Inception statistics as pytorch-fid or biggan-fast stats write them")
    }
    let d = mu.count
    guard mu.shape == [d], sigma.shape == [d, d], d >= 1 else {
      throw EvaluationError("\(path): mu \(mu.shape) and sigma \(sigma.shape); expected [D] and [D, D]")
    }
    do { statistics = try FeatureStatistics(mean: mu.doubles, covariance: sigma.doubles) } catch {
      throw EvaluationError("\(path): \(error.description)")
    }
    if let f = arrays["features"] {
      guard f.shape.count == 2, f.shape[1] == d else {
        throw EvaluationError("\(path): features have shape \(f.shape); expected [N, \(d)]")
      }
      features = try? Tensor(shape: f.shape, storage: f.floats)
    }
    if let l = arrays["labels"] {
      let values = l.doubles
      guard l.shape.count == 1, l.shape[0] == features?.shape[0] ?? l.shape[0],
        values.allSatisfy({ $0 >= 0 && $0 < 1e9 && $0 == $0.rounded() })
      else { throw EvaluationError("\(path): labels have shape \(l.shape); expected [N] class indices matching the features") }
      labels = values.map { Int($0) }
    }
    if let g = arrays["logits_unbiased"] {
      guard g.shape.count == 2 else { throw EvaluationError("\(path): logits_unbiased have shape \(g.shape); expected [N, classes]") }
      logits = try? Tensor(shape: g.shape, storage: g.floats)
    }
  }

  /// Writes the file (atomically: libzip renames a finished temporary file).
  public func write(to path: String) throws(EvaluationError) {
    let d = statistics.dimension
    var arrays: [(name: String, array: NumPyArray)] = [
      ("mu", NumPyArray(shape: [d], doubles: statistics.mean)),
      ("sigma", NumPyArray(shape: [d, d], doubles: statistics.covariance)),
    ]
    if let features { arrays.append(("features", NumPyArray(shape: features.shape, floats: features.storage))) }
    if let labels { arrays.append(("labels", NumPyArray(shape: [labels.count], integers: labels.map { Int64($0) }))) }
    if let logits { arrays.append(("logits_unbiased", NumPyArray(shape: logits.shape, floats: logits.storage))) }
    do { try NPZ.write(arrays, to: path) } catch { throw EvaluationError(error.description) }
  }
}
