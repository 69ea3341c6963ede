import BGKernels
import Foundation

/// Builds a safetensors file from `Float` tensors (stored as F32) and
/// `Int64` arrays (stored as 1-D I64), readable by Python's
/// `safetensors.torch.load_file`.
///
/// The layout is deterministic:
/// - the header is compact JSON with every object's keys sorted by code
///   point (what Python's `json.dumps(header, sort_keys=True,
///   separators=(",", ":"), ensure_ascii=False)` prints), `__metadata__`
///   included only when there is metadata, padded with spaces so the data
///   section starts at a multiple of 8;
/// - the data is contiguous little-endian, I64 arrays first and then F32
///   tensors, each group in name order, so every element is aligned to its
///   size (like the official writer, which orders by alignment, then name).
///
/// ```swift
/// var writer = SafeTensorsWriter(metadata: ["step": "1000"])
/// writer.add("G.linear.weight", weight)
/// writer.add("labels", int64s: [1, 207, 933])
/// try writer.write(to: "checkpoint.safetensors")
/// ```
public struct SafeTensorsWriter: Sendable {
  /// One stored value.
  private enum Payload: Sendable {
    case float32(Tensor)
    case int64([Int64])

    var dtype: SafeTensorsDType { if case .float32 = self { .float32 } else { .int64 } }
    var shape: [Int] {
      switch self {
      case .float32(let tensor): tensor.shape
      case .int64(let values): [values.count]
      }
    }
    var byteCount: Int {
      switch self {
      case .float32(let tensor): 4 * tensor.count
      case .int64(let values): 8 * values.count
      }
    }
  }

  /// The `__metadata__` strings; none are written when empty.
  public var metadata: [String: String]
  private var items: [(name: String, payload: Payload)] = []

  /// An empty writer with `metadata`.
  public init(metadata: [String: String] = [:]) {
    self.metadata = metadata
  }

  /// A writer holding `tensors` and `int64s`.
  public init(
    tensors: [(name: String, tensor: Tensor)],
    int64s: [(name: String, values: [Int64])] = [],
    metadata: [String: String] = [:]
  ) {
    self.metadata = metadata
    for (name, tensor) in tensors { add(name, tensor) }
    for (name, values) in int64s { add(name, int64s: values) }
  }

  /// Adds `tensor` under `name`, to be stored as F32 with its shape.
  /// Names are checked (unique, not `__metadata__`) when writing.
  public mutating func add(_ name: String, _ tensor: Tensor) {
    items.append((name, .float32(tensor)))
  }

  /// Adds `values` under `name`, to be stored as a 1-D I64 tensor.
  /// Names are checked (unique, not `__metadata__`) when writing.
  public mutating func add(_ name: String, int64s values: [Int64]) {
    items.append((name, .int64(values)))
  }

  /// The complete file contents.
  /// - Throws: `SafeTensorsError.duplicateName` or `.reservedName`, naming the file `<memory>`.
  public func encoded() throws(SafeTensorsError) -> Data {
    var data = Data()
    try encode(file: "<memory>") { bytes in data.append(contentsOf: bytes) }
    return data
  }

  /// Writes the file at `path` atomically: into a temporary file in the same
  /// folder, flushed to disk, then renamed over `path`. A crash leaves
  /// either the old file or the complete new one.
  /// - Throws: `SafeTensorsError.duplicateName`, `.reservedName` or `.writeFailed`;
  ///   `path` is then unchanged and no temporary file remains.
  public func write(to path: String) throws(SafeTensorsError) {
    let order = try storageOrder(file: path)
    try AtomicFile.write(to: path) { (file) throws(SafeTensorsError) in
      try encode(order, file: path, into: file.write)
    }
  }

  /// Writes `tensors` (as F32) and `int64s` (as I64) with `metadata` to
  /// `path` atomically; see `write(to:)`.
  public static func write(
    _ tensors: [(name: String, tensor: Tensor)],
    int64s: [(name: String, values: [Int64])] = [],
    metadata: [String: String] = [:],
    to path: String
  ) throws(SafeTensorsError) {
    try SafeTensorsWriter(tensors: tensors, int64s: int64s, metadata: metadata).write(to: path)
  }

