import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// A fresh empty folder for one test, removed when `body` returns.
@discardableResult
private func withTemporaryFolder<R>(_ body: (String) throws -> R) throws -> R {
  let folder = FileManager.default.temporaryDirectory
    .appendingPathComponent("SafeTensorsTests-\(UUID().uuidString)").path
  try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(atPath: folder) }
  return try body(folder)
}

/// A file of the given header length field, header text and data bytes.
private func safetensorsBytes(header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8]
{
  let json = Array(header.utf8)
  let length = length ?? UInt64(json.count)
  return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + json + data
}

/// Elements compared by bit pattern, so NaN payloads and -0 count.
private func bits(_ tensor: Tensor) -> [UInt32] { tensor.storage.map(\.bitPattern) }

@Suite("SafeTensors")
struct SafeTensorsTests {
  // MARK: - Writing and reading back

  @Test("tensors, integer arrays and metadata survive a write and a read")
  func roundTrip() throws {
    let special: [Float] = [
      0, -0.0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
    ]
    let tensors: [(name: String, tensor: Tensor)] = [
      ("scalar", Tensor(shape: [], repeating: 2.5)),
      ("zero.size", Tensor(shape: [0, 3])),
      ("odd", try Tensor(shape: [3, 1, 5], storage: (0..<15).map { Float($0) * 0.37 - 2 })),
      ("special", try Tensor(shape: [special.count], storage: special)),
      (
        "G.blocks.0.conv1.weight",
        try Tensor(shape: [2, 3, 1, 2], storage: (0..<12).map { 1 / Float($0 + 1) })
      ),
    ]
    let int64s: [(name: String, values: [Int64])] = [
      ("labels", [0, 207, 999, .min, .max]),
      ("no.labels", []),
    ]
    let metadata = [
      "format": "pt", "note": "quotes \" backslash \\ newline \n tab \t ünïcödé 🙂", "empty": "",
    ]

    try withTemporaryFolder { folder in
      let path = folder + "/model.safetensors"
      try SafeTensorsWriter.write(tensors, int64s: int64s, metadata: metadata, to: path)
      let file = try SafeTensorsFile(contentsOf: path)

      #expect(file.metadata == metadata)
      #expect(file.names == (tensors.map(\.name) + int64s.map(\.name)).sorted())
      for (name, tensor) in tensors {
        #expect(try file.info(name).dtype == .float32)
        #expect(try file.info(name).shape == tensor.shape)
        let read = try file.tensor(name, shape: tensor.shape)
        #expect(read.shape == tensor.shape)
        #expect(bits(read) == bits(tensor), "\(name)")
      }
      for (name, values) in int64s {
        #expect(try file.info(name).dtype == .int64)
        #expect(try file.info(name).shape == [values.count])
        #expect(try file.int64s(name) == values)
      }
    }
  }

  @Test("the in-memory encoding reads back like the file")
  func inMemory() throws {
    var writer = SafeTensorsWriter(metadata: ["k": "v"])
    writer.add("w", try Tensor(shape: [2, 2], storage: [1, 2, 3, 4]))
    writer.add("y", int64s: [5])
    let file = try SafeTensorsFile(data: writer.encoded())
    #expect(file.path == "<memory>")
    #expect(file.names == ["w", "y"])
    #expect(try file.tensor("w") == Tensor(shape: [2, 2], storage: [1, 2, 3, 4]))
    #expect(try file.int64s("y") == [5])
    #expect(file.contains("w") && !file.contains("x"))
  }

  @Test("the header is padded with spaces so the data section starts at a multiple of 8")
  func headerAlignment() throws {
    for nameLength in 1...16 {
      var writer = SafeTensorsWriter()
      writer.add(String(repeating: "n", count: nameLength), Tensor(shape: [3], repeating: 1))
      let bytes = [UInt8](try writer.encoded())
      let length = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
      #expect(length % 8 == 0)
      #expect(bytes.count == 8 + length + 12)
      let header = bytes[8..<8 + length]
      let closing = try #require(header.lastIndex(of: UInt8(ascii: "}")))
      #expect(header[(closing + 1)...].allSatisfy { $0 == UInt8(ascii: " ") })
      #expect(header.count - (closing + 1 - header.startIndex) < 8)
    }
  }

