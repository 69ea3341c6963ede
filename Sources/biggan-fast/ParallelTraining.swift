import ArgumentParser
import BigGAN
import Foundation

/// Trains several runs at once, each in its own `biggan-fast train` process
/// (this executable), at most `jobs` at a time: an experiment's arms are
/// independent, and on a machine with several cores one single-threaded run
/// per core gets through them faster than one multi-threaded run after
/// another. Each process writes its progress to `<runs>/<name>.log`. SIGINT
/// or SIGTERM reaches every running process (each checkpoints and stops)
/// and no further one starts, so the same command resumes the experiment.
final class ParallelTraining: @unchecked Sendable {
  /// One run to train: its name, what it is (one line), the `train`
  /// arguments that make it and its log.
  struct Job {
    var name: String
    var description: String
    var arguments: [String]
    var log: String
  }

  private let lock = NSLock()
  private var running: [Process] = []
  private var failures: [String] = []
  private var stopped = false

  /// Runs `jobs` up to `width` at a time and returns when all have ended;
  /// throws naming every run that failed, or when a signal stopped them.
  func run(_ jobs: [Job], width: Int) throws {
    guard !jobs.isEmpty else { return }
    let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    let stop = StopRequest { self.terminateAll() }
    let slots = DispatchSemaphore(value: width)
    let group = DispatchGroup()
    for job in jobs {
      slots.wait()
      if stop.requested { slots.signal(); break }
      do {
        try launch(job, executable: executable, slots: slots, group: group)
      } catch {
        record("\(job.name): could not start training (\(FileError.reason(error)))")
        slots.signal()
      }
    }
    group.wait()
    withExtendedLifetime(stop) {}
    if isStopped {
      StandardError.write("stopped by signal; run the same command again to resume\n")
      throw ExitCode(130)
    }
    lock.lock()
    let failed = failures
    lock.unlock()
    guard failed.isEmpty else { throw ParallelTrainingFailed(failed) }
  }

  private func launch(_ job: Job, executable: URL, slots: DispatchSemaphore, group: DispatchGroup) throws {
    if !FileManager.default.fileExists(atPath: job.log) { try FileError.write(Data(), to: job.log) }
    let log = try FileError.wrapping(job.log, cannot: "open for appending") {
      let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: job.log))
      try handle.seekToEnd()
      return handle
    }
    let process = Process()
    process.executableURL = executable
    process.arguments = ["train"] + job.arguments
    process.standardOutput = log
    process.standardError = log
    process.standardInput = FileHandle.nullDevice
    group.enter()
    process.terminationHandler = { p in
      try? log.close()
      self.finished(p, job)
      slots.signal()
      group.leave()
    }
    lock.lock()
    running.append(process)
    lock.unlock()
    StandardError.write("\(job.description) in its own process (log: \(job.log))\n")
    do {
      try process.run()
    } catch {
      lock.lock()
      running.removeAll { $0 === process }
      lock.unlock()
      group.leave()
      throw error
    }
  }

  private func finished(_ process: Process, _ job: Job) {
    lock.lock()
    running.removeAll { $0 === process }
    lock.unlock()
    if process.terminationStatus == 0 && process.terminationReason == .exit {
      StandardError.write("\(job.name): trained\n")
      return
    }
    let last = (try? String(contentsOfFile: job.log, encoding: .utf8))?
      .split(separator: "\n").last.map(String.init) ?? ""
    record("\(job.name): training ended with status \(process.terminationStatus) (\(job.log): \(last))")
  }

  private func record(_ failure: String) {
    lock.lock()
    failures.append(failure)
    lock.unlock()
  }

  private var isStopped: Bool {
    lock.lock()
    defer { lock.unlock() }
    return stopped
  }

  private func terminateAll() {
    lock.lock()
    stopped = true
    let processes = running
    lock.unlock()
    for p in processes where p.isRunning { p.terminate() }
  }
}

/// Runs of an experiment whose training failed, one line each.
struct ParallelTrainingFailed: Error, CustomStringConvertible {
  let failures: [String]
  init(_ failures: [String]) { self.failures = failures }
  var description: String { failures.joined(separator: "\n") }
}
