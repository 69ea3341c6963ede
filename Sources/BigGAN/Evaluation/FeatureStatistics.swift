import BGKernels
import CLAPACK

/// The mean and covariance of a set of feature vectors: what FID compares,
/// and what `mu`/`sigma` in a pytorch-fid or BigGAN-PyTorch `.npz` hold.
public struct FeatureStatistics: Equatable, Sendable {
  /// The feature size `D`.
  public let dimension: Int
  /// `[D]`, float64.
  public var mean: [Double]
  /// `[D, D]`, float64, symmetric, normalised by `N - 1` as `np.cov`.
  public var covariance: [Double]

  /// Statistics given as values; `covariance` must be `D x D`.
  public init(mean: [Double], covariance: [Double]) throws(EvaluationError) {
    guard !mean.isEmpty, covariance.count == mean.count * mean.count else {
      throw EvaluationError(
        "statistics: sigma has \(covariance.count) values for a mu of \(mean.count); expected \(mean.count) x \(mean.count)")
    }
    guard mean.allSatisfy(\.isFinite), covariance.allSatisfy(\.isFinite) else {
      throw EvaluationError("statistics: mu or sigma holds NaN or infinity")
    }
    self.dimension = mean.count
    self.mean = mean
    self.covariance = covariance
  }

  /// The statistics of `features`, `[N, D]` with `N >= 2`, accumulated in
  /// float64: the mean by rows in order, the covariance of the centred
  /// rows by BLAS `dsyrk` in blocks of rows.
  public init(features: Tensor) throws(EvaluationError) {
    guard features.shape.count == 2, features.shape[0] >= 2, features.shape[1] >= 1 else {
      throw EvaluationError(
        "statistics: features have shape \(features.shape); expected [N >= 2, D] (a covariance needs two samples)")
    }
    let n = features.shape[0], d = features.shape[1]
    guard features.storage.allSatisfy(\.isFinite) else {
      throw EvaluationError("statistics: the features hold NaN or infinity")
    }
    var mean = [Double](repeating: 0, count: d)
    features.storage.withUnsafeBufferPointer { x in
      for row in 0..<n {
        for j in 0..<d { mean[j] += Double(x[row * d + j]) }
      }
    }
    for j in 0..<d { mean[j] /= Double(n) }
    var covariance = [Double](repeating: 0, count: d * d)
    let blockRows = max(1, min(n, (8 << 20) / d))
    var block = [Double](repeating: 0, count: blockRows * d)
    var start = 0
    while start < n {
      let rows = min(blockRows, n - start)
      features.storage.withUnsafeBufferPointer { x in
        for r in 0..<rows {
          for j in 0..<d { block[r * d + j] = Double(x[(start + r) * d + j]) - mean[j] }
        }
      }
      // Row-major [rows][d] is column-major d x rows: C += A A^T.
      var nn = Int32(d), kk = Int32(rows), lda = Int32(d), ldc = Int32(d)
      var alpha = 1.0, beta = start == 0 ? 0.0 : 1.0
      var uplo = CChar(UInt8(ascii: "U")), trans = CChar(UInt8(ascii: "N"))
      dsyrk_(&uplo, &trans, &nn, &kk, &alpha, block, &lda, &beta, &covariance, &ldc)
      start += rows
    }
    // Column-major upper triangle: (i, j) with i <= j sits at i + j d.
    let scale = 1 / Double(n - 1)
    for j in 0..<d {
      for i in 0...j {
        let v = covariance[i + j * d] * scale
        covariance[i + j * d] = v
        covariance[j + i * d] = v
      }
    }
    self.dimension = d
    self.mean = mean
    self.covariance = covariance
  }
}

/// Eigenvalues (ascending) and, when `vectors`, the eigenvectors (columns
/// of a column-major `n x n` matrix, overwriting `matrix`) of the symmetric
/// `matrix`, by LAPACK's `dsyevd`.
func symmetricEigen(_ matrix: inout [Double], n: Int, vectors: Bool) throws(EvaluationError)
  -> [Double]
{
  var jobz = CChar(UInt8(ascii: vectors ? "V" : "N")), uplo = CChar(UInt8(ascii: "U"))
  var nn = Int32(n), lda = Int32(n), info: Int32 = 0
  var values = [Double](repeating: 0, count: n)
  var workSize = 0.0, iworkSize: Int32 = 0, query: Int32 = -1
  dsyevd_(&jobz, &uplo, &nn, &matrix, &lda, &values, &workSize, &query, &iworkSize, &query, &info)
  guard info == 0 else { throw EvaluationError("eigen-decomposition: LAPACK dsyevd workspace query failed (info \(info))") }
  var lwork = Int32(workSize), liwork = iworkSize
  var work = [Double](repeating: 0, count: Int(lwork))
  var iwork = [Int32](repeating: 0, count: Int(liwork))
  dsyevd_(&jobz, &uplo, &nn, &matrix, &lda, &values, &work, &lwork, &iwork, &liwork, &info)
  guard info == 0 else {
    throw EvaluationError("eigen-decomposition: LAPACK dsyevd did not converge (info \(info))")
  }
  return values
}
