import Dispatch
import Foundation

/// Set when SIGINT or SIGTERM arrives, so a run can checkpoint and stop
/// instead of dying mid-step. Creating one replaces the signals' default
/// action (ending the process) for the rest of the process.
public final class StopRequest: @unchecked Sendable {
  private let lock = NSLock()
  private var flag = false
  private var sources: [DispatchSourceSignal] = []

  /// Also calls `action`, when given, as each signal arrives.
  public init(action: (@Sendable () -> Void)? = nil) {
    for sig in [SIGINT, SIGTERM] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      source.setEventHandler { [weak self] in
        self?.set()
        action?()
      }
      source.resume()
      sources.append(source)
    }
  }

  private func set() {
    lock.lock()
    flag = true
    lock.unlock()
  }

  /// Whether a signal has arrived.
  public var requested: Bool {
    lock.lock()
    defer { lock.unlock() }
    return flag
  }
}
