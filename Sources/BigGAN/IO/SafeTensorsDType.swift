/// An element type of a safetensors file, spelled as in the header
/// (`"F32"`, `"BF16"`, `"I64"`, ...).
public enum SafeTensorsDType: String, CaseIterable, Equatable, Sendable {
  /// 64-bit IEEE float.
  case float64 = "F64"
  /// 32-bit IEEE float.
  case float32 = "F32"
  /// 16-bit IEEE float.
  case float16 = "F16"
  /// bfloat16: the upper half of a 32-bit float.
  case bfloat16 = "BF16"
  /// 8-bit float, 5 exponent and 2 mantissa bits.
  case float8E5M2 = "F8_E5M2"
  /// 8-bit float, 5 exponent and 2 mantissa bits, finite, unsigned zero.
  case float8E5M2FNUZ = "F8_E5M2FNUZ"
  /// 8-bit float, 4 exponent and 3 mantissa bits.
  case float8E4M3 = "F8_E4M3"
  /// 8-bit float, 4 exponent and 3 mantissa bits, finite, unsigned zero.
  case float8E4M3FNUZ = "F8_E4M3FNUZ"
  /// 8-bit power-of-two scale (exponent only).
  case float8E8M0 = "F8_E8M0"
  /// 6-bit float, 2 exponent and 3 mantissa bits, packed.
  case float6E2M3 = "F6_E2M3"
  /// 6-bit float, 3 exponent and 2 mantissa bits, packed.
  case float6E3M2 = "F6_E3M2"
  /// 4-bit float, packed two to a byte.
  case float4 = "F4"
  /// Complex number of two 32-bit floats.
  case complex64 = "C64"
  /// Signed 64-bit integer.
  case int64 = "I64"
  /// Signed 32-bit integer.
  case int32 = "I32"
  /// Signed 16-bit integer.
  case int16 = "I16"
  /// Signed 8-bit integer.
  case int8 = "I8"
  /// Unsigned 64-bit integer.
  case uint64 = "U64"
  /// Unsigned 32-bit integer.
  case uint32 = "U32"
  /// Unsigned 16-bit integer.
  case uint16 = "U16"
  /// Unsigned 8-bit integer.
  case uint8 = "U8"
  /// Boolean, one byte each.
  case bool = "BOOL"

  /// Bits per element.
  public var bitWidth: Int {
    switch self {
    case .float64, .int64, .uint64, .complex64: return 64
    case .float32, .int32, .uint32: return 32
    case .float16, .bfloat16, .int16, .uint16: return 16
    case .float8E5M2, .float8E5M2FNUZ, .float8E4M3, .float8E4M3FNUZ, .float8E8M0,
      .int8, .uint8, .bool:
      return 8
    case .float6E2M3, .float6E3M2: return 6
    case .float4: return 4
    }
  }

  /// Whether `SafeTensorsFile.tensor(_:)` converts this type to `Float`:
  /// F64, F32, F16 and BF16.
  public var convertsToFloat: Bool {
    switch self {
    case .float64, .float32, .float16, .bfloat16: return true
    default: return false
    }
  }

  /// Whether `SafeTensorsFile.int64s(_:)` converts this type to `Int64`
  /// exactly: every signed integer type and the unsigned ones up to 32 bits.
  public var convertsToInt64: Bool {
    switch self {
    case .int64, .int32, .int16, .int8, .uint32, .uint16, .uint8: return true
    default: return false
    }
  }
}
