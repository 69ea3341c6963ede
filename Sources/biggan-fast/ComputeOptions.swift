import ArgumentParser
import BGKernels

/// How a command that runs networks computes: the precision of every
/// product and the kernels' threads.
struct ComputeOptions: ParsableArguments {
  @Option(help: "Precision of every product: fp32 or bf16.") var precision: Precision = .fp32
  @Option(parsing: .unconditional, help: "Threads (default: OMP_NUM_THREADS or one per core).") var threads: Int?

  func validate() throws {
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
  }

  /// Gives the kernels --threads threads, when it was given.
  func applyThreads() {
    if let threads { Machine.threads = threads }
  }
}
