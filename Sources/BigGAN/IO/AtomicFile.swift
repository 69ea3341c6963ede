import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Replaces a file so that readers, and the file after a crash, see either
/// the old contents or the complete new contents, never a mix.
///
/// The bytes go to a hidden temporary file in the same folder, which is
/// flushed to disk (`fsync`) and then renamed over the target; the folder is
/// flushed too so the rename itself survives a crash. On failure the
/// temporary file is removed and the target is untouched.
struct AtomicFile {
  private let descriptor: Int32
  private let target: String

  /// Writes the file at `path` with the bytes `body` hands to `write(_:)`.
  static func write(
    to path: String, _ body: (AtomicFile) throws(SafeTensorsError) -> Void
  ) throws(SafeTensorsError) {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    let temporary = "\(folder)/.\(url.lastPathComponent).tmp-\(UUID().uuidString)"

    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw failure(path, "cannot create \(temporary)") }
    var closed = false
    defer {
      if !closed {
        close(descriptor)
        unlink(temporary)
      }
    }
    try body(AtomicFile(descriptor: descriptor, target: path))
    guard fsync(descriptor) == 0 else { throw failure(path, "fsync of \(temporary)") }
    closed = true
    guard close(descriptor) == 0 else {
      let error = failure(path, "close of \(temporary)")
      unlink(temporary)
      throw error
    }
    guard rename(temporary, path) == 0 else {
      let error = failure(path, "rename of \(temporary)")
      unlink(temporary)
      throw error
    }
    // Make the rename durable; a failure here leaves a complete file in place.
    let folderDescriptor = open(folder, O_RDONLY | O_CLOEXEC)
    if folderDescriptor >= 0 {
      _ = fsync(folderDescriptor)
      close(folderDescriptor)
    }
  }

  /// Appends `bytes` to the temporary file.
  func write(_ bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) {
    guard var next = bytes.baseAddress else { return }
    var remaining = bytes.count
    while remaining > 0 {
      // Linux writes at most about 2 GiB per call; ask for 1 GiB at a time.
      let written = posixWrite(descriptor, next, min(remaining, 1 << 30))
      if written < 0 {
        if errno == EINTR { continue }
        throw Self.failure(target, "write")
      }
      next += written
      remaining -= written
    }
  }

  /// A `writeFailed` error for `step` with the current `errno`.
  private static func failure(_ path: String, _ step: String) -> SafeTensorsError {
    .writeFailed(file: path, reason: "\(step): \(String(cString: strerror(errno)))")
  }
}

/// POSIX `write(2)`, named apart from `AtomicFile.write(_:)`.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
  write(fd, buffer, count)
}