  @Test("a tiny file is laid out byte for byte as specified")
  func byteExactLayout() throws {
    var writer = SafeTensorsWriter(metadata: ["k": "v"])
    writer.add("b", try Tensor(shape: [2], storage: [1, -2]))
    writer.add("a", int64s: [3])
    // Keys sorted at every level; I64 data before F32 data; 133 bytes of
    // JSON padded with 3 spaces to 136 = 0x88.
    let header =
      #"{"__metadata__":{"k":"v"},"a":{"data_offsets":[0,8],"dtype":"I64","shape":[1]},"#
      + #""b":{"data_offsets":[8,16],"dtype":"F32","shape":[2]}}   "#
    let expected: [UInt8] =
      [0x88, 0, 0, 0, 0, 0, 0, 0]
      + Array(header.utf8)
      + [0x03, 0, 0, 0, 0, 0, 0, 0]  // a = [3] as I64
      + [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]  // b = [1, -2] as F32
    #expect(header.utf8.count == 0x88)
    #expect([UInt8](try writer.encoded()) == expected)
  }

  @Test("names are escaped in the header as JSON requires")
  func escapedNames() throws {
    let names = ["quote\"d", "back\\slash", "new\nline", "bell\u{07}", "ünï 🙂", "__metadata__x"]
    var writer = SafeTensorsWriter()
    for (i, name) in names.enumerated() {
      writer.add(name, Tensor(shape: [1], repeating: Float(i)))
    }
    let file = try SafeTensorsFile(data: writer.encoded())
    #expect(Set(file.names) == Set(names))
    for (i, name) in names.enumerated() { #expect(try file.tensor(name).storage == [Float(i)]) }
  }

  @Test("zero-size tensors occupy no bytes, so they overlap nothing")
  func emptyTensorsOverlapNothing() throws {
    let header =
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
      + #""e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#
    let file = try SafeTensorsFile(
      data: Data(safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: 8))))
    #expect(try file.tensor("e", shape: [0]).storage == [])
    #expect(try file.tensor("a").storage == [0, 0])
  }

  // MARK: - Atomic writes

  @Test("writing replaces an existing file and leaves no temporary file behind")
  func atomicReplace() throws {
    try withTemporaryFolder { folder in
      let path = folder + "/weights.safetensors"
      try SafeTensorsWriter.write([("old", Tensor(shape: [4], repeating: 1))], to: path)
      try SafeTensorsWriter.write([("new", Tensor(shape: [2], repeating: 7))], to: path)

      #expect(
        try FileManager.default.contentsOfDirectory(atPath: folder) == ["weights.safetensors"])
      let file = try SafeTensorsFile(contentsOf: path)
      #expect(file.names == ["new"])
      #expect(try file.tensor("new").storage == [7, 7])
    }
  }

  @Test("a failed write leaves the existing file as it was and no temporary file")
  func failedWriteKeepsOldFile() throws {
    try withTemporaryFolder { folder in
      let path = folder + "/weights.safetensors"
      try SafeTensorsWriter.write([("old", Tensor(shape: [4], repeating: 1))], to: path)
      let before = try Data(contentsOf: URL(fileURLWithPath: path))

      let twice: [(name: String, tensor: Tensor)] = [
        ("w", Tensor(shape: [1])), ("w", Tensor(shape: [2])),
      ]
      #expect(throws: SafeTensorsError.duplicateName(file: path, tensor: "w")) {
        try SafeTensorsWriter.write(twice, to: path)
      }
      #expect(throws: SafeTensorsError.reservedName(file: path, tensor: "__metadata__")) {
        try SafeTensorsWriter.write([], int64s: [("__metadata__", [1])], to: path)
      }
      #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
      #expect(
        try FileManager.default.contentsOfDirectory(atPath: folder) == ["weights.safetensors"])
    }
  }

  @Test("writing into a missing folder fails with writeFailed")
  func writeIntoMissingFolder() throws {
    try withTemporaryFolder { folder in
      let path = folder + "/missing/weights.safetensors"
      let error = #expect(throws: SafeTensorsError.self) {
        try SafeTensorsWriter.write([("w", Tensor(shape: [1]))], to: path)
      }
      guard case .writeFailed(let file, _) = error else {
        Issue.record("expected writeFailed, got \(String(describing: error))")
        return
      }
      #expect(file == path)
      #expect(!FileManager.default.fileExists(atPath: folder + "/missing"))
    }
  }

  // MARK: - Files written by Python

  /// Made by safetensors 0.8.0 with torch:
  /// ```python
  /// save_file({
  ///   "weight": torch.tensor([[1.0, -2.5, 3.25], [0.5, -0.0, 1e-3]], dtype=torch.float32),
  ///   "half": torch.tensor([1.0, -2.0, 65504.0, 6.103515625e-05, 5.960464477539063e-08],
  ///                        dtype=torch.float16),
  ///   "brain": torch.tensor([1.0, -3.140625, 256.0], dtype=torch.bfloat16),
  ///   "double": torch.tensor([0.1, -1e300], dtype=torch.float64),
  ///   "labels": torch.tensor([0, 207, 999], dtype=torch.int64),
  ///   "steps": torch.tensor([[-7], [2147483647]], dtype=torch.int32),
  ///   "scale": torch.tensor(0.75, dtype=torch.float32),
  ///   "empty": torch.zeros(0, 4, dtype=torch.float32),
  /// }, "python_written.safetensors", metadata={"format": "pt", "source": "safetensors 0.8.0"})
  /// ```
  @Test("a file written by Python's safetensors reads correctly")
  func pythonWritten() throws {
    let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    let file = try SafeTensorsFile(
      contentsOf: fixtures.appendingPathComponent("python_written.safetensors").path)

    #expect(file.metadata == ["format": "pt", "source": "safetensors 0.8.0"])
    #expect(
      file.names == ["brain", "double", "empty", "half", "labels", "scale", "steps", "weight"])
    #expect(try file.info("half").dtype == .float16)
    #expect(try file.info("brain").dtype == .bfloat16)
    #expect(try file.info("steps").shape == [2, 1])

    #expect(try file.tensor("weight", shape: [2, 3]).storage == [1, -2.5, 3.25, 0.5, -0.0, 1e-3])
    #expect(try file.tensor("weight").storage[4].sign == .minus)
    #expect(try file.tensor("half").storage == [1, -2, 65504, 0x1p-14, 0x1p-24])
    #expect(try file.tensor("brain").storage == [1, -3.140625, 256])
    #expect(try file.tensor("double").storage == [0.1, -.infinity])
    #expect(try file.tensor("scale", shape: []).storage == [0.75])
    #expect(try file.tensor("empty", shape: [0, 4]).storage == [])
    #expect(try file.int64s("labels") == [0, 207, 999])
    #expect(try file.int64s("steps") == [-7, 2_147_483_647])
  }

  #if !(os(macOS) && arch(x86_64))
    @Test("every F16 bit pattern converts exactly")
    func halfConversion() {
      for pattern in UInt16.min...UInt16.max {
        let expected = Float(Float16(bitPattern: pattern))
        let actual = floatFromHalf(pattern)
        #expect(
          actual.bitPattern == expected.bitPattern || (actual.isNaN && expected.isNaN),
          "0x\(String(pattern, radix: 16))")
      }
    }
  #endif

  // MARK: - Lookups

  /// Seven tensors, an integer one among them.
  private func lookupFile() throws -> SafeTensorsFile {
    var writer = SafeTensorsWriter()
    for name in ["G.a", "G.b", "G.blocks.0", "G.blocks.1", "D.x", "D.y"] {
      writer.add(name, Tensor(shape: [2, 3]))
    }
    writer.add("labels", int64s: [1, 2])
    return try SafeTensorsFile(data: writer.encoded(), name: "lookup.safetensors")
  }

  @Test("an unknown name lists the closest available names")
  func unknownName() throws {
    let file = try lookupFile()
    let expected = SafeTensorsError.tensorNotFound(
      file: "lookup.safetensors", tensor: "G.blocks.2",
      available: ["G.blocks.0", "G.blocks.1", "G.b", "G.a", "D.x"], total: 7)
    #expect(throws: expected) { try file.tensor("G.blocks.2") }
    #expect(throws: expected) { try file.info("G.blocks.2") }
    #expect(throws: expected) { try file.int64s("G.blocks.2") }
    #expect(
      expected.description == #"lookup.safetensors: no tensor "G.blocks.2"; available: "#
        + #""G.blocks.0", "G.blocks.1", "G.b", "G.a", "D.x", ... (7 in all)"#)
  }

  @Test("a shape other than the expected one is an error")
  func shapeMismatch() throws {
    let file = try lookupFile()
    #expect(
      throws: SafeTensorsError.shapeMismatch(
        file: "lookup.safetensors", tensor: "G.a", expected: [3, 2], actual: [2, 3])
    ) { try file.tensor("G.a", shape: [3, 2]) }
    #expect(try file.tensor("G.a", shape: [2, 3]).shape == [2, 3])
  }

  @Test("integers are not read as Float, nor floats as Int64")
  func dtypeKinds() throws {
    let file = try lookupFile()
    #expect(
      throws: SafeTensorsError.notFloatingPoint(
        file: "lookup.safetensors", tensor: "labels", dtype: .int64)
    ) {
      try file.tensor("labels")
    }
    #expect(
      throws: SafeTensorsError.notInteger(
        file: "lookup.safetensors", tensor: "G.a", dtype: .float32)
    ) {
      try file.int64s("G.a")
    }
  }

  // MARK: - Hostile files

  @Test("error messages are one line naming the file and the problem")
  func messages() {
    #expect(
      SafeTensorsError.headerBeyondFile(file: "model.safetensors", length: 999_999, fileSize: 120)
        .description
        == "model.safetensors: header length 999999 exceeds file size 120")
    #expect(
      SafeTensorsError.byteCountMismatch(
        file: "m.st", tensor: "w", dtype: .float32, shape: [3], expected: 12, actual: 8
      ).description == #"m.st: tensor "w" (F32 [3]) needs 12 bytes, data_offsets span 8"#)
    #expect(
      SafeTensorsError.overlappingTensors(file: "m.st", tensor: "evil\nname", other: "a")
        .description
        == #"m.st: tensor "evil\nname" overlaps tensor "a""#)
  }

  @Test("a missing file is fileNotFound")
  func missingFile() throws {
    try withTemporaryFolder { folder in
      let path = folder + "/absent.safetensors"
      #expect(throws: SafeTensorsError.fileNotFound(file: path)) {
        try SafeTensorsFile(contentsOf: path)
      }
    }
  }

  @Test("a folder is unreadable")
  func folderIsUnreadable() throws {
    try withTemporaryFolder { folder in
      #expect(throws: SafeTensorsError.unreadable(file: folder, reason: "is a folder")) {
        try SafeTensorsFile(contentsOf: folder)
      }
    }
  }

  @Test("each kind of malformed file fails with its own error", arguments: HostileCase.all)
  func hostile(_ hostile: HostileCase) throws {
    try withTemporaryFolder { folder in
      let path = folder + "/hostile.safetensors"
      try Data(hostile.bytes).write(to: URL(fileURLWithPath: path))
      let error = #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(contentsOf: path) }
      guard let error else { return }
      #expect(hostile.matches(error, path), "got \(error)")
      #expect(error.file == path)
      #expect(error.description.hasPrefix(path + ": "))
      #expect(!error.description.contains { $0.isNewline })
    }
  }
}

