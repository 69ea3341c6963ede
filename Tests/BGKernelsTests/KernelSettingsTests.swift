import BGKernels
import CKernels
import Foundation
import Testing

/// `Machine.with` scopes: they nest, restore what was there even when the
/// body throws, stay on their own thread, and let threads that run kernels
/// at the same time each compute with their own settings.
@Suite
struct KernelSettingsTests {
  struct Failure: Error {}

  @Test("Scopes nest and each restores the settings it found")
  func scopesNest() {
    let outside = Machine.settings
    Machine.with(threads: 1, convolutionAlgorithm: .winograd) {
      #expect(Machine.threads == 1)
      #expect(Machine.convolutionAlgorithm == .winograd)
      Machine.with(convolutionAlgorithm: .im2col, convolutionBatchScale: 3) {
        #expect(Machine.threads == 1)
        #expect(Machine.convolutionAlgorithm == .im2col)
        #expect(Machine.settings.convolutionBatchScale == 3)
      }
      #expect(Machine.convolutionAlgorithm == .winograd)
      #expect(Machine.settings.convolutionBatchScale == outside.convolutionBatchScale)
    }
    #expect(Machine.settings == outside)
  }

  @Test("Every path's name parses back to it, and a scope can select every path this machine has")
  func pathNames() {
    let c: [InstructionSet: bk_isa] = [
      .scalar: BK_ISA_SCALAR, .avx2: BK_ISA_AVX2, .avx512: BK_ISA_AVX512, .avx512bf16: BK_ISA_AVX512_BF16,
      .amx: BK_ISA_AMX_BF16,
    ]
    for isa in InstructionSet.allCases {
      #expect(bk_isa_parse(isa.rawValue) == Int32(c[isa]!.rawValue))
      #expect(String(cString: bk_isa_name(c[isa]!)) == isa.rawValue)
    }
    #expect(bk_isa_parse("avx512_bf16") == -1)
    forEachInstructionSet { isa in #expect(Machine.instructionSet == isa) }
    #expect(Machine.instructionSet <= Machine.bestInstructionSet)
  }

  @Test("The bf16 probe counts two products per lane on vdpbf16ps, four 16 x 16 x 32 tiles on AMX, and the FMA probe's operations elsewhere")
  func bf16Probe() {
    forEachInstructionSet { isa in
      let fma = Machine.fmaProbe(iterations: 1000, threads: 1)
      let bf16 = Machine.bf16Probe(iterations: 1000, threads: 1)
      let expected = isa == .avx512bf16 ? 2 * fma : isa == .amx ? 1000 * 4 * 2 * 16 * 16 * 32 : fma
      #expect(bf16 == expected, "\(isa)")
    }
  }

  @Test("A scope restores the settings when its body throws")
  func scopeRestoresOnThrow() {
    let outside = Machine.settings
    #expect(throws: Failure.self) {
      try Machine.with(instructionSet: .scalar, threads: 1, convolutionAlgorithm: .im2col) {
        throw Failure()
      }
    }
    #expect(Machine.settings == outside)
  }

  @Test("Another thread does not see a scope")
  func scopeStaysOnItsThread() {
    let outside = Machine.settings
    let seen = Machine.with(instructionSet: .scalar, threads: 1, convolutionAlgorithm: .im2col) {
      onThreads(1) { _ in Machine.settings }[0]
    }
    #expect(seen == outside)
  }

  @Test("Without OpenMP a request for 2 threads gets 1")
  func threadsWithoutOpenMP() {
    Machine.with(threads: 2) { #expect(Machine.threads == (Machine.hasOpenMP ? 2 : 1)) }
  }

  /// Threads that convolve at the same time under different algorithms
  /// (Winograd and im2col round differently; a batch scale of 8 makes
  /// `.auto` take Winograd on 16 tiles, which it leaves to im2col alone)
  /// each get the bits of their own settings, on every attempt.
  @Test("Concurrent scopes each compute with their own settings")
  func concurrentScopes() throws {
    var rng = SplitMix64(seed: 11)
    let x = rng.tensor([1, 16, 16, 32]), w = rng.tensor([32, 3, 3, 32], scale: 0.1)
    let g = ConvolutionGeometry(kernel: 3, padding: 1)
    @Sendable func convolve() throws -> [Float] { try conv2d(x, weight: w, bias: nil, geometry: g).storage }
    let scopes: [(ConvolutionAlgorithm, Int)] = [(.im2col, 1), (.winograd, 1), (.auto, 1), (.auto, 8)]
    let expected = try scopes.map { s in
      try Machine.with(threads: 1, convolutionAlgorithm: s.0, convolutionBatchScale: s.1) { try convolve() }
    }
    #expect(bits(expected[0]) != bits(expected[1]), "the two algorithms must differ for the test to see a mix-up")
    #expect(bits(expected[2]) == bits(expected[0]) && bits(expected[3]) == bits(expected[1]))
    let outcomes = onThreads(scopes.count) { i in
      Machine.with(threads: 1, convolutionAlgorithm: scopes[i].0, convolutionBatchScale: scopes[i].1) {
        (0..<20).allSatisfy { _ in (try? convolve()).map(bits) == bits(expected[i]) }
      }
    }
    #expect(outcomes == [true, true, true, true])
  }

  /// Runs `body(i)` for i in 0..<count, each on a thread of its own, all at
  /// once, and returns the results in order.
  func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let results = Results<T>(count: count)
    let group = DispatchGroup()
    for i in 0..<count {
      group.enter()
      Thread {
        results.set(i, body(i))
        group.leave()
      }.start()
    }
    group.wait()
    return results.values.map { $0! }
  }

  final class Results<T>: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [T?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: T) {
      lock.lock()
      values[i] = value
      lock.unlock()
    }
  }
}
