import CKernels

/// What the kernels derive from one constant weight, kept between calls: the
/// packed micro-panels of the GEMM operand and, for 3x3 convolutions that
/// take the Winograd path, the transformed filters.
///
/// A plan belongs to one weight *value*. Each part is built by the first
/// call that needs it, from the weight that call passes; every later call
/// must pass a weight with the same contents, so make a new plan whenever
/// the weight changes. Planned calls give exactly the bits of the unplanned
/// ones. A plan made for another precision or shape, or before the
/// instruction-set path was switched, is ignored (the call runs unplanned).
///
/// Memory: about the weight's size in `fp32`, half of it in `bf16`, plus
/// four times the filters of a convolution that takes Winograd.
public final class WeightPlan: @unchecked Sendable {
  let pointer: OpaquePointer
  /// The precision the plan serves.
  public let precision: Precision
  /// The weight's shape: `[out, in]` for `gemm(_:plan:)`, `[out, kh, kw,
  /// in]` for `conv2d(_:plan:weight:bias:geometry:)`.
  public let weightShape: [Int]

  /// A plan for the matrix `w` `[n, k]` of `y = x w^T`.
  ///
  /// - Returns: `nil` when an extent is 0 or exceeds the kernels' limit, or
  ///   memory is short.
  public init?(matrixRows n: Int, columns k: Int, precision: Precision) {
    guard n >= 1, k >= 1, n <= Int(Int32.max), k <= Int(Int32.max),
      let p = bk_gemm_plan_create(precision.c, Int32(n), Int32(k))
    else { return nil }
    pointer = p
    self.precision = precision
    weightShape = [n, k]
  }

  /// A plan for the convolution weight of shape `[outChannels, kernelHeight,
  /// kernelWidth, inChannels]`.
  ///
  /// - Returns: `nil` when the shape is not rank 4 with positive extents in
  ///   the kernels' range, or memory is short.
  public init?(convolutionWeight shape: [Int], precision: Precision) {
    guard shape.count == 4, shape.allSatisfy({ $0 >= 1 && $0 <= Int(Int32.max) }),
      let p = bk_conv_plan_create(
        precision.c, Int32(shape[0]), Int32(shape[1]), Int32(shape[2]), Int32(shape[3]))
    else { return nil }
    pointer = p
    self.precision = precision
    weightShape = shape
  }

  deinit { bk_weight_plan_destroy(pointer) }

  /// Bytes of derived operands built so far.
  public var bytes: Int { Int(bk_weight_plan_bytes(pointer)) }
}

/// `x w^T` for `x` `[m, k]` and the planned weight `w` `[n, k]`: the result
/// of `matmul(x, w, transposeB: true, precision: plan.precision)`, with `w`'s
/// packed form kept in `plan`.
///
/// - Throws: `KernelError.shape` when `w` is not the plan's shape or `x`
///   does not fit it.
public func matmul(_ x: Tensor, transposing w: Tensor, plan: WeightPlan) throws(KernelError)
  -> Tensor
{
  let sx = try x.dims(2, "x"), sw = try w.dims(2, "w")
  guard sw == plan.weightShape else {
    throw .shape("matmul: w has shape \(sw), but the plan was made for \(plan.weightShape)")
  }
  guard sx[1] == sw[1] else {
    throw .shape("matmul: x is [\(sx[0]), \(sx[1])] but w is [\(sw[0]), \(sw[1])]; inner extents differ")
  }
  try checkInt32(sx[0])
  let (m, n, k) = (sx[0], sw[0], sw[1])
  var y = Tensor(shape: [m, n])
  x.storage.withUnsafeBufferPointer { px in
    w.storage.withUnsafeBufferPointer { pw in
      y.storage.withUnsafeMutableBufferPointer { py in
        bk_gemm_planned(
          plan.precision.c, plan.pointer, Int32(m), Int32(n), Int32(k), 1,
          px.baseAddress, Int32(k), pw.baseAddress, Int32(k), 0, py.baseAddress, Int32(n))
      }
    }
  }
  return y
}
