import BGKernels
import Foundation

/// A safetensors file read into memory and validated.
///
/// The format: an 8-byte little-endian header length `N`, `N` bytes of UTF-8
/// JSON mapping each tensor name to `{"dtype", "shape", "data_offsets"}`
/// (offsets relative to the data section that follows the header), an
/// optional `"__metadata__"` object of strings, then the raw little-endian
/// data. Opening checks the whole header, so a file that opens holds a
/// consistent set of tensors; hostile files fail with a `SafeTensorsError`
/// naming the problem.
///
/// ```swift
/// let file = try SafeTensorsFile(contentsOf: "biggan.safetensors")
/// let weight = try file.tensor("G.linear.weight", shape: [16384, 128])
/// ```
public struct SafeTensorsFile: Sendable {
  /// The name, type and place of one tensor.
  public struct TensorInfo: Equatable, Sendable {
    /// The element type.
    public let dtype: SafeTensorsDType
    /// Extent of each dimension, outermost first; `[]` for a scalar.
    public let shape: [Int]
    /// Where the bytes lie, relative to the start of the data section.
    public let byteRange: Range<Int>

    /// Number of elements: the product of `shape` (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
  }

  /// The largest header accepted (100 MiB); longer claims are treated as
  /// corruption rather than read.
  public static let maximumHeaderLength = 100 << 20

  /// The path the file was read from (or the name given to `init(data:name:)`),
  /// used in error messages.
  public let path: String
  /// The `__metadata__` strings, empty when the header has none.
  public let metadata: [String: String]
  /// Every tensor name, sorted by Unicode code point.
  public let names: [String]

  private let entries: [String: TensorInfo]
  /// The whole file.
  private let bytes: Data
  /// Offset of the data section in `bytes`: 8 plus the header length.
  private let dataStart: Int

