import BigGAN
import Foundation

/// A run folder read while `train` may be writing it: read-only, never
/// taking the run's lock, whole lines of metrics.jsonl only, and only the
/// files `train` itself names (no path from a request reaches the file
/// system unchecked).
struct RunWatch: Sendable {
  /// The run folder.
  let folder: String

  /// Bytes of metrics.jsonl one answer reads at most.
  static let maxMetricsBytes = 16 << 20
  /// Bytes of a sample sheet or config.json served at most.
  static let maxFileBytes = 64 << 20

  var metricsPath: String { (folder as NSString).appendingPathComponent("metrics.jsonl") }
  var samplesFolder: String { (folder as NSString).appendingPathComponent("samples") }

  /// The complete JSON-object lines of metrics.jsonl from byte `offset` on
  /// (at most `maxLines`, and `maxMetricsBytes` bytes), the offset to ask
  /// from next, and whether the file was shorter than `offset` (a new run
  /// in the folder: the lines are then read from the start). Lines that are
  /// not JSON objects (a torn write) are skipped.
  func metrics(from offset: Int, maxLines: Int) throws(StudioError) -> (json: String, offset: Int, reset: Bool, skipped: Int) {
    guard let handle = FileHandle(forReadingAtPath: metricsPath) else {
      if FileManager.default.fileExists(atPath: metricsPath) { throw .failed("\(metricsPath): cannot be opened for reading") }
      return ("[]", 0, offset > 0, 0)
    }
    defer { try? handle.close() }
    let size: UInt64
    do { size = try handle.seekToEnd() } catch { throw .failed("\(metricsPath): cannot read its size") }
    let reset = UInt64(offset) > size
    let start = reset ? 0 : UInt64(offset)
    let data: Data
    do {
      try handle.seek(toOffset: start)
      data = try handle.read(upToCount: Self.maxMetricsBytes) ?? Data()
    } catch { throw .failed("\(metricsPath): cannot be read") }
    var lines: [Substring] = [], skipped = 0, consumed = 0
    let bytes = [UInt8](data)
    var lineStart = 0
    for i in bytes.indices where bytes[i] == UInt8(ascii: "\n") {
      if lines.count == maxLines { break }
      let line = bytes[lineStart..<i]
      consumed = i + 1
      lineStart = i + 1
      if line.allSatisfy({ $0 == 32 || $0 == 13 }) { continue }
      if let object = try? JSONSerialization.jsonObject(with: Data(line)), object is [String: Any] {
        lines.append(Substring(decoding: line, as: UTF8.self))
      } else {
        skipped += 1
      }
    }
    return ("[" + lines.joined(separator: ",") + "]", Int(start) + consumed, reset, skipped)
  }

  /// The run's description for the Watch view, as JSON: name, config,
  /// checkpoint steps and sample sheets.
  func summary(name: String) -> [String: Any] {
    let fm = FileManager.default
    var config: Any = NSNull()
    let configPath = (folder as NSString).appendingPathComponent("config.json")
    if let data = try? Self.read(configPath, limit: 1 << 20), let object = try? JSONSerialization.jsonObject(with: data) {
      config = object
    }
    let steps = Checkpoint.all(in: (folder as NSString).appendingPathComponent("checkpoint"))
      .compactMap { Self.step(ofCheckpoint: $0) }.sorted()
    let files = ((try? fm.contentsOfDirectory(atPath: samplesFolder)) ?? []).sorted()
    let sheets: [[String: Any]] = files.compactMap { file in
      guard Self.isSheetName(file), let step = Self.step(ofCheckpoint: file.replacingOccurrences(of: ".png", with: "")) else { return nil }
      return ["step": step, "file": file]
    }
    return [
      "name": name, "config": config, "checkpoints": steps, "sheets": sheets,
      "real": files.contains("real.png") ? "real.png" : NSNull(),
    ]
  }

  /// A sample sheet's bytes. `name` must be one `train` writes
  /// (`step-NNNNNNNN.png` or `real.png`) and a regular file, not a link.
  func sheet(_ name: String) throws(StudioError) -> Data {
    guard Self.isSheetName(name) else {
      throw .notFound("no sample sheet '\(name.prefix(80))'; sheets are named step-NNNNNNNN.png or real.png")
    }
    let path = (samplesFolder as NSString).appendingPathComponent(name)
    var info = stat()
    guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw .notFound("no sample sheet \(name) in this run") }
    do { return try Self.read(path, limit: Self.maxFileBytes) } catch { throw .failed(error.description) }
  }

  /// Whether `name` is a sheet name `train` writes.
  static func isSheetName(_ name: String) -> Bool {
    if name == "real.png" { return true }
    let b = Array(name.utf8)
    return b.count == 17 && name.hasPrefix("step-") && name.hasSuffix(".png") && b[5..<13].allSatisfy { (48...57).contains($0) }
  }

  /// The step a checkpoint folder (or sheet) named `step-NNNNNNNN` holds.
  static func step(ofCheckpoint path: String) -> Int? {
    let name = (path as NSString).lastPathComponent
    guard name.hasPrefix("step-") else { return nil }
    return Int(name.dropFirst(5))
  }

  /// At most `limit` bytes of `path`, refused when it is longer.
  static func read(_ path: String, limit: Int) throws(StudioError) -> Data {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw .notFound("\(path): cannot be opened") }
    defer { try? handle.close() }
    let data: Data
    do { data = try handle.read(upToCount: limit + 1) ?? Data() } catch { throw .failed("\(path): cannot be read") }
    guard data.count <= limit else { throw .failed("\(path): larger than \(limit) bytes") }
    return data
  }
}
