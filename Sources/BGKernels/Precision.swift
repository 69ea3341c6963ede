import CKernels

/// The arithmetic of every matrix product.
///
/// Encoded as its raw value (`"fp32"`, `"bf16"`) in recipes and reports.
///
/// - `fp32`: plain single precision.
/// - `bf16`: TPU matrix-unit emulation. Operands are rounded to bfloat16
///   (round to nearest even) and products accumulate in fp32 in passes
///   128 deep; everything outside products stays fp32.
public enum Precision: String, CaseIterable, Codable, Sendable {
  case fp32
  case bf16

  var c: bk_precision { self == .fp32 ? BK_FP32 : BK_BF16 }
}
