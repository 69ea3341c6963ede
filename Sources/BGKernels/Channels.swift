/// Channel (last-axis) slicing and joining of a tensor `[..., C]`: the skip
/// connections of BigGAN-deep drop channels (generator) or append computed
/// ones (discriminator).

/// Channels `range` of `x` `[..., C]`: `[..., range.count]`.
public func channels(_ x: Tensor, _ range: Range<Int>) throws(KernelError) -> Tensor {
  guard let c = x.shape.last, range.lowerBound >= 0, range.upperBound <= c else {
    throw .shape("channels: \(range) is not inside the last axis of shape \(x.shape)")
  }
  let rows = c == 0 ? 0 : x.count / c, k = range.count
  var y = Tensor(overwrittenShape: Array(x.shape.dropLast()) + [k])
  y.storage.withUnsafeMutableBufferPointer { out in
    x.storage.withUnsafeBufferPointer { src in
      for r in 0..<rows {
        for j in 0..<k { out[r * k + j] = src[r * c + range.lowerBound + j] }
      }
    }
  }
  return y
}

/// `x` `[..., k]` placed at channels `offset..<offset + k` of a zero tensor
/// `[..., total]`: the gradient of `channels(_:_:)`.
public func paddingChannels(_ x: Tensor, offset: Int, total: Int) throws(KernelError) -> Tensor {
  guard let k = x.shape.last, offset >= 0, offset + k <= total else {
    throw .shape("paddingChannels: \(x.shape) does not fit at channel \(offset) of \(total)")
  }
  let rows = k == 0 ? 0 : x.count / k
  var y = Tensor(shape: Array(x.shape.dropLast()) + [total])
  y.storage.withUnsafeMutableBufferPointer { out in
    x.storage.withUnsafeBufferPointer { src in
      for r in 0..<rows {
        for j in 0..<k { out[r * total + offset + j] = src[r * k + j] }
      }
    }
  }
  return y
}

/// `[a | b]` along the last axis: `[..., Ca]` and `[..., Cb]` (same leading
/// shape) to `[..., Ca + Cb]`.
public func concatenateChannels(_ a: Tensor, _ b: Tensor) throws(KernelError) -> Tensor {
  guard let p = a.shape.last, let q = b.shape.last, a.shape.dropLast() == b.shape.dropLast() else {
    throw .shape("concatenateChannels: shapes \(a.shape) and \(b.shape) differ before the last axis")
  }
  var y = try paddingChannels(a, offset: 0, total: p + q)
  let rows = p + q == 0 ? 0 : y.count / (p + q)
  y.storage.withUnsafeMutableBufferPointer { out in
    b.storage.withUnsafeBufferPointer { src in
      for r in 0..<rows {
        for j in 0..<q { out[r * (p + q) + p + j] = src[r * q + j] }
      }
    }
  }
  return y
}
