import CKernels

/// bfloat16 conversions with TPU rules: round to nearest even, NaN kept
/// (quieted), infinities kept, subnormals flushed to zero.
public enum BFloat16 {
  /// The bf16 bit pattern nearest to `x`.
  public static func bits(_ x: Float) -> UInt16 { bk_bf16_from_f32(x) }

  /// The fp32 value of a bf16 bit pattern (exact).
  public static func value(_ bits: UInt16) -> Float { bk_f32_from_bf16(bits) }

  /// `x` rounded to the nearest bf16, as fp32.
  public static func rounded(_ x: Float) -> Float { value(bits(x)) }

  /// Converts an array on this thread's instruction-set path, split across
  /// the thread team.
  public static func bits(_ xs: [Float]) -> [UInt16] {
    [UInt16](unsafeUninitializedCapacity: xs.count) { out, initialized in
      xs.withUnsafeBufferPointer { px in
        bk_bf16_from_f32_array(px.baseAddress, out.baseAddress, xs.count)
      }
      initialized = xs.count
    }
  }

  /// Rounds every element to the nearest bf16 on this thread's instruction-set path.
  public static func rounded(_ xs: [Float]) -> [Float] {
    var out = [Float](repeating: 0, count: xs.count)
    xs.withUnsafeBufferPointer { px in
      out.withUnsafeMutableBufferPointer { po in
        bk_round_bf16_array(px.baseAddress, po.baseAddress, xs.count)
      }
    }
    return out
  }
}

/// A tensor's values as bf16 bits (`BFloat16.bits` of each), half the bytes
/// of the fp32 tensor: what a bf16 convolution keeps of its input for the
/// backward, which reads nothing more of it.
public struct BFloat16Tensor: Sendable {
  /// Extent of each dimension, outermost first.
  public let shape: [Int]
  /// The bits, last dimension fastest.
  public let bits: [UInt16]

  /// `x` rounded to bf16.
  public init(rounding x: Tensor) {
    shape = x.shape
    bits = BFloat16.bits(x.storage)
  }
}