/// A malformed file and the error it must produce.
struct HostileCase: Sendable, CustomTestStringConvertible {
  let testDescription: String
  let bytes: [UInt8]
  /// Whether an error is the expected one for a file at the given path.
  let matches: @Sendable (SafeTensorsError, String) -> Bool

  /// A case expecting exactly `expected(path)`.
  init(
    _ description: String, _ bytes: [UInt8],
    _ expected: @escaping @Sendable (String) -> SafeTensorsError
  ) {
    self.testDescription = description
    self.bytes = bytes
    self.matches = { error, path in error == expected(path) }
  }

  /// A case expecting `headerNotJSON`, whatever the parser's reason.
  static func notJSON(_ description: String, _ bytes: [UInt8]) -> HostileCase {
    HostileCase(testDescription: description, bytes: bytes) { error, path in
      if case .headerNotJSON(path, _) = error { true } else { false }
    }
  }

  private init(
    testDescription: String, bytes: [UInt8],
    matches: @escaping @Sendable (SafeTensorsError, String) -> Bool
  ) {
    self.testDescription = testDescription
    self.bytes = bytes
    self.matches = matches
  }

  /// A header with one tensor entry `"t": {entry}` and `data` after it.
  static func entry(_ entry: String, data: Int = 0) -> [UInt8] {
    safetensorsBytes(header: #"{"t":{\#(entry)}}"#, data: [UInt8](repeating: 0, count: data))
  }

  static let all: [HostileCase] = [
    HostileCase("empty file", []) { .fileTooShort(file: $0, size: 0) },
    HostileCase("5-byte file", [1, 0, 0, 0, 0]) { .fileTooShort(file: $0, size: 5) },
    HostileCase(
      "header longer than the file",
      safetensorsBytes(header: "{}", data: Array(repeating: 0, count: 110), length: 999_999)
    ) {
      .headerBeyondFile(file: $0, length: 999_999, fileSize: 120)
    },
    HostileCase("header length 2^64 - 1", safetensorsBytes(header: "{}", length: .max)) {
      .headerTooLarge(file: $0, length: .max, limit: 100 << 20)
    },
    HostileCase(
      "header length just over 100 MiB", safetensorsBytes(header: "{}", length: 100 << 20 + 1)
    ) {
      .headerTooLarge(file: $0, length: 100 << 20 + 1, limit: 100 << 20)
    },
    .notJSON("empty header", safetensorsBytes(header: "")),
    .notJSON("truncated JSON", safetensorsBytes(header: #"{"t":"#)),
    .notJSON(
      "invalid UTF-8", safetensorsBytes(header: "{\"") + [0xFF, 0xFE] + Array("\":{}}".utf8)),
    .notJSON(
      "nesting 100000 deep", safetensorsBytes(header: String(repeating: "[", count: 100_000))),
    HostileCase("header is an array", safetensorsBytes(header: "[1, 2]")) {
      .headerNotObject(file: $0, found: "array")
    },
    HostileCase("header is a string", safetensorsBytes(header: #""hi""#)) {
      .headerNotObject(file: $0, found: "string")
    },
    HostileCase("header is null", safetensorsBytes(header: "null")) {
      .headerNotObject(file: $0, found: "null")
    },
    HostileCase("metadata is an array", safetensorsBytes(header: #"{"__metadata__":[1]}"#)) {
      .invalidMetadata(file: $0, reason: "is JSON array, expected an object")
    },
    HostileCase(
      "metadata value is a number", safetensorsBytes(header: #"{"__metadata__":{"k":1}}"#)
    ) {
      .invalidMetadata(file: $0, reason: #"value of "k" is JSON number, expected a string"#)
    },
    HostileCase("entry is an array", safetensorsBytes(header: #"{"t":[1]}"#)) {
      .entryNotObject(file: $0, tensor: "t", found: "array")
    },
    HostileCase("entry without dtype", entry(#""shape":[1],"data_offsets":[0,4]"#, data: 4)) {
      .missingField(file: $0, tensor: "t", field: "dtype")
    },
    HostileCase("entry without shape", entry(#""dtype":"F32","data_offsets":[0,4]"#, data: 4)) {
      .missingField(file: $0, tensor: "t", field: "shape")
    },
    HostileCase("entry without data_offsets", entry(#""dtype":"F32","shape":[1]"#, data: 4)) {
      .missingField(file: $0, tensor: "t", field: "data_offsets")
    },
    HostileCase(
      "dtype is a number", entry(#""dtype":32,"shape":[1],"data_offsets":[0,4]"#, data: 4)
    ) {
      .wrongFieldType(file: $0, tensor: "t", field: "dtype", expected: "a string")
    },
    HostileCase("unknown dtype", entry(#""dtype":"F31","shape":[1],"data_offsets":[0,4]"#, data: 4))
    {
      .unknownDType(file: $0, tensor: "t", dtype: "F31")
    },
    HostileCase(
      "shape is a string", entry(#""dtype":"F32","shape":"1","data_offsets":[0,4]"#, data: 4)
    ) {
      .wrongFieldType(
        file: $0, tensor: "t", field: "shape", expected: "an array of non-negative integers")
    },
    HostileCase(
      "negative extent", entry(#""dtype":"F32","shape":[2,-1],"data_offsets":[0,4]"#, data: 4)
    ) {
      .invalidShape(file: $0, tensor: "t", shape: "[2,-1]")
    },
    HostileCase(
      "fractional extent", entry(#""dtype":"F32","shape":[1.5],"data_offsets":[0,4]"#, data: 4)
    ) {
      .invalidShape(file: $0, tensor: "t", shape: "[1.5]")
    },
    HostileCase(
      "boolean extent", entry(#""dtype":"F32","shape":[true],"data_offsets":[0,4]"#, data: 4)
    ) {
      .invalidShape(file: $0, tensor: "t", shape: "[true]")
    },
    HostileCase(
      "element count overflows",
      entry(#""dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]"#, data: 4)
    ) {
      .tensorTooLarge(file: $0, tensor: "t", shape: [4_294_967_296, 4_294_967_296, 4])
    },
    HostileCase("one offset", entry(#""dtype":"F32","shape":[1],"data_offsets":[4]"#, data: 4)) {
      .wrongFieldType(
        file: $0, tensor: "t", field: "data_offsets",
        expected: "[begin, end] with non-negative integers")
    },
    HostileCase(
      "negative offset", entry(#""dtype":"F32","shape":[1],"data_offsets":[-4,0]"#, data: 4)
    ) {
      .wrongFieldType(
        file: $0, tensor: "t", field: "data_offsets",
        expected: "[begin, end] with non-negative integers")
    },
    HostileCase(
      "offset beyond Int64",
      entry(#""dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]"#, data: 4)
    ) {
      .wrongFieldType(
        file: $0, tensor: "t", field: "data_offsets",
        expected: "[begin, end] with non-negative integers")
    },
    HostileCase(
      "end before begin", entry(#""dtype":"F32","shape":[1],"data_offsets":[8,4]"#, data: 8)
    ) {
      .offsetsReversed(file: $0, tensor: "t", begin: 8, end: 4)
    },
    HostileCase(
      "end beyond the data", entry(#""dtype":"F32","shape":[100],"data_offsets":[0,400]"#, data: 8)
    ) {
      .offsetsOutOfRange(file: $0, tensor: "t", begin: 0, end: 400, dataSize: 8)
    },
    HostileCase(
      "byte count too small", entry(#""dtype":"F32","shape":[3],"data_offsets":[0,8]"#, data: 8)
    ) {
      .byteCountMismatch(
        file: $0, tensor: "t", dtype: .float32, shape: [3], expected: 12, actual: 8)
    },
    HostileCase(
      "byte count too large for a scalar",
      entry(#""dtype":"F64","shape":[],"data_offsets":[0,16]"#, data: 16)
    ) {
      .byteCountMismatch(file: $0, tensor: "t", dtype: .float64, shape: [], expected: 8, actual: 16)
    },
    HostileCase(
      "overlapping tensors",
      safetensorsBytes(
        header:
          #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        data: Array(repeating: 0, count: 12))
    ) { .overlappingTensors(file: $0, tensor: "b", other: "a") },
    HostileCase(
      "tensor name with a line break",
      safetensorsBytes(
        header:
          #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"evil\nname":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        data: Array(repeating: 0, count: 8))
    ) { .overlappingTensors(file: $0, tensor: "evil\nname", other: "a") },
  ]
}
