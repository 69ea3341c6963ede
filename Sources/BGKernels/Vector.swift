import CKernels

/// The sum of `a[i] * b[i]` over all elements (same element counts), in a
/// fixed order that does not depend on threads or instruction set.
public func dot(_ a: Tensor, _ b: Tensor) throws(KernelError) -> Double {
  guard a.count == b.count else {
    throw .shape("dot: operands have \(a.count) and \(b.count) elements")
  }
  return bk_dot(a.count, a.storage, b.storage)
}

/// `W x` (or `W^T x` when `transposed`) for `w` viewed as a matrix
/// `[rows, w.count / rows]`.
public func matrixVector(
  _ w: Tensor, rows: Int, _ x: [Float], transposed: Bool = false
) throws(KernelError) -> [Float] {
  guard rows > 0, w.count % rows == 0 else {
    throw .shape("matrixVector: \(w.count) elements do not form \(rows) rows")
  }
  let cols = w.count / rows
  guard x.count == (transposed ? rows : cols) else {
    throw .shape("matrixVector: x has \(x.count) elements, expected \(transposed ? rows : cols)")
  }
  try checkInt32(rows, cols)
  var y = [Float](repeating: 0, count: transposed ? cols : rows)
  y.withUnsafeMutableBufferPointer {
    bk_gemv(transposed ? 1 : 0, Int32(rows), Int32(cols), w.storage, x, $0.baseAddress)
  }
  return y
}

extension Tensor {
  /// Every element multiplied by `alpha`.
  public func scaled(by alpha: Float) -> Tensor {
    var y = Tensor(shape: shape)
    y.storage.withUnsafeMutableBufferPointer { bk_scale(count, alpha, storage, $0.baseAddress) }
    return y
  }

  /// `self += alpha * u v^T` for `self` viewed as `[u.count, v.count]`.
  public mutating func addOuterProduct(_ u: [Float], _ v: [Float], scaledBy alpha: Float) throws(KernelError) {
    guard u.count * v.count == count else {
      throw .shape("addOuterProduct: [\(u.count)] x [\(v.count)] does not match \(count) elements")
    }
    try checkInt32(u.count, v.count)
    storage.withUnsafeMutableBufferPointer {
      bk_rank1_update(Int32(u.count), Int32(v.count), alpha, u, v, $0.baseAddress)
    }
  }
}
