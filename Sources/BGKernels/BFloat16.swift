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

  /// Converts an array on this thread's instruction-set path.
  public static func bits(_ xs: [Float]) -> [UInt16] {
    var out = [UInt16](repeating: 0, count: xs.count)
    xs.withUnsafeBufferPointer { px in
      out.withUnsafeMutableBufferPointer { po in
        bk_bf16_from_f32_array(px.baseAddress, po.baseAddress, xs.count)
      }
    }
    return out
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
