import BGKernels

/// A weight of `shape` drawn by `initialization`.
func initialWeight(_ shape: [Int], _ initialization: Initialization, rng: inout SeededRandom) -> Tensor {
  switch initialization {
  case .orthogonal:
    return orthogonal(shape, rng: &rng)
  case .normal(let std):
    var t = Tensor(shape: shape)
    for i in 0..<t.count { t.storage[i] = std * rng.normal() }
    return t
  case .zeros:
    return Tensor(shape: shape)
  }
}

/// An orthogonal initialisation like PyTorch's `init.orthogonal_` (BigGAN's
/// default): a Gaussian matrix `[shape[0], rest]` whose rows (or columns,
/// when there are more rows than columns) are made orthonormal.
///
/// Block classical Gram-Schmidt with re-orthogonalisation: each block of 32
/// vectors is projected out of the previous ones twice with GEMMs, then
/// orthonormalised within itself.
func orthogonal(_ shape: [Int], rng: inout SeededRandom) -> Tensor {
  let rows = shape[0], cols = shape.dropFirst().reduce(1, *)
  var out = Tensor(shape: shape)
  guard rows > 0, cols > 0 else { return out }
  let transposed = rows > cols
  let (k, length) = transposed ? (cols, rows) : (rows, cols)
  var m = Tensor(shape: [k, length])
  for i in 0..<m.count { m.storage[i] = rng.normal() }
  let block = 32
  for start in stride(from: 0, to: k, by: block) {
    let nb = min(block, k - start)
    var b = try! Tensor(shape: [nb, length], storage: Array(m.storage[start * length..<(start + nb) * length]))
    if start > 0 {
      let q = try! Tensor(shape: [start, length], storage: Array(m.storage[0..<start * length]))
      for _ in 0..<2 {
        let c = try! matmul(b, q, transposeB: true)
        try! gemm(c, q, into: &b, alpha: -1, beta: 1)
      }
    }
    for i in 0..<nb {
      let row = i * length
      for j in 0..<i {
        let other = j * length
        var d = 0.0
        for t in 0..<length { d += Double(b.storage[row + t]) * Double(b.storage[other + t]) }
        let df = Float(d)
        for t in 0..<length { b.storage[row + t] -= df * b.storage[other + t] }
      }
      var norm = 0.0
      for t in 0..<length { norm += Double(b.storage[row + t]) * Double(b.storage[row + t]) }
      let inv = Float(1 / max(norm.squareRoot(), 1e-30))
      for t in 0..<length { b.storage[row + t] *= inv }
    }
    m.storage.replaceSubrange(start * length..<(start + nb) * length, with: b.storage)
  }
  if transposed {
    for i in 0..<k { for j in 0..<length { out.storage[j * k + i] = m.storage[i * length + j] } }
  } else {
    out.storage = m.storage
  }
  return out
}
