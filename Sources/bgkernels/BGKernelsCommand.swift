import ArgumentParser
import BGKernels

/// `bgkernels`: the kernel engine's own tool.
@main
struct BGKernelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bgkernels",
    abstract: "Inspect and benchmark the biggan-fast CPU kernels.",
    subcommands: [Info.self, Bench.self]
  )
}

/// `bgkernels info`: what the kernels see and use on this machine.
struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show CPU features, the chosen instruction set and the thread count.")

  func run() throws {
    let cpu = Machine.features
    print("cpu:              \(cpu.brand.isEmpty ? "unknown" : cpu.brand) (\(cpu.vendor))")
    print("features:         \(cpu.flags.joined(separator: " "))")
    print("best path:        \(Machine.bestInstructionSet.rawValue)")
    print("active path:      \(Machine.instructionSet.rawValue)  (override with BK_ISA=scalar|avx2|avx512)")
    print("threads:          \(Machine.threads)  (set with OMP_NUM_THREADS or --threads)")
    print("OpenMP:           \(Machine.hasOpenMP ? "yes" : "no (threads clamped to 1)")")
  }
}
