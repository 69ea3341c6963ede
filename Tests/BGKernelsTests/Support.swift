import BGKernels
import Testing

/// A small deterministic generator (SplitMix64) so every test sees the same
/// data on every run.
struct SplitMix64 {
  var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [-1, 1).
  mutating func uniform() -> Float {
    Float(next() >> 40) / Float(1 << 23) - 1
  }

  /// Uniform in [-scale, scale).
  mutating func uniform(_ scale: Float) -> Float { uniform() * scale }

  mutating func array(_ count: Int) -> [Float] {
    (0..<count).map { _ in uniform() }
  }

  mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
    let count = shape.reduce(1, *)
    return try! Tensor(shape: shape, storage: (0..<count).map { _ in uniform(scale) })
  }
}

/// Runs `body` once per instruction-set path this machine supports, with
/// the kernels it calls on this thread on that path.
func forEachInstructionSet(_ body: (InstructionSet) throws -> Void) rethrows {
  for isa in InstructionSet.allCases where isa <= Machine.bestInstructionSet {
    try Machine.with(instructionSet: isa) { try body(isa) }
  }
}

/// Runs `body` with the kernels it calls on this thread limited to
/// `threads` threads.
func withThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
  try Machine.with(threads: threads, body)
}

/// The bit patterns of an array, for exact comparisons that treat NaNs and
/// signed zeros strictly.
func bits(_ xs: [Float]) -> [UInt32] { xs.map(\.bitPattern) }

/// Expects two arrays to hold the same bits, reporting how many elements
/// differ and the first of them rather than the whole arrays.
func expectSameBits(
  _ ours: [Float], _ expected: [Float], _ label: @autoclosure () -> String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let a = bits(ours), b = bits(expected)
  guard a != b else { return }
  let differing = zip(a, b).enumerated().filter { $0.element.0 != $0.element.1 }
  let first = differing.first.map { "element \($0.offset): \(ours[$0.offset]) vs \(expected[$0.offset])" } ?? "lengths \(a.count) vs \(b.count)"
  Issue.record("\(label()): \(differing.count) elements differ; first \(first)", sourceLocation: sourceLocation)
}

/// Runs `body` with every convolution it calls on this thread computed by
/// `algorithm`.
func withConvolutionAlgorithm<T>(_ algorithm: ConvolutionAlgorithm, _ body: () throws -> T)
  rethrows -> T
{
  try Machine.with(convolutionAlgorithm: algorithm, body)
}
