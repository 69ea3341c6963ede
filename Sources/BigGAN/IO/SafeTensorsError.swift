/// Why a safetensors file could not be read or written.
///
/// Every case names the file (the path as the caller gave it) and its
/// `description` is a single line such as
/// `model.safetensors: header length 999999 exceeds file size 120`.
/// Tensor names are quoted and escaped so a hostile name cannot break the line.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
  // MARK: Opening

  /// Nothing exists at the path.
  case fileNotFound(file: String)
  /// The path exists but cannot be read (a folder, no permission, I/O error).
  case unreadable(file: String, reason: String)
  /// Fewer than the 8 bytes of the header length.
  case fileTooShort(file: String, size: Int)
  /// The header length is above the sanity limit (`SafeTensorsFile.maximumHeaderLength`).
  case headerTooLarge(file: String, length: UInt64, limit: Int)
  /// The header length runs past the end of the file.
  case headerBeyondFile(file: String, length: UInt64, fileSize: Int)

  // MARK: Header

  /// The header is not valid UTF-8 JSON.
  case headerNotJSON(file: String, reason: String)
  /// The header is valid JSON but not an object (`found` names what it is).
  case headerNotObject(file: String, found: String)
  /// `__metadata__` is not an object mapping strings to strings.
  case invalidMetadata(file: String, reason: String)
  /// A tensor entry is not a JSON object (`found` names what it is).
  case entryNotObject(file: String, tensor: String, found: String)
  /// A tensor entry lacks `dtype`, `shape` or `data_offsets`.
  case missingField(file: String, tensor: String, field: String)
  /// A tensor entry, or one of its fields, has the wrong JSON type.
  case wrongFieldType(file: String, tensor: String, field: String, expected: String)
  /// A dtype this reader does not know.
  case unknownDType(file: String, tensor: String, dtype: String)
  /// A shape with a negative or non-integer extent (`shape` is its JSON text).
  case invalidShape(file: String, tensor: String, shape: String)
  /// A shape whose element or byte count does not fit in an `Int`.
  case tensorTooLarge(file: String, tensor: String, shape: [Int])
  /// `data_offsets` with `end < begin`.
  case offsetsReversed(file: String, tensor: String, begin: Int, end: Int)
  /// `data_offsets` ending past the data section.
  case offsetsOutOfRange(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
  /// The bytes of `tensor` overlap those of `other`.
  case overlappingTensors(file: String, tensor: String, other: String)
  /// The tensors do not tile the data section: bytes `offset` on are not
  /// where the header says the next tensor (or the end) is. A header
  /// length a few bytes off shows up here.
  case dataNotCovered(file: String, offset: Int, expected: Int, dataSize: Int)
  /// The byte range does not hold `product(shape)` elements of the dtype.
  case byteCountMismatch(
    file: String, tensor: String, dtype: SafeTensorsDType, shape: [Int], expected: Int, actual: Int)

  // MARK: Lookup

  /// No tensor of that name; `available` holds a few names, the closest
  /// first, out of `total`.
  case tensorNotFound(file: String, tensor: String, available: [String], total: Int)
  /// The tensor's shape is not the one the caller required.
  case shapeMismatch(file: String, tensor: String, expected: [Int], actual: [Int])
  /// `tensor(_:)` was asked for a dtype it does not convert to `Float`.
  case notFloatingPoint(file: String, tensor: String, dtype: SafeTensorsDType)
  /// `int64s(_:)` was asked for a dtype it does not convert to `Int64`.
  case notInteger(file: String, tensor: String, dtype: SafeTensorsDType)

  // MARK: Writing

  /// Two tensors given to the writer share a name.
  case duplicateName(file: String, tensor: String)
  /// A tensor named `__metadata__`, which the format reserves.
  case reservedName(file: String, tensor: String)
  /// The file system refused a step of the atomic write.
  case writeFailed(file: String, reason: String)

  /// The file the error is about.
  public var file: String {
    switch self {
    case .fileNotFound(let file), .unreadable(let file, _), .fileTooShort(let file, _),
      .headerTooLarge(let file, _, _), .headerBeyondFile(let file, _, _),
      .headerNotJSON(let file, _), .headerNotObject(let file, _), .invalidMetadata(let file, _),
      .entryNotObject(let file, _, _), .missingField(let file, _, _),
      .wrongFieldType(let file, _, _, _),
      .unknownDType(let file, _, _), .invalidShape(let file, _, _),
      .tensorTooLarge(let file, _, _), .offsetsReversed(let file, _, _, _),
      .offsetsOutOfRange(let file, _, _, _, _), .overlappingTensors(let file, _, _),
      .dataNotCovered(let file, _, _, _),
      .byteCountMismatch(let file, _, _, _, _, _), .tensorNotFound(let file, _, _, _),
      .shapeMismatch(let file, _, _, _), .notFloatingPoint(let file, _, _),
      .notInteger(let file, _, _), .duplicateName(let file, _), .reservedName(let file, _),
      .writeFailed(let file, _):
      return file
    }
  }

  /// One line: the file, a colon, and the problem.
  public var description: String { "\(oneLine(file)): \(problem)" }

  /// The message without the file name.
  private var problem: String {
    switch self {
    case .fileNotFound:
      return "no such file"
    case .unreadable(_, let reason):
      return "cannot read: \(oneLine(reason))"
    case .fileTooShort(_, let size):
      return "file is \(size) bytes, shorter than the 8-byte header length"
    case .headerTooLarge(_, let length, let limit):
      return "header length \(length) exceeds the limit of \(limit) bytes"
    case .headerBeyondFile(_, let length, let fileSize):
      return "header length \(length) exceeds file size \(fileSize)"
    case .headerNotJSON(_, let reason):
      return "header is not valid JSON: \(oneLine(reason))"
    case .headerNotObject(_, let found):
      return "header is JSON \(found), expected an object"
    case .invalidMetadata(_, let reason):
      return "__metadata__ \(oneLine(reason))"
    case .entryNotObject(_, let tensor, let found):
      return "tensor \(quoted(tensor)) is JSON \(found), expected an object"
    case .missingField(_, let tensor, let field):
      return "tensor \(quoted(tensor)) has no \"\(field)\""
    case .wrongFieldType(_, let tensor, let field, let expected):
      return "tensor \(quoted(tensor)): \"\(field)\" must be \(expected)"
    case .unknownDType(_, let tensor, let dtype):
      return "tensor \(quoted(tensor)) has unknown dtype \(quoted(dtype))"
    case .invalidShape(_, let tensor, let shape):
      return "tensor \(quoted(tensor)) has shape \(oneLine(shape)); "
        + "extents must be non-negative integers"
    case .tensorTooLarge(_, let tensor, let shape):
      return "tensor \(quoted(tensor)) of shape \(shape) is too large to address"
    case .offsetsReversed(_, let tensor, let begin, let end):
      return "tensor \(quoted(tensor)) has data_offsets [\(begin), \(end)] with end before begin"
    case .offsetsOutOfRange(_, let tensor, let begin, let end, let dataSize):
      return "tensor \(quoted(tensor)) has data_offsets [\(begin), \(end)] "
        + "beyond the \(dataSize)-byte data section"
    case .overlappingTensors(_, let tensor, let other):
      return "tensor \(quoted(tensor)) overlaps tensor \(quoted(other))"
    case .dataNotCovered(_, let offset, let expected, let dataSize):
      return "the tensors do not cover the \(dataSize)-byte data section without gaps: a tensor or the end was expected at byte \(expected), found \(offset) (damaged header or file?)"
    case .byteCountMismatch(_, let tensor, let dtype, let shape, let expected, let actual):
      return "tensor \(quoted(tensor)) (\(dtype.rawValue) \(shape)) needs \(expected) bytes, "
        + "data_offsets span \(actual)"
    case .tensorNotFound(_, let tensor, let available, let total):
      guard total > 0 else { return "no tensor \(quoted(tensor)); the file holds no tensors" }
      let listed = available.map(quoted).joined(separator: ", ")
      let more = total > available.count ? ", ... (\(total) in all)" : ""
      return "no tensor \(quoted(tensor)); available: \(listed)\(more)"
    case .shapeMismatch(_, let tensor, let expected, let actual):
      return "tensor \(quoted(tensor)) has shape \(actual), expected \(expected)"
    case .notFloatingPoint(_, let tensor, let dtype):
      return "tensor \(quoted(tensor)) has dtype \(dtype.rawValue); "
        + "only F32, F16, BF16 and F64 convert to Float (use int64s for integers)"
    case .notInteger(_, let tensor, let dtype):
      return "tensor \(quoted(tensor)) has dtype \(dtype.rawValue); "
        + "only I64, I32, I16, I8, U32, U16 and U8 convert to Int64"
    case .duplicateName(_, let tensor):
      return "tensor name \(quoted(tensor)) given twice"
    case .reservedName(_, let tensor):
      return "tensor name \(quoted(tensor)) is reserved for metadata"
    case .writeFailed(_, let reason):
      return "cannot write: \(oneLine(reason))"
    }
  }
}

/// `text` in double quotes with quotes, backslashes and control characters escaped.
private func quoted(_ text: String) -> String { text.debugDescription }

/// `text` with line breaks escaped so a message stays on one line.
private func oneLine(_ text: String) -> String {
  text.contains(where: \.isNewline)
    ? String(text.debugDescription.dropFirst().dropLast()) : text
}
