import CKernels

/// The arithmetic of every matrix product.
///
/// Encoded as its raw value (`"fp32"`, `"bf16"`) in recipes and reports.
///
/// - `fp32`: plain single precision.
/// - `bf16`: the bfloat16 dot product of TPU matrix units, AMX's
///   `tdpbf16ps` and AVX512_BF16's `vdpbf16ps`. Operands are rounded to
///   bfloat16 (round to nearest even) and the exact products accumulate in
///   fp32 in passes 128 deep, each in groups of 32 steps summed as one
///   `tdpbf16ps` sums them (the rules are in `CKernels.h`); everything
///   outside products stays fp32.
public enum Precision: String, CaseIterable, Codable, Sendable {
  case fp32
  case bf16

  var c: bk_precision { self == .fp32 ? BK_FP32 : BK_BF16 }
}
