import BGKernels

/// Which derivative a layer's backward computes, for the R1 penalty's
/// double backpropagation (`Discriminator.gradientPenalty`). D is piecewise
/// linear in its input, so at a fixed input its Jacobian `J` is the layer
/// chain with the biases dropped and every ReLU replaced by its mask: the
/// transpose pass applies `J^T`, and the tangent pass backpropagates through
/// `t -> J t`, whose weight gradients are those of `<dy, J t>`.
enum Pass: Equatable {
  /// The last training forward's: takes what it saved and accumulates every
  /// parameter gradient.
  case forward
  /// `J^T dy` at the last forward, over the batch rows `rows` of that
  /// forward: input gradients only, and what the forward saved stays for
  /// its own backward.
  case transpose(rows: Range<Int>)
  /// Through the last tangent pass (`tangent(_:rows:)`) over the rows
  /// `rows`: takes the tangent each layer kept and accumulates the weights'
  /// gradients of `<dy, J t>` (biases have none); the forward's saved stay.
  case tangent(rows: Range<Int>)

  /// The rows of the forward's batch the pass covers; nil: all of them.
  var rows: Range<Int>? {
    switch self {
    case .forward: return nil
    case .transpose(let rows), .tangent(let rows): return rows
    }
  }

  /// Whether the pass accumulates weight gradients (all but the transpose).
  var accumulatesWeights: Bool {
    if case .transpose = self { return false }
    return true
  }
}

extension Tensor {
  /// The batch rows `rows` (the outermost dimension) of this tensor, or the
  /// tensor itself for nil.
  func batchRows(_ rows: Range<Int>?) throws(KernelError) -> Tensor {
    guard let rows, rows != 0..<(shape.first ?? 0) else { return self }
    guard let n = shape.first, rows.lowerBound >= 0, rows.upperBound <= n else {
      throw .shape("batch rows \(rows) of a tensor of shape \(shape)")
    }
    let size = count / max(n, 1)
    return try Tensor(
      shape: [rows.count] + shape.dropFirst(), storage: Array(storage[rows.lowerBound * size..<rows.upperBound * size]))
  }
}
