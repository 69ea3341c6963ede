import Testing

@testable import BGKernels

@Suite(.serialized)
struct BFloat16Tests {
  /// (input bits, expected bf16 bits) under TPU rules.
  static let cases: [(UInt32, UInt16)] = [
    (0x0000_0000, 0x0000),  // +0
    (0x8000_0000, 0x8000),  // -0
    (0x3F80_0000, 0x3F80),  // 1
    (0x7F80_0000, 0x7F80),  // +Inf
    (0xFF80_0000, 0xFF80),  // -Inf
    (0x7FC0_0000, 0x7FC0),  // quiet NaN
    (0x7F80_0001, 0x7FC0),  // NaN, payload only in the low bits: stays NaN
    (0xFF80_0001, 0xFFC0),  // negative NaN keeps its sign
    (0x7FFF_FFFF, 0x7FFF),  // NaN with every payload bit: no carry into the sign
    (0x7F7F_FFFF, 0x7F80),  // the largest float rounds up to Inf
    (0x3F80_8000, 0x3F80),  // tie, even below: stays
    (0x3F81_8000, 0x3F82),  // tie, odd below: rounds up to even
    (0x3F80_8001, 0x3F81),  // just above a tie: up
    (0x3F80_7FFF, 0x3F80),  // just below a tie: down
    (0x0000_0001, 0x0000),  // smallest subnormal: flushed
    (0x807F_FFFF, 0x8000),  // largest negative subnormal: flushed, sign kept
    (0x0080_0000, 0x0080),  // smallest normal: kept
  ]

  @Test("scalar conversion follows round-to-nearest-even with TPU special values")
  func scalar() {
    for (input, expected) in Self.cases {
      #expect(BFloat16.bits(Float(bitPattern: input)) == expected, "input \(String(input, radix: 16))")
    }
    #expect(BFloat16.value(0x3F80) == 1)
    #expect(BFloat16.value(0xFF80) == -.infinity)
  }

  @Test("vector conversion equals the scalar one on every path, tails included")
  func vector() {
    var rng = SplitMix64(seed: 9)
    var inputs = Self.cases.map { Float(bitPattern: $0.0) }
    inputs += (0..<1000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
    inputs += (0..<37).map { _ in rng.uniform() * 1e-38 }
    forEachInstructionSet { isa in
      let expected = inputs.map { BFloat16.bits($0) }
      #expect(BFloat16.bits(inputs) == expected, "\(isa)")
      let rounded = BFloat16.rounded(inputs)
      #expect(rounded.map { UInt16($0.bitPattern >> 16) } == expected, "\(isa)")
      #expect(rounded.allSatisfy { $0.bitPattern & 0xFFFF == 0 })
    }
  }
}
