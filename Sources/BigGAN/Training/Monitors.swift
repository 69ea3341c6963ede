import BGKernels

/// The paper's stability instruments (section 4): singular values of every
/// weight, D's outputs on training and held-out data, and a warning when a
/// value jumps far past its running average.
public enum SingularValues {
  /// The `count` largest singular values of `weight` viewed as
  /// `[shape[0], rest]`: subspace iteration on `W^T W` (`iterations` rounds,
  /// re-orthonormalised each time), then Rayleigh-Ritz on the final basis.
  public static func top(_ weight: Tensor, count k: Int = 3, iterations: Int = 40, seed: UInt64 = 0) throws(KernelError) -> [Float] {
    let rows = weight.shape[0], cols = weight.count / max(rows, 1)
    let k = min(k, rows, cols)
    guard k > 0 else { return [] }
    let w = try weight.reshaped([rows, cols])
    var rng = SeededRandom(seed: seed)
    var vt = Tensor(shape: [k, cols])
    for i in 0..<vt.count { vt.storage[i] = rng.normal() }
    orthonormalizeRows(&vt)
    for _ in 0..<iterations {
      var ut = try matmul(vt, w, transposeB: true)
      orthonormalizeRows(&ut)
      vt = try matmul(ut, w)
      orthonormalizeRows(&vt)
    }
    let bt = try matmul(vt, w, transposeB: true)
    var gram = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
    for i in 0..<k {
      for j in 0..<k {
        var s = 0.0
        for r in 0..<rows { s += Double(bt.storage[i * rows + r]) * Double(bt.storage[j * rows + r]) }
        gram[i][j] = s
      }
    }
    return symmetricEigenvalues(gram).map { Float(max($0, 0).squareRoot()) }.sorted(by: >)
  }

  /// Modified Gram-Schmidt over the rows, in double precision.
  static func orthonormalizeRows(_ t: inout Tensor) {
    let n = t.shape[0], len = t.shape[1]
    var rows = (0..<n).map { i in (0..<len).map { Double(t.storage[i * len + $0]) } }
    for i in 0..<n {
      for j in 0..<i {
        let d = zip(rows[i], rows[j]).reduce(0) { $0 + $1.0 * $1.1 }
        for c in 0..<len { rows[i][c] -= d * rows[j][c] }
      }
      let norm = max(rows[i].reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-300)
      for c in 0..<len { rows[i][c] /= norm }
    }
    for i in 0..<n { for c in 0..<len { t.storage[i * len + c] = Float(rows[i][c]) } }
  }

  /// Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations.
  static func symmetricEigenvalues(_ m: [[Double]]) -> [Double] {
    var a = m
    let n = a.count
    for _ in 0..<100 {
      var off = 0.0
      for p in 0..<n { for q in 0..<n where p != q { off += a[p][q] * a[p][q] } }
      if off < 1e-30 { break }
      for p in 0..<n {
        for q in (p + 1)..<n where a[p][q] != 0 {
          let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
          let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
          let c = 1 / (t * t + 1).squareRoot(), s = t * c
          for k in 0..<n {
            let akp = a[k][p], akq = a[k][q]
            a[k][p] = c * akp - s * akq
            a[k][q] = s * akp + c * akq
          }
          for k in 0..<n {
            let apk = a[p][k], aqk = a[q][k]
            a[p][k] = c * apk - s * aqk
            a[q][k] = s * apk + c * aqk
          }
        }
      }
    }
    return (0..<n).map { a[$0][$0] }
  }

  /// The top singular values of every weight with two or more dimensions,
  /// keyed `<tag>/<name>`.
  public static func ofModel(_ model: any Module, tag: String, count: Int = 3) throws(KernelError) -> [String: [Float]] {
    var out: [String: [Float]] = [:]
    for p in model.parameters where p.value.shape.count >= 2 {
      out["\(tag)/\(p.name)"] = try top(p.value, count: count)
    }
    return out
  }
}

/// Warns when a watched value exceeds `factor` times its running average
/// (an exponential average over roughly the last 100 observations, after 20
/// warm-up observations).
public struct CollapseWatch {
  public let factor: Float
  private var averages: [String: (value: Double, seen: Int)] = [:]

  public init(factor: Float) { self.factor = factor }

  /// Records `value` under `name`; returns a warning when it jumped.
  public mutating func observe(_ name: String, _ value: Float) -> String? {
    let v = Double(value)
    var entry = averages[name] ?? (v, 0)
    var warning: String?
    if entry.seen >= 20, abs(v) > Double(factor) * abs(entry.value), abs(entry.value) > 1e-12 {
      warning = "\(name) jumped to \(value), \(String(format: "%.1f", abs(v / entry.value)))x its running average \(Float(entry.value))"
    }
    entry.value = entry.seen == 0 ? v : 0.99 * entry.value + 0.01 * v
    entry.seen += 1
    averages[name] = entry
    return warning
  }
}

extension Trainer {
  /// D's mean output and the share of images it scores above 0 (calls them
  /// real) on a batch, in evaluation mode: run on training and held-out real
  /// images, the gap shows D memorising its training set.
  public func discriminatorVerdict(_ images: Tensor, labels: [Int]) throws -> (mean: Float, accuracy: Float) {
    let scores = try discriminator.forward(images, labels: labels, mode: .inference)
    let n = Float(scores.count)
    return (scores.storage.reduce(0, +) / n, Float(scores.storage.filter { $0 > 0 }.count) / n)
  }
}