  /// Reads and validates the file at `path`.
  /// - Throws: `SafeTensorsError` when the file is missing, unreadable or malformed.
  public init(contentsOf path: String) throws(SafeTensorsError) {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
      throw .fileNotFound(file: path)
    }
    guard !isFolder.boolValue else { throw .unreadable(file: path, reason: "is a folder") }
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw .unreadable(file: path, reason: FileError.reason(error))
    }
    try self.init(data: data, name: path)
  }

  /// Validates safetensors bytes already in memory; `name` stands for the
  /// file in error messages.
  /// - Throws: `SafeTensorsError` when the bytes are malformed.
  public init(data: Data, name: String = "<memory>") throws(SafeTensorsError) {
    // `Data.withUnsafeBytes` only rethrows untyped errors; carry them in a `Result`.
    let header = try data.withUnsafeBytes { raw in
      Result { () throws(SafeTensorsError) in try SafeTensorsHeader(parsing: raw, file: name) }
    }.get()
    self.path = name
    self.metadata = header.metadata
    self.entries = header.entries
    self.names = header.entries.keys.sorted(by: codePointOrder)
    self.bytes = data
    self.dataStart = header.dataStart
  }

  /// Whether the file holds a tensor called `name`.
  public func contains(_ name: String) -> Bool { entries[name] != nil }

  /// The dtype, shape and byte range of tensor `name`.
  /// - Throws: `SafeTensorsError.tensorNotFound` listing a few available names.
  public func info(_ name: String) throws(SafeTensorsError) -> TensorInfo {
    guard let info = entries[name] else {
      let suggestions = names.sorted {
        let (a, b) = (commonPrefixLength($0, name), commonPrefixLength($1, name))
        return a != b ? a > b : codePointOrder($0, $1)
      }
      throw .tensorNotFound(
        file: path, tensor: name, available: Array(suggestions.prefix(5)), total: names.count)
    }
    return info
  }

  /// Tensor `name` converted to `Float` (exactly from F32, F16 and BF16;
  /// rounded to nearest from F64).
  /// - Throws: `SafeTensorsError.tensorNotFound`, or `.notFloatingPoint` for
  ///   integer, boolean and 8-bit-or-smaller float dtypes.
  public func tensor(_ name: String) throws(SafeTensorsError) -> Tensor {
    let info = try info(name)
    guard info.dtype.convertsToFloat else {
      throw .notFloatingPoint(file: path, tensor: name, dtype: info.dtype)
    }
    let values = withBytes(of: info) { source -> [Float] in
      let count = info.count
      switch info.dtype {
      case .float32:
        #if _endian(little)
          return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            initialized = count
          }
        #else
          return (0..<count).map {
            Float(
              bitPattern: UInt32(
                littleEndian: source.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
          }
        #endif
      case .float16:
        return (0..<count).map {
          floatFromHalf(
            UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))
        }
      case .bfloat16:
        return (0..<count).map {
          let bits = UInt16(
            littleEndian: source.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))
          return Float(bitPattern: UInt32(bits) << 16)
        }
      case .float64:
        return (0..<count).map {
          Float(
            Double(
              bitPattern: UInt64(
                littleEndian: source.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))))
        }
      default:
        preconditionFailure("convertsToFloat admitted \(info.dtype)")
      }
    }
    // The header check guarantees non-negative extents whose product is `values.count`.
    return try! Tensor(shape: info.shape, storage: values)
  }

  /// Tensor `name` converted to `Float`, required to have exactly `shape`.
  /// - Throws: as `tensor(_:)`, and `SafeTensorsError.shapeMismatch` when
  ///   the stored shape differs.
  public func tensor(_ name: String, shape: [Int]) throws(SafeTensorsError) -> Tensor {
    let info = try info(name)
    guard info.shape == shape else {
      throw .shapeMismatch(file: path, tensor: name, expected: shape, actual: info.shape)
    }
    return try tensor(name)
  }

  /// The elements of integer tensor `name` (I64, I32, I16, I8, U32, U16 or
  /// U8) as `Int64`, flattened in row-major order; class labels, for example.
  /// - Throws: `SafeTensorsError.tensorNotFound`, or `.notInteger` for other dtypes.
  public func int64s(_ name: String) throws(SafeTensorsError) -> [Int64] {
    let info = try info(name)
    guard info.dtype.convertsToInt64 else {
      throw .notInteger(file: path, tensor: name, dtype: info.dtype)
    }
    return withBytes(of: info) { source -> [Int64] in
      let count = info.count
      func load<T: FixedWidthInteger>(_: T.Type) -> [Int64] {
        (0..<count).map {
          Int64(
            T(
              littleEndian: source.loadUnaligned(
                fromByteOffset: MemoryLayout<T>.size * $0, as: T.self)))
        }
      }
      switch info.dtype {
      case .int64: return load(Int64.self)
      case .int32: return load(Int32.self)
      case .int16: return load(Int16.self)
      case .int8: return load(Int8.self)
      case .uint32: return load(UInt32.self)
      case .uint16: return load(UInt16.self)
      case .uint8: return load(UInt8.self)
      default: preconditionFailure("convertsToInt64 admitted \(info.dtype)")
      }
    }
  }

  /// Calls `body` with the bytes of one tensor.
  private func withBytes<R>(of info: TensorInfo, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    bytes.withUnsafeBytes { raw in
      let start = dataStart + info.byteRange.lowerBound
      return body(UnsafeRawBufferPointer(rebasing: raw[start..<start + info.byteRange.count]))
    }
  }
}

/// Orders strings by Unicode code point (the same as by UTF-8 bytes), the
/// order of Python's `sorted` and of the writer's header keys.
func codePointOrder(_ a: String, _ b: String) -> Bool {
  a.utf8.lexicographicallyPrecedes(b.utf8)
}

/// Number of leading UTF-8 bytes `a` and `b` share.
private func commonPrefixLength(_ a: String, _ b: String) -> Int {
  zip(a.utf8, b.utf8).prefix { $0 == $1 }.count
}

/// The exact `Float` value of an IEEE half-precision bit pattern.
func floatFromHalf(_ bits: UInt16) -> Float {
  let sign: UInt32 = UInt32(bits & 0x8000) << 16
  let exponent = UInt32(bits >> 10) & 0x1F
  let mantissa = UInt32(bits & 0x3FF)
  switch exponent {
  case 0:  // zero or subnormal: mantissa * 2^-24, exact in Float
    let magnitude = Float(mantissa) * 0x1p-24
    return sign != 0 ? -magnitude : magnitude
  case 0x1F:  // infinity or NaN, payload kept
    return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
  default:  // rebias 15 -> 127
    return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
  }
}
