import Foundation

/// A C-ordered NumPy array as `.npy` and `.npz` files hold it: float32,
/// float64 and int64 values keep their type, int32 is widened to int64.
public struct NumPyArray: Equatable, Sendable {
  /// The element values, in the file's precision.
  public enum Values: Equatable, Sendable {
    case float32([Float])
    case float64([Double])
    case int64([Int64])
  }

  /// The extents, outermost first (`[]` for a scalar).
  public var shape: [Int]
  /// The elements in C order.
  public var values: Values

  /// An array of `values` with `shape` (their counts must agree).
  public init(shape: [Int], values: Values) {
    self.shape = shape
    self.values = values
  }

  /// A float32 array.
  public init(shape: [Int], floats: [Float]) { self.init(shape: shape, values: .float32(floats)) }
  /// A float64 array.
  public init(shape: [Int], doubles: [Double]) { self.init(shape: shape, values: .float64(doubles)) }
  /// An int64 array.
  public init(shape: [Int], integers: [Int64]) { self.init(shape: shape, values: .int64(integers)) }

  /// The number of elements.
  public var count: Int {
    switch values {
    case .float32(let v): return v.count
    case .float64(let v): return v.count
    case .int64(let v): return v.count
    }
  }

  /// The elements as float64.
  public var doubles: [Double] {
    switch values {
    case .float32(let v): return v.map(Double.init)
    case .float64(let v): return v
    case .int64(let v): return v.map(Double.init)
    }
  }

  /// The elements as float32 (float64 values rounded).
  public var floats: [Float] {
    switch values {
    case .float32(let v): return v
    case .float64(let v): return v.map(Float.init)
    case .int64(let v): return v.map(Float.init)
    }
  }
}

/// NumPy `.npy` files (format 1.0 written; 1.0, 2.0 and 3.0 read):
/// little-endian float32/float64/int32/int64 arrays in C order.
public enum NPY {
  /// A file that is not an array this program can use; names the file.
  public struct Failure: Error, CustomStringConvertible, Equatable {
    public let description: String
  }

  /// Writes `values` with `shape` as float32, atomically.
  public static func write(_ values: [Float], shape: [Int], to path: String) throws(Failure) {
    try write(NumPyArray(shape: shape, floats: values), to: path)
  }

  /// Writes `array` in its own precision, atomically.
  public static func write(_ array: NumPyArray, to path: String) throws(Failure) {
    do { try FileError.write(Data(encode(array)), to: path) } catch { throw Failure(description: error.description) }
  }

  /// Reads an array as Double values with its shape.
  public static func read(_ path: String) throws(Failure) -> (values: [Double], shape: [Int]) {
    let array = try readArray(path)
    return (array.doubles, array.shape)
  }

  /// Reads an array in its own precision.
  public static func readArray(_ path: String) throws(Failure) -> NumPyArray {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw Failure(description: "\(path): cannot read the file")
    }
    return try decode([UInt8](data), name: path)
  }

  /// The `.npy` bytes of `array` (format 1.0, header padded to 64 bytes).
  public static func encode(_ array: NumPyArray) -> [UInt8] {
    let shape = array.shape
    let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    let descr: String
    switch array.values {
    case .float32: descr = "<f4"
    case .float64: descr = "<f8"
    case .int64: descr = "<i8"
    }
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    let length = UInt16(header.utf8.count)
    bytes += [UInt8(length & 0xff), UInt8(length >> 8)]
    bytes += Array(header.utf8)
    switch array.values {
    case .float32(let v): v.withUnsafeBytes { bytes += $0 }
    case .float64(let v): v.withUnsafeBytes { bytes += $0 }
    case .int64(let v): v.withUnsafeBytes { bytes += $0 }
    }
    return bytes
  }

  /// Parses `.npy` bytes; `name` is the file (or archive member) that
  /// error messages name.
  public static func decode(_ bytes: [UInt8], name: String) throws(Failure) -> NumPyArray {
    guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
      throw Failure(description: "\(name): not a .npy array (no \\x93NUMPY magic)")
    }
    let headerLength: Int, start: Int
    switch bytes[6] {
    case 1:
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
      start = 10
    case 2, 3:
      guard bytes.count >= 12 else { throw Failure(description: "\(name): truncated .npy header") }
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
      start = 12
    default:
      throw Failure(description: "\(name): .npy format version \(bytes[6]) is not supported; expected 1, 2 or 3")
    }
    guard headerLength <= bytes.count - start,
      let header = String(bytes: bytes[start..<start + headerLength], encoding: .utf8)
    else { throw Failure(description: "\(name): truncated .npy header") }
    func field(_ key: String) -> Substring? {
      guard let r = header.range(of: "'\(key)':") else { return nil }
      return header[r.upperBound...].drop(while: { $0 == " " })
    }
    guard let descrField = field("descr"), descrField.first == "'",
      let q = descrField.dropFirst().firstIndex(of: "'")
    else { throw Failure(description: "\(name): .npy header has no dtype") }
    let descr = String(descrField[descrField.index(after: descrField.startIndex)..<q])
    if let order = field("fortran_order"), order.hasPrefix("True") {
      throw Failure(description: "\(name): Fortran-ordered arrays are not supported; save with C order")
    }
    guard let shapeField = field("shape"), shapeField.first == "(",
      let close = shapeField.firstIndex(of: ")")
    else { throw Failure(description: "\(name): .npy header has no shape") }
    var shape: [Int] = []
    for part in shapeField[shapeField.index(after: shapeField.startIndex)..<close].split(separator: ",") {
      let text = part.trimmingCharacters(in: .whitespaces)
      if text.isEmpty { continue }
      guard let extent = Int(text.hasSuffix("L") ? String(text.dropLast()) : text), extent >= 0 else {
        throw Failure(description: "\(name): shape entry '\(text)' is not a non-negative integer")
      }
      shape.append(extent)
    }
    let width: Int
    switch descr {
    case "<f4", "<i4": width = 4
    case "<f8", "<i8": width = 8
    default:
      throw Failure(description: "\(name): dtype \(descr) is not supported (little-endian float32, float64, int32 or int64)")
    }
    var count = 1
    for extent in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: extent)
      guard !overflow, product <= Int(Int32.max) * 64 else {
        throw Failure(description: "\(name): shape \(shape) is too large")
      }
      count = product
    }
    let body = start + headerLength
    guard bytes.count - body == count * width else {
      throw Failure(description: "\(name): shape \(shape) needs \(count * width) bytes of data, the file has \(bytes.count - body)")
    }
    return bytes[body...].withUnsafeBytes { raw in
      switch descr {
      case "<f4":
        return NumPyArray(shape: shape, floats: (0..<count).map {
          Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
        })
      case "<f8":
        return NumPyArray(shape: shape, doubles: (0..<count).map {
          Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))
        })
      case "<i4":
        return NumPyArray(shape: shape, integers: (0..<count).map {
          Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)))
        })
      default:
        return NumPyArray(shape: shape, integers: (0..<count).map {
          Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))
        })
      }
    }
  }
}
