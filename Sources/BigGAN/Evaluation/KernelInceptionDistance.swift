import BGKernels

/// The Kernel Inception Distance between `generated` (`[N1, D]`) and
/// `reference` (`[N2, D]`) features, as torch-fidelity computes it: the
/// unbiased squared MMD with the kernel `(x.y / D + 1)^3` on `subsets`
/// pairs of `subsetSize` rows drawn without replacement by NumPy's
/// `RandomState(seed)` (generated rows first, then reference rows, per
/// subset), reported as mean and standard deviation over the subsets.
/// Dot products run on the fp32 GEMM, the kernel and sums in float64.
public func kernelInceptionDistance(
  generated: Tensor, reference: Tensor, subsets: Int = 100, subsetSize: Int = 1000,
  seed: UInt32 = 2020
) throws(EvaluationError) -> MeanAndDeviation {
  guard generated.shape.count == 2, reference.shape.count == 2,
    generated.shape[1] == reference.shape[1], generated.shape[1] >= 1
  else {
    throw EvaluationError(
      "KID: features have shapes \(generated.shape) and \(reference.shape); expected [N, D] with the same D")
  }
  guard subsets >= 1, subsetSize >= 2 else {
    throw EvaluationError("KID: \(subsets) subsets of \(subsetSize); expected at least 1 subset of at least 2")
  }
  for (name, features) in [("generated", generated), ("reference", reference)]
  where features.shape[0] < subsetSize {
    throw EvaluationError(
      "KID: \(features.shape[0]) \(name) images, fewer than the subset size \(subsetSize); use more images or a smaller --kid-subset-size")
  }
  let d = generated.shape[1], m = subsetSize
  let gamma = 1 / Double(d)
  var random = LegacyNumPyRandom(seed: seed)
  var values: [Double] = []
  do {
    for _ in 0..<subsets {
      let x = rows(generated, random.choice(generated.shape[0], count: m))
      let y = rows(reference, random.choice(reference.shape[0], count: m))
      let kxx = try matmul(x, x, transposeB: true)
      let kyy = try matmul(y, y, transposeB: true)
      let kxy = try matmul(x, y, transposeB: true)
      func k(_ dot: Float) -> Double {
        let t = Double(dot) * gamma + 1
        return t * t * t
      }
      var sumXX = 0.0, sumYY = 0.0, sumXY = 0.0
      for i in 0..<m {
        for j in 0..<m {
          if i != j {
            sumXX += k(kxx.storage[i * m + j])
            sumYY += k(kyy.storage[i * m + j])
          }
          sumXY += k(kxy.storage[i * m + j])
        }
      }
      let mm = Double(m)
      values.append((sumXX + sumYY) / (mm * (mm - 1)) - 2 * sumXY / (mm * mm))
    }
  } catch {
    throw EvaluationError("KID: \(error)")
  }
  guard values.allSatisfy(\.isFinite) else { throw EvaluationError("KID: the features hold NaN or infinity") }
  return MeanAndDeviation(values)
}

/// The rows `indices` of a `[N, D]` tensor, in that order.
func rows(_ x: Tensor, _ indices: [Int]) -> Tensor {
  let d = x.shape[1]
  var out = [Float](repeating: 0, count: indices.count * d)
  x.storage.withUnsafeBufferPointer { src in
    for (r, i) in indices.enumerated() {
      for j in 0..<d { out[r * d + j] = src[i * d + j] }
    }
  }
  return try! Tensor(shape: [indices.count, d], storage: out)
}
