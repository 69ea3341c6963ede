import BGKernels

/// Improved precision and recall (Kynkäänniemi et al. 2019) of `generated`
/// against `reference` features (`[N, D]` each): each set's manifold is the
/// union of balls around its points reaching their `neighbours`-th nearest
/// neighbour (self excluded); precision is the fraction of generated points
/// inside the reference manifold, recall the fraction of reference points
/// inside the generated one. Squared distances come from the fp32 GEMM
/// (`|x|^2 + |y|^2 - 2 x.y`), in blocks of rows so memory stays bounded.
public func precisionRecall(generated: Tensor, reference: Tensor, neighbours: Int = 3)
  throws(EvaluationError) -> (precision: Double, recall: Double)
{
  guard generated.shape.count == 2, reference.shape.count == 2,
    generated.shape[1] == reference.shape[1]
  else {
    throw EvaluationError(
      "precision/recall: features have shapes \(generated.shape) and \(reference.shape); expected [N, D] with the same D")
  }
  for (name, features) in [("generated", generated), ("reference", reference)]
  where features.shape[0] <= neighbours {
    throw EvaluationError(
      "precision/recall: \(features.shape[0]) \(name) images; expected more than the \(neighbours) neighbours")
  }
  do {
    let referenceRadii = try kthNeighbourDistances(reference, neighbours)
    let generatedRadii = try kthNeighbourDistances(generated, neighbours)
    let precision = try coveredFraction(generated, by: reference, radii: referenceRadii)
    let recall = try coveredFraction(reference, by: generated, radii: generatedRadii)
    return (precision, recall)
  } catch {
    throw EvaluationError("precision/recall: \(error)")
  }
}

private let blockRows = 1024

/// Squared norms of the rows of `[N, D]`.
private func squaredNorms(_ x: Tensor) -> [Float] {
  let d = x.shape[1]
  return (0..<x.shape[0]).map { i in
    var s: Float = 0
    for j in 0..<d { s += x.storage[i * d + j] * x.storage[i * d + j] }
    return s
  }
}

/// Calls `body(start, block)` with the squared distances from rows
/// `start..<start + rows` of `a` to every row of `b`, `[rows, Nb]`.
private func forEachDistanceBlock(
  _ a: Tensor, _ b: Tensor, _ body: (Int, Tensor) -> Void
) throws(KernelError) {
  let na = a.shape[0], d = a.shape[1], nb = b.shape[0]
  let normA = squaredNorms(a), normB = squaredNorms(b)
  var start = 0
  while start < na {
    let count = min(blockRows, na - start)
    let slice = try Tensor(shape: [count, d], storage: Array(a.storage[start * d..<(start + count) * d]))
    var block = try matmul(slice, b, transposeB: true)
    for i in 0..<count {
      for j in 0..<nb {
        block.storage[i * nb + j] = max(0, normA[start + i] + normB[j] - 2 * block.storage[i * nb + j])
      }
    }
    body(start, block)
    start += count
  }
}

/// The squared distance from each row to its `k`-th nearest other row (the
/// `k + 1`-th smallest distance, the row itself being the smallest).
private func kthNeighbourDistances(_ x: Tensor, _ k: Int) throws(KernelError) -> [Float] {
  let n = x.shape[0]
  var radii = [Float](repeating: 0, count: n)
  try forEachDistanceBlock(x, x) { start, block in
    for i in 0..<block.shape[0] {
      var row = Array(block.storage[i * n..<(i + 1) * n])
      row[start + i] = 0
      radii[start + i] = smallest(&row, rank: k)
    }
  }
  return radii
}

/// The value of rank `rank` (0-based) in ascending order; reorders `values`.
private func smallest(_ values: inout [Float], rank: Int) -> Float {
  var lo = 0, hi = values.count - 1
  while lo < hi {
    let pivot = values[(lo + hi) / 2]
    var i = lo, j = hi
    while i <= j {
      while values[i] < pivot { i += 1 }
      while values[j] > pivot { j -= 1 }
      if i <= j { values.swapAt(i, j); i += 1; j -= 1 }
    }
    if rank <= j { hi = j } else if rank >= i { lo = i } else { return values[rank] }
  }
  return values[rank]
}

/// The fraction of rows of `x` within `radii[j]` of some row `j` of `y`.
private func coveredFraction(_ x: Tensor, by y: Tensor, radii: [Float]) throws(KernelError) -> Double {
  let ny = y.shape[0]
  var covered = 0
  try forEachDistanceBlock(x, y) { _, block in
    for i in 0..<block.shape[0] {
      for j in 0..<ny where block.storage[i * ny + j] <= radii[j] {
        covered += 1
        break
      }
    }
  }
  return Double(covered) / Double(x.shape[0])
}
