import BGKernels

/// The paper's spectral clamp of D (Sections 4.1-4.2): each weight, viewed
/// as the `[rows, rest]` matrix spectral normalisation sees, loses the part
/// of its top singular value above a limit:
/// `W <- W - max(0, sigma0 - limit) u0 v0^T`.
public enum SpectralClamp {
  /// Power-iteration steps per weight. Each starts from the weight's
  /// spectral-norm vector `u0`, which every training forward has already
  /// moved toward the top singular vector.
  public static let iterations = 3

  /// Clamps the top singular value of every weight of `module` (each
  /// parameter of rank 2 or more) to `limit`; returns how many it changed.
  /// The vectors come from `iterations` power-iteration steps from the
  /// weight's `u0` buffer (or, without one, a fixed start): deterministic,
  /// and the same bits on any number of threads.
  @discardableResult
  public static func apply(to module: any Module, limit: Float) throws(KernelError) -> Int {
    let starts = Dictionary(module.buffers.map { ($0.name, $0.value.storage) }, uniquingKeysWith: { a, _ in a })
    var changed = 0
    for p in module.parameters where p.value.shape.count >= 2 {
      let rows = p.value.shape[0]
      let start = starts[String(p.name.dropLast("weight".count)) + "u0"] ?? [Float](repeating: 1, count: rows)
      guard start.count == rows, let (sigma, u, v) = try topSingularTriple(p.value, rows: rows, start: start),
        sigma > limit
      else { continue }
      try p.value.addOuterProduct(u, v, scaledBy: limit - sigma)
      changed += 1
    }
    return changed
  }

  /// `sigma0`, `u0`, `v0` of `w` `[rows, rest]` by power iteration from
  /// `start`; nil for a zero matrix.
  static func topSingularTriple(
    _ w: Tensor, rows: Int, start: [Float]
  ) throws(KernelError) -> (sigma: Float, u: [Float], v: [Float])? {
    var u = start, v: [Float] = []
    for _ in 0..<iterations {
      v = try matrixVector(w, rows: rows, u, transposed: true)
      guard normalize(&v) else { return nil }
      u = try matrixVector(w, rows: rows, v)
      guard normalize(&u) else { return nil }
    }
    let wv = try matrixVector(w, rows: rows, v)
    let sigma = zip(u, wv).reduce(Double(0)) { $0 + Double($1.0) * Double($1.1) }
    return (Float(sigma), u, v)
  }

  /// Scales `x` to unit length; false when it is zero.
  private static func normalize(_ x: inout [Float]) -> Bool {
    let norm = x.reduce(Double(0)) { $0 + Double($1) * Double($1) }.squareRoot()
    guard norm > 0 else { return false }
    for i in x.indices { x[i] = Float(Double(x[i]) / norm) }
    return true
  }
}
