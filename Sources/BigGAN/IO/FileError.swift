import Foundation

/// A file or folder operation that failed, as one line naming the path and
/// the operating system's reason ("runs/x/config.json: cannot write (No
/// space left on device)") instead of Foundation's error dump.
public struct FileError: Error, CustomStringConvertible, Equatable {
  public let description: String

  /// `path: cannot <action> (<reason of error>)`.
  public init(_ path: String, cannot action: String, _ error: any Error) {
    description = "\(path): cannot \(action) (\(Self.reason(error)))"
  }

  /// Runs `body`, turning what it throws into a `FileError` naming `path`.
  public static func wrapping<T>(_ path: String, cannot action: String, _ body: () throws -> T) throws(FileError) -> T {
    do { return try body() } catch let error as FileError { throw error } catch { throw FileError(path, cannot: action, error) }
  }

  /// Creates `folder` and its parents.
  public static func createFolder(_ folder: String) throws(FileError) {
    try wrapping(folder, cannot: "create this folder") {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }
  }

  /// Writes `data` to `path` atomically.
  public static func write(_ data: Data, to path: String) throws(FileError) {
    try wrapping(path, cannot: "write") { try data.write(to: URL(fileURLWithPath: path), options: .atomic) }
  }

  /// One line of why: the POSIX reason under a Foundation error, what a
  /// JSON document lacks, or the error's own one-line description.
  public static func reason(_ error: any Error) -> String {
    if let decoding = error as? DecodingError { return reason(decoding) }
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? any Error { return reason(underlying) }
    if let debug = ns.userInfo[NSDebugDescriptionErrorKey] as? String {
      return (ns.code == CocoaError.propertyListReadCorrupt.rawValue ? "not valid JSON: " : "") + oneLine(debug)
    }
    switch CocoaError.Code(rawValue: ns.code) {
    case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
    case .fileWriteFileExists: return String(cString: strerror(EEXIST))
    case .fileReadNoPermission, .fileWriteNoPermission: return String(cString: strerror(EACCES))
    case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
    case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
    default: return oneLine(ns.domain == NSCocoaErrorDomain ? ns.localizedDescription : "\(error)")
    }
  }

  private static func reason(_ error: DecodingError) -> String {
    func at(_ context: DecodingError.Context) -> String {
      context.codingPath.isEmpty ? "" : " at " + context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
    switch error {
    case .keyNotFound(let key, let context): return "no '\(key.stringValue)'\(at(context))"
    case .valueNotFound(let type, let context): return "no \(type) value\(at(context))"
    case .typeMismatch(let type, let context): return "expected \(type)\(at(context))"
    case .dataCorrupted(let context):
      let underlying = context.underlyingError.map { reason($0) }
      return oneLine(underlying ?? context.debugDescription) + at(context)
    @unknown default: return oneLine("\(error)")
    }
  }

  private static func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).joined(separator: " ")
  }
}
