import Foundation

/// The machine's memory, and the check that refuses a job that cannot fit
/// in it before anything is allocated: an allocation that fails aborts the
/// process, so the only clean refusal is an early one.
public enum MemoryBudget {
  /// A job that would need more memory than the machine has.
  public struct Exceeded: Error, CustomStringConvertible, Equatable {
    public let description: String
  }

  /// The machine's physical memory in bytes.
  public static var physicalBytes: Double {
    Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
  }

  /// Throws unless `bytes` fit in the machine's memory; the message names
  /// `subject` (e.g. "--batch 100000000") and `job` (e.g. "a training
  /// step").
  public static func require(_ bytes: Double, for subject: String, _ job: String) throws(Exceeded) {
    let available = physicalBytes
    guard bytes.isFinite, bytes <= available else {
      throw Exceeded(description: "\(subject): \(job) would need about \(format(bytes)); this machine has \(format(available))")
    }
  }

  /// `bytes` in binary units with one decimal ("3.1 TiB").
  public static func format(_ bytes: Double) -> String {
    guard bytes.isFinite else { return "more than any machine has" }
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    var value = bytes, unit = 0
    while value >= 1024 && unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    return unit == 0 ? "\(Int(value)) bytes" : String(format: "%.1f %@", value, units[unit])
  }
}
