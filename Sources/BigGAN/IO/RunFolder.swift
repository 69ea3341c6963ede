import Foundation

/// Writes to standard error that never stop the program: a closed or full
/// stderr loses the text, nothing else (Foundation's `FileHandle.write`
/// traps on such errors).
public enum StandardError {
  public static func write(_ text: String) {
    _ = writeAll(STDERR_FILENO, Array(text.utf8))
  }
}

/// Writes all of `bytes` to `fd`; false on an error (the rest is dropped).
@discardableResult
func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
  var done = 0
  while done < bytes.count {
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
    if n < 0 && errno == EINTR { continue }
    guard n > 0 else { return false }
    done += n
  }
  return true
}

/// A run folder held by one process: an exclusive `flock` on
/// `FOLDER/.lock`, kept until the process ends, so two `train` processes on
/// one run cannot both write it.
public final class RunFolderLock {
  private let descriptor: Int32

  /// Takes the lock, or fails naming the process that holds it.
  public init(folder: String) throws {
    // Standard streams closed by the caller would hand their numbers to the
    // files opened next (metrics.jsonl as fd 2 takes the log lines).
    for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] where fcntl(fd, F_GETFD) < 0 {
      _ = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY)
    }
    try FileError.createFolder(folder)
    let path = (folder as NSString).appendingPathComponent(".lock")
    descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      throw CheckpointError(description: "\(path): cannot open the run's lock file (\(String(cString: strerror(errno))))")
    }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      var buffer = [UInt8](repeating: 0, count: 32)
      let n = read(descriptor, &buffer, buffer.count)
      let holder = String(decoding: buffer.prefix(max(0, n)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      close(descriptor)
      throw CheckpointError(description: "\(folder) is in use by another biggan-fast process\(holder.isEmpty ? "" : " (pid \(holder))"); wait for it to finish or pick another --run")
    }
    _ = ftruncate(descriptor, 0)
    _ = writeAll(descriptor, Array("\(getpid())\n".utf8))
  }

  deinit { close(descriptor) }
}

/// `metrics.jsonl`: one JSON object per line, appended with one write per
/// line (`O_APPEND`), so lines never tear. A failed write (full disk, a
/// device that refuses) loses that line and says so once; it never stops
/// training.
public final class MetricsFile {
  public let path: String
  private let descriptor: Int32
  private var warned = false

  /// Opens `path` for appending; with `through` (a resumed run's step),
  /// lines of later steps, logged after the checkpoint the run resumes
  /// from, are dropped first so no step appears twice.
  public init(path: String, through step: Int? = nil) throws {
    self.path = path
    if let step, let data = FileManager.default.contents(atPath: path) {
      let kept = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).filter { line in
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { return false }
        return ((object["step"] as? NSNumber)?.intValue ?? 0) <= step
      }
      var text = Data()
      for line in kept {
        text.append(contentsOf: line)
        text.append(UInt8(ascii: "\n"))
      }
      try FileError.write(text, to: path)
    }
    descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      throw CheckpointError(description: "\(path): cannot open for appending (\(String(cString: strerror(errno))))")
    }
  }

  deinit { close(descriptor) }

  /// Appends one object as one line.
  public func record(_ entry: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys]) else { return }
    if !writeAll(descriptor, Array(data) + [UInt8(ascii: "\n")]) && !warned {
      warned = true
      StandardError.write("warning: \(path): cannot append (\(String(cString: strerror(errno)))); metrics lines are being lost, training goes on\n")
    }
  }
}
