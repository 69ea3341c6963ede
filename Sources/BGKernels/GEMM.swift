import CKernels

/// `c = alpha * op(a) op(b) + beta * c` on row-major matrices.
///
/// `op(a)` is `a` (`[m, k]`) or, with `transposeA`, `a` stored as `[k, m]`;
/// likewise `op(b)` is `[k, n]` or `b` stored `[n, k]`. `c` is `[m, n]`.
/// With `beta == 0`, `c`'s old contents are ignored.
///
/// - Throws: `KernelError.shape` when the shapes do not fit.
public func gemm(
  _ a: Tensor, _ b: Tensor, into c: inout Tensor,
  transposeA: Bool = false, transposeB: Bool = false,
  alpha: Float = 1, beta: Float = 0, precision: Precision = .fp32
) throws(KernelError) {
  let sa = try a.dims(2, "a"), sb = try b.dims(2, "b"), sc = try c.dims(2, "c")
  let (m, k) = transposeA ? (sa[1], sa[0]) : (sa[0], sa[1])
  let (kb, n) = transposeB ? (sb[1], sb[0]) : (sb[0], sb[1])
  guard k == kb else {
    throw .shape("gemm: op(a) is [\(m), \(k)] but op(b) is [\(kb), \(n)]; inner extents differ")
  }
  guard sc == [m, n] else { throw .shape("gemm: c has shape \(sc), expected [\(m), \(n)]") }
  try checkInt32(m, n, k)
  a.storage.withUnsafeBufferPointer { pa in
    b.storage.withUnsafeBufferPointer { pb in
      c.storage.withUnsafeMutableBufferPointer { pc in
        bk_gemm(
          precision.c, transposeA ? 1 : 0, transposeB ? 1 : 0,
          Int32(m), Int32(n), Int32(k), alpha,
          pa.baseAddress, Int32(max(sa[1], 1)), pb.baseAddress, Int32(max(sb[1], 1)),
          beta, pc.baseAddress, Int32(max(n, 1)))
      }
    }
  }
}

/// `op(a) op(b)` as a new `[m, n]` tensor.
public func matmul(
  _ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
  precision: Precision = .fp32
) throws(KernelError) -> Tensor {
  let sa = try a.dims(2, "a"), sb = try b.dims(2, "b")
  var c = Tensor(shape: [transposeA ? sa[1] : sa[0], transposeB ? sb[0] : sb[1]])
  try gemm(a, b, into: &c, transposeA: transposeA, transposeB: transposeB, precision: precision)
  return c
}

/// Extents must fit the kernels' 32-bit indices.
func checkInt32(_ extents: Int...) throws(KernelError) {
  for e in extents where e > Int(Int32.max) {
    throw .shape("extent \(e) exceeds the kernels' limit of \(Int32.max)")
  }
}