  // MARK: - Encoding

  private func encode(
    file: String, into sink: (UnsafeRawBufferPointer) throws(SafeTensorsError) -> Void
  ) throws(SafeTensorsError) {
    try encode(try storageOrder(file: file), file: file, into: sink)
  }

  /// The items in data order after checking their names.
  private func storageOrder(file: String) throws(SafeTensorsError)
    -> [(name: String, payload: Payload)]
  {
    var seen = Set<String>()
    for (name, _) in items {
      guard name != "__metadata__" else { throw .reservedName(file: file, tensor: name) }
      guard seen.insert(name).inserted else { throw .duplicateName(file: file, tensor: name) }
    }
    return items.sorted {
      $0.payload.dtype.bitWidth != $1.payload.dtype.bitWidth
        ? $0.payload.dtype.bitWidth > $1.payload.dtype.bitWidth
        : codePointOrder($0.name, $1.name)
    }
  }

  /// Streams the header and data of `order` to `sink`.
  private func encode(
    _ order: [(name: String, payload: Payload)], file: String,
    into sink: (UnsafeRawBufferPointer) throws(SafeTensorsError) -> Void
  ) throws(SafeTensorsError) {
    var entries: [(key: String, json: String)] = []
    if !metadata.isEmpty {
      let fields = metadata.sorted { codePointOrder($0.key, $1.key) }
        .map { "\(jsonString($0.key)):\(jsonString($0.value))" }
      entries.append(("__metadata__", "{\(fields.joined(separator: ","))}"))
    }
    var offset = 0
    for (name, payload) in order {
      let end = offset + payload.byteCount
      let dtype = payload.dtype.rawValue
      let shape = payload.shape.map(String.init).joined(separator: ",")
      let fields = #""data_offsets":[\#(offset),\#(end)],"dtype":"\#(dtype)","shape":[\#(shape)]"#
      entries.append((name, "{\(fields)}"))
      offset = end
    }
    entries.sort { codePointOrder($0.key, $1.key) }
    var header = Array(
      "{\(entries.map { "\(jsonString($0.key)):\($0.json)" }.joined(separator: ","))}".utf8)
    header += repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8)

    try send([UInt64(header.count).littleEndian], to: sink)
    try send(header, to: sink)
    for (_, payload) in order {
      switch payload {
      case .float32(let tensor):
        #if _endian(little)
          try send(tensor.storage, to: sink)
        #else
          try writeLittleEndian(tensor.storage.map(\.bitPattern), into: sink)
        #endif
      case .int64(let values):
        try writeLittleEndian(values, into: sink)
      }
    }
  }
}

/// Hands `values` to `sink` as little-endian bytes.
private func writeLittleEndian<T: FixedWidthInteger>(
  _ values: [T], into sink: (UnsafeRawBufferPointer) throws(SafeTensorsError) -> Void
) throws(SafeTensorsError) {
  #if _endian(little)
    try send(values, to: sink)
  #else
    try send(values.map(\.littleEndian), to: sink)
  #endif
}

/// Hands the memory of `values` to `sink`. (`Array.withUnsafeBytes` only
/// rethrows untyped errors, so the typed error travels in a `Result`.)
private func send<T>(
  _ values: [T], to sink: (UnsafeRawBufferPointer) throws(SafeTensorsError) -> Void
) throws(SafeTensorsError) {
  try values.withUnsafeBytes { bytes in
    Result { () throws(SafeTensorsError) in try sink(bytes) }
  }.get()
}

/// `text` as a JSON string literal, escaped as Python's `json.dumps` with
/// `ensure_ascii=False` escapes it.
private func jsonString(_ text: String) -> String {
  var out = "\""
  for scalar in text.unicodeScalars {
    switch scalar {
    case "\"": out += "\\\""
    case "\\": out += "\\\\"
    case "\n": out += "\\n"
    case "\r": out += "\\r"
    case "\t": out += "\\t"
    case "\u{08}": out += "\\b"
    case "\u{0C}": out += "\\f"
    case "\u{00}"..."\u{1F}":
      let hex = String(scalar.value, radix: 16)
      out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    default: out.unicodeScalars.append(scalar)
    }
  }
  return out + "\""
}
