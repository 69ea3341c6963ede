import CLAPACK

extension FeatureStatistics {
  /// The Fréchet distance between two Gaussians,
  /// `|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2`: FID when
  /// the statistics are of Inception pool3 features.
  ///
  /// The trace of the matrix square root comes from two symmetric
  /// eigen-decompositions (LAPACK `dsyevd`), never from a general `sqrtm`:
  /// `S1 = V L V^T`, `B = V L^1/2`, and `B^T S2 B` is similar to
  /// `S1^1/2 S2 S1^1/2`, whose eigenvalues are those of `S1 S2`. Eigenvalues
  /// that rounding makes slightly negative (rank-deficient covariances,
  /// fewer samples than dimensions) count as zero, so the result is finite
  /// where `scipy.linalg.sqrtm` needs an offset.
  public func frechetDistance(to other: FeatureStatistics) throws(EvaluationError) -> Double {
    guard dimension == other.dimension else {
      throw EvaluationError(
        "FID: the statistics have \(dimension) and \(other.dimension) dimensions; both must come from the same network layer")
    }
    let d = dimension
    var meanTerm = 0.0, trace1 = 0.0, trace2 = 0.0
    for i in 0..<d {
      let diff = mean[i] - other.mean[i]
      meanTerm += diff * diff
      trace1 += covariance[i * d + i]
      trace2 += other.covariance[i * d + i]
    }
    var b = covariance
    let lambda = try symmetricEigen(&b, n: d, vectors: true)
    for j in 0..<d {
      let s = lambda[j] > 0 ? lambda[j].squareRoot() : 0
      for i in 0..<d { b[i + j * d] *= s }
    }
    var product = [Double](repeating: 0, count: d * d)
    var inner = [Double](repeating: 0, count: d * d)
    var nn = Int32(d), one = 1.0, zero = 0.0
    var no = CChar(UInt8(ascii: "N")), yes = CChar(UInt8(ascii: "T"))
    dgemm_(&no, &no, &nn, &nn, &nn, &one, other.covariance, &nn, b, &nn, &zero, &product, &nn)
    dgemm_(&yes, &no, &nn, &nn, &nn, &one, b, &nn, product, &nn, &zero, &inner, &nn)
    // B^T S2 B is symmetric up to rounding; dsyevd reads its upper half.
    let mu = try symmetricEigen(&inner, n: d, vectors: false)
    var traceRoot = 0.0
    for value in mu where value > 0 { traceRoot += value.squareRoot() }
    return meanTerm + trace1 + trace2 - 2 * traceRoot
  }
}
