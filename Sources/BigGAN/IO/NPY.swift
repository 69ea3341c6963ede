import Foundation

/// NumPy `.npy` files (format 1.0): little-endian float32/float64/int32/int64
/// arrays in C order.
public enum NPY {
  /// A file that is not an array this program can use; names the file.
  public struct Failure: Error, CustomStringConvertible, Equatable {
    public let description: String
  }

  /// Writes `values` with `shape` as float32, atomically.
  public static func write(_ values: [Float], shape: [Int], to path: String) throws(Failure) {
    let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
    let length = UInt16(header.utf8.count)
    data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
    data.append(contentsOf: Array(header.utf8))
    values.withUnsafeBytes { data.append(contentsOf: $0) }
    do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
      throw Failure(description: "\(path): cannot write (\(error.localizedDescription))")
    }
  }

  /// Reads an array as Double values with its shape.
  public static func read(_ path: String) throws(Failure) -> (values: [Double], shape: [Int]) {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw Failure(description: "\(path): cannot read the file")
    }
    let bytes = [UInt8](data)
    guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
      throw Failure(description: "\(path): not a .npy file")
    }
    let major = bytes[6]
    let headerLength: Int, start: Int
    if major == 1 {
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
      start = 10
    } else if bytes.count >= 12 {
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
      start = 12
    } else {
      throw Failure(description: "\(path): truncated header")
    }
    guard start + headerLength <= bytes.count,
      let header = String(bytes: bytes[start..<start + headerLength], encoding: .ascii)
    else { throw Failure(description: "\(path): truncated header") }
    func field(_ key: String) -> String? {
      guard let r = header.range(of: "'\(key)':") else { return nil }
      return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
    }
    guard let descrField = field("descr"), let q = descrField.dropFirst().firstIndex(of: "'") else {
      throw Failure(description: "\(path): header has no dtype")
    }
    let descr = String(descrField[descrField.index(after: descrField.startIndex)..<q])
    if let order = field("fortran_order"), order.hasPrefix("True") {
      throw Failure(description: "\(path): Fortran-ordered arrays are not supported; save with C order")
    }
    guard let shapeField = field("shape"), let open = shapeField.firstIndex(of: "("),
      let close = shapeField.firstIndex(of: ")")
    else { throw Failure(description: "\(path): header has no shape") }
    let shape = shapeField[shapeField.index(after: open)..<close].split(separator: ",")
      .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    let count = shape.reduce(1, *)
    let width: Int
    switch descr {
    case "<f4", "<i4": width = 4
    case "<f8", "<i8": width = 8
    default: throw Failure(description: "\(path): dtype \(descr) is not supported (float32, float64, int32 or int64)")
    }
    let body = start + headerLength
    guard bytes.count - body == count * width else {
      throw Failure(description: "\(path): shape \(shape) needs \(count * width) bytes of data, the file has \(bytes.count - body)")
    }
    var values = [Double](repeating: 0, count: count)
    bytes[body...].withUnsafeBytes { raw in
      for i in 0..<count {
        switch descr {
        case "<f4": values[i] = Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian))
        case "<f8": values[i] = Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)
        case "<i4": values[i] = Double(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
        default: values[i] = Double(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
        }
      }
    }
    return (values, shape)
  }
}
