import BGKernels
import Foundation

/// A one-line progress report on standard error (`done/total unit, rate,
/// ETA`), redrawn in place; silent when standard error is not a terminal.
public struct ProgressLine {
  public let total: Int
  public let unit: String
  private let started = ContinuousClock.now
  private let terminal = isatty(STDERR_FILENO) != 0

  public init(total: Int, unit: String) {
    self.total = total
    self.unit = unit
  }

  /// Redraws the line for `done` of `total`.
  public func update(_ done: Int) {
    guard terminal else { return }
    let seconds = (ContinuousClock.now - started).seconds
    let rate = Double(done) / max(seconds, 1e-9)
    let line = String(format: "\r%d/%d %@  %.2f %@/s  ETA %.0f s ", done, total, unit, rate, unit, Double(total - done) / max(rate, 1e-9))
    StandardError.write(line)
  }

  /// Ends the line.
  public func finish() {
    if terminal { StandardError.write("\n") }
  }
}
