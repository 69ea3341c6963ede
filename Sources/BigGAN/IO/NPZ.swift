import CZip
import Foundation

/// NumPy `.npz` archives (a zip of `.npy` members, as `np.savez` and
/// `np.savez_compressed` write them), through libzip: stored and deflated
/// members, zip64, checked CRCs.
public enum NPZ {
  /// Reads the arrays named in `names` (every member when `nil`), keyed by
  /// name without the `.npy` suffix. A name asked for and missing is an
  /// error naming the file and the members it has.
  public static func read(_ path: String, names: Set<String>? = nil) throws(NPY.Failure)
    -> [String: NumPyArray]
  {
    var error: Int32 = 0
    guard let archive = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &error) else {
      var e = zip_error_t()
      zip_error_init_with_code(&e, error)
      defer { zip_error_fini(&e) }
      throw NPY.Failure(description: "\(path): not a readable .npz archive (\(String(cString: zip_error_strerror(&e))))")
    }
    defer { zip_discard(archive) }
    var members: [String: UInt64] = [:]
    for index in 0..<UInt64(max(0, zip_get_num_entries(archive, 0))) {
      guard let raw = zip_get_name(archive, index, zip_flags_t(ZIP_FL_ENC_GUESS)) else { continue }
      let member = String(cString: raw)
      guard member.hasSuffix(".npy") else { continue }
      members[String(member.dropLast(4))] = index
    }
    var arrays: [String: NumPyArray] = [:]
    for name in names ?? Set(members.keys) {
      guard let index = members[name] else {
        throw NPY.Failure(
          description: "\(path): no array '\(name)'; the archive has \(members.keys.sorted().map { "'\($0)'" }.joined(separator: ", "))")
      }
      arrays[name] = try NPY.decode(readMember(archive, index, "\(path)[\(name)]"), name: "\(path)[\(name)]")
    }
    return arrays
  }

  /// Writes `arrays` as stored (uncompressed) members `NAME.npy`, in the
  /// given order, as `np.savez` does. libzip writes a temporary file and
  /// renames it over `path`, so a failure leaves any old file intact.
  public static func write(_ arrays: [(name: String, array: NumPyArray)], to path: String)
    throws(NPY.Failure)
  {
    var error: Int32 = 0
    guard let archive = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &error) else {
      throw NPY.Failure(description: "\(path): cannot create the archive (libzip error \(error))")
    }
    var failure: String?
    for entry in arrays where failure == nil {
      // libzip reads a source at zip_close and then free()s it (freep 1),
      // so each member's bytes go to malloc'd memory it owns.
      let bytes = NPY.encode(entry.array)
      guard let copy = malloc(max(bytes.count, 1)) else { failure = "out of memory"; break }
      bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
      guard let source = zip_source_buffer(archive, copy, UInt64(bytes.count), 1) else {
        free(copy)
        failure = String(cString: zip_strerror(archive))
        break
      }
      let index = zip_file_add(archive, entry.name + ".npy", source, zip_flags_t(ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE))
      if index < 0 { zip_source_free(source) }
      if index < 0 || zip_set_file_compression(archive, UInt64(index), ZIP_CM_STORE, 0) != 0 {
        failure = String(cString: zip_strerror(archive))
      }
    }
    if failure == nil {
      if zip_close(archive) == 0 { return }
      failure = String(cString: zip_strerror(archive))
    }
    zip_discard(archive)
    throw NPY.Failure(description: "\(path): cannot write the archive (\(failure ?? "unknown error"))")
  }

  /// The uncompressed bytes of member `index`, refusing sizes a hostile
  /// header could claim but the archive cannot hold.
  private static func readMember(_ archive: OpaquePointer, _ index: UInt64, _ name: String)
    throws(NPY.Failure) -> [UInt8]
  {
    var stat = zip_stat_t()
    zip_stat_init(&stat)
    guard zip_stat_index(archive, index, 0, &stat) == 0,
      stat.valid & UInt64(ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE) == UInt64(ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE)
    else { throw NPY.Failure(description: "\(name): unreadable archive entry") }
    // Deflate expands at most ~1032x; anything beyond is a forged size. An
    // array over 4 GiB (a million 1024-d features) is refused before it is
    // allocated.
    let limit = stat.comp_size.multipliedReportingOverflow(by: 1100)
    guard !limit.overflow, stat.size <= limit.partialValue + 4096 else {
      throw NPY.Failure(description: "\(name): entry claims \(stat.size) bytes from \(stat.comp_size) compressed; the archive is damaged")
    }
    guard stat.size <= UInt64(1) << 32 else {
      throw NPY.Failure(description: "\(name): entry holds \(stat.size) bytes; arrays over 4 GiB are not read")
    }
    guard let file = zip_fopen_index(archive, index, 0) else {
      throw NPY.Failure(description: "\(name): cannot open the entry (\(String(cString: zip_strerror(archive))))")
    }
    defer { zip_fclose(file) }
    var bytes = [UInt8](repeating: 0, count: Int(stat.size))
    var filled = 0
    while filled < bytes.count {
      let got = bytes.withUnsafeMutableBytes { zip_fread(file, $0.baseAddress! + filled, UInt64($0.count - filled)) }
      guard got > 0 else {
        throw NPY.Failure(description: "\(name): entry is damaged or truncated (\(String(cString: zip_file_strerror(file))))")
      }
      filled += Int(got)
    }
    return bytes
  }
}
