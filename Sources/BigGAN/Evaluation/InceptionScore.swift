import BGKernels
import Foundation

/// A metric's mean and standard deviation over splits or subsets
/// (population standard deviation, as `np.std`).
public struct MeanAndDeviation: Equatable, Sendable, Codable {
  public var mean: Double
  public var standardDeviation: Double

  init(_ values: [Double]) {
    mean = values.reduce(0, +) / Double(values.count)
    let m = mean
    standardDeviation = (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count)).squareRoot()
  }
}

/// The Inception Score, `exp E_x KL(p(y|x) || p(y))`, of `logits` (`[N,
/// classes]`, the fc outputs without bias) over `splits` equal parts, as
/// torch-fidelity computes it: rows shuffled by NumPy's
/// `RandomState(seed).permutation(N)` (no shuffle when `seed` is `nil`),
/// softmax and log-softmax in float64, part `i` the rows `i N / splits
/// ..< (i + 1) N / splits`.
public func inceptionScore(logits: Tensor, splits: Int = 10, seed: UInt32? = 2020)
  throws(EvaluationError) -> MeanAndDeviation
{
  guard logits.shape.count == 2, logits.shape[1] >= 2 else {
    throw EvaluationError("IS: logits have shape \(logits.shape); expected [N, classes >= 2]")
  }
  let n = logits.shape[0], c = logits.shape[1]
  guard splits >= 1, n >= splits else {
    throw EvaluationError("IS: \(n) images cannot make \(splits) splits; expected at least one image per split")
  }
  var order = Array(0..<n)
  if let seed {
    var random = LegacyNumPyRandom(seed: seed)
    order = random.permutation(n)
  }
  var p = [Double](repeating: 0, count: n * c)
  var logP = [Double](repeating: 0, count: n * c)
  logits.storage.withUnsafeBufferPointer { x in
    for (row, source) in order.enumerated() {
      let base = source * c
      var top = -Double.infinity
      for j in 0..<c { top = max(top, Double(x[base + j])) }
      var sum = 0.0
      for j in 0..<c { sum += exp(Double(x[base + j]) - top) }
      let logSum = log(sum)
      for j in 0..<c {
        let shifted = Double(x[base + j]) - top
        p[row * c + j] = exp(shifted) / sum
        logP[row * c + j] = shifted - logSum
      }
    }
  }
  var scores: [Double] = []
  for split in 0..<splits {
    let lo = split * n / splits, hi = (split + 1) * n / splits
    var q = [Double](repeating: 0, count: c)
    for row in lo..<hi {
      for j in 0..<c { q[j] += p[row * c + j] }
    }
    let logQ = q.map { log($0 / Double(hi - lo)) }
    var kl = 0.0
    for row in lo..<hi {
      var sum = 0.0
      for j in 0..<c { sum += p[row * c + j] * (logP[row * c + j] - logQ[j]) }
      kl += sum
    }
    scores.append(exp(kl / Double(hi - lo)))
  }
  guard scores.allSatisfy(\.isFinite) else { throw EvaluationError("IS: the logits hold NaN or infinity") }
  return MeanAndDeviation(scores)
}
