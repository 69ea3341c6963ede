import Foundation

/// The validated header of a safetensors file: metadata, one entry per
/// tensor, and where the data section starts.
struct SafeTensorsHeader {
  var metadata: [String: String]
  var entries: [String: SafeTensorsFile.TensorInfo]
  /// 8 plus the header length.
  var dataStart: Int

  /// Parses and checks the header of the whole file `raw`; `file` names it in errors.
  init(parsing raw: UnsafeRawBufferPointer, file: String) throws(SafeTensorsError) {
    guard raw.count >= 8 else { throw .fileTooShort(file: file, size: raw.count) }
    let length = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
    guard length <= UInt64(SafeTensorsFile.maximumHeaderLength) else {
      throw .headerTooLarge(file: file, length: length, limit: SafeTensorsFile.maximumHeaderLength)
    }
    guard length <= UInt64(raw.count - 8) else {
      throw .headerBeyondFile(file: file, length: length, fileSize: raw.count)
    }
    dataStart = 8 + Int(length)
    let dataSize = raw.count - dataStart

    let object: Any
    do {
      object = try JSONSerialization.jsonObject(
        with: Data(raw[8..<dataStart]), options: [.fragmentsAllowed])
    } catch {
      let debug = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
      throw .headerNotJSON(file: file, reason: debug ?? error.localizedDescription)
    }
    guard let header = object as? [String: Any] else {
      throw .headerNotObject(file: file, found: jsonKind(object))
    }

    metadata = try Self.metadata(header["__metadata__"], file: file)
    entries = [:]
    for name in header.keys.sorted(by: codePointOrder) where name != "__metadata__" {
      entries[name] = try Self.entry(header[name]!, name: name, dataSize: dataSize, file: file)
    }

    // Empty tensors occupy no bytes and cannot overlap anything.
    let occupied = entries.filter { !$0.value.byteRange.isEmpty }.sorted {
      $0.value.byteRange.lowerBound != $1.value.byteRange.lowerBound
        ? $0.value.byteRange.lowerBound < $1.value.byteRange.lowerBound
        : codePointOrder($0.key, $1.key)
    }
    for (previous, next) in zip(occupied, occupied.dropFirst())
    where next.value.byteRange.lowerBound < previous.value.byteRange.upperBound {
      throw .overlappingTensors(file: file, tensor: next.key, other: previous.key)
    }
    // The format indexes the whole buffer without holes; a gap or a tail
    // means the header and the data disagree (e.g. a header length a few
    // bytes short, which would read every tensor shifted).
    var end = 0
    for (_, info) in occupied {
      guard info.byteRange.lowerBound == end else {
        throw .dataNotCovered(file: file, offset: info.byteRange.lowerBound, expected: end, dataSize: dataSize)
      }
      end = info.byteRange.upperBound
    }
    guard end == dataSize else { throw .dataNotCovered(file: file, offset: dataSize, expected: end, dataSize: dataSize) }
  }

  /// The `__metadata__` object as strings; empty when absent or null.
  private static func metadata(_ value: Any?, file: String) throws(SafeTensorsError)
    -> [String: String]
  {
    guard let value, !(value is NSNull) else { return [:] }
    guard let object = value as? [String: Any] else {
      throw .invalidMetadata(file: file, reason: "is JSON \(jsonKind(value)), expected an object")
    }
    var metadata: [String: String] = [:]
    for (key, item) in object {
      guard let text = item as? String else {
        throw .invalidMetadata(
          file: file,
          reason: "value of \(key.debugDescription) is JSON \(jsonKind(item)), expected a string")
      }
      metadata[key] = text
    }
    return metadata
  }

  /// One validated tensor entry.
  private static func entry(_ value: Any, name: String, dataSize: Int, file: String)
    throws(SafeTensorsError) -> SafeTensorsFile.TensorInfo
  {
    guard let entry = value as? [String: Any] else {
      throw .entryNotObject(file: file, tensor: name, found: jsonKind(value))
    }
    for field in ["dtype", "shape", "data_offsets"] where entry[field] == nil {
      throw .missingField(file: file, tensor: name, field: field)
    }

    guard let dtypeName = entry["dtype"] as? String else {
      throw .wrongFieldType(file: file, tensor: name, field: "dtype", expected: "a string")
    }
    guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
      throw .unknownDType(file: file, tensor: name, dtype: dtypeName)
    }

    guard let extents = entry["shape"] as? [Any] else {
      throw .wrongFieldType(
        file: file, tensor: name, field: "shape", expected: "an array of non-negative integers")
    }
    let shape = extents.compactMap(nonNegativeInteger)
    guard shape.count == extents.count else {
      throw .invalidShape(file: file, tensor: name, shape: jsonText(extents))
    }

    guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
      let begin = nonNegativeInteger(offsets[0]), let end = nonNegativeInteger(offsets[1])
    else {
      throw .wrongFieldType(
        file: file, tensor: name, field: "data_offsets",
        expected: "[begin, end] with non-negative integers")
    }
    guard begin <= end else {
      throw .offsetsReversed(file: file, tensor: name, begin: begin, end: end)
    }
    guard end <= dataSize else {
      throw .offsetsOutOfRange(file: file, tensor: name, begin: begin, end: end, dataSize: dataSize)
    }

    var count = 1
    for extent in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: extent)
      guard !overflow else { throw .tensorTooLarge(file: file, tensor: name, shape: shape) }
      count = product
    }
    let (bits, overflow) = count.multipliedReportingOverflow(by: dtype.bitWidth)
    guard !overflow else { throw .tensorTooLarge(file: file, tensor: name, shape: shape) }
    let expected = bits / 8 + (bits % 8 == 0 ? 0 : 1)
    guard end - begin == expected else {
      throw .byteCountMismatch(
        file: file, tensor: name, dtype: dtype, shape: shape, expected: expected,
        actual: end - begin)
    }
    return SafeTensorsFile.TensorInfo(dtype: dtype, shape: shape, byteRange: begin..<end)
  }
}

/// `value` when it is a JSON integer in `0...Int.max`: not a boolean, and
/// not written with a fraction or exponent (`2.0` is rejected, as serde does).
private func nonNegativeInteger(_ value: Any) -> Int? {
  guard let number = value as? NSNumber else { return nil }
  // Booleans report "c"; numbers written with "." or "e" report "d".
  guard let type = String(validatingCString: number.objCType), type.count == 1,
    "silqSILQ".contains(type),
    let integer = value as? Int, integer >= 0
  else { return nil }
  return integer
}

/// The kind of a parsed JSON value, for messages.
private func jsonKind(_ value: Any) -> String {
  switch value {
  case is NSNull: return "null"
  case is String: return "string"
  case is [Any]: return "array"
  case is [String: Any]: return "object"
  case let number as NSNumber:
    return String(validatingCString: number.objCType) == "c" ? "boolean" : "number"
  default: return "\(type(of: value))"
  }
}

/// Compact JSON text of a parsed value, for messages.
private func jsonText(_ value: Any) -> String {
  guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]),
    let text = String(data: data, encoding: .utf8)
  else { return "\(value)" }
  return text
}
