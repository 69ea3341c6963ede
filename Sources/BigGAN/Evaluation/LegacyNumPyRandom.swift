/// NumPy's legacy `np.random.RandomState(seed)` (MT19937) for the two draws
/// the standard evaluation tools make: `permutation(n)` and
/// `choice(n, k, replace=False)`.
///
/// torch-fidelity shuffles the Inception Score's logits and picks KID's
/// subsets with `RandomState(2020)`; drawing the same indices here lets our
/// IS and KID equal its values to the last digit instead of only in
/// expectation.
public struct LegacyNumPyRandom: Sendable {
  private var key = [UInt32](repeating: 0, count: 624)
  private var position = 624

  /// `np.random.RandomState(seed)` (MT19937's `init_genrand`).
  public init(seed: UInt32) {
    var s = seed
    for i in 0..<624 {
      key[i] = s
      s = 1_812_433_253 &* (s ^ (s >> 30)) &+ UInt32(i + 1)
    }
  }

  /// The next 32-bit output of the generator (`genrand_int32`).
  public mutating func nextUInt32() -> UInt32 {
    if position == 624 { twist() }
    var y = key[position]
    position += 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9d2c_5680
    y ^= (y << 15) & 0xefc6_0000
    y ^= y >> 18
    return y
  }

  private mutating func twist() {
    for i in 0..<624 {
      let y = (key[i] & 0x8000_0000) | (key[(i + 1) % 624] & 0x7fff_ffff)
      key[i] = key[(i + 397) % 624] ^ (y >> 1) ^ (y & 1 == 0 ? 0 : 0x9908_b0df)
    }
    position = 0
  }

  /// A uniform integer in `0...max` by masked rejection, as NumPy's legacy
  /// `random_interval` draws it (32-bit draws; `max` < 2^32).
  public mutating func interval(_ max: Int) -> Int {
    precondition(max >= 0 && max <= Int(UInt32.max))
    if max == 0 { return 0 }
    var mask = UInt32(max)
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16
    while true {
      let value = nextUInt32() & mask
      if value <= UInt32(max) { return Int(value) }
    }
  }

  /// `RandomState.permutation(n)`: a Fisher-Yates shuffle of `0..<n` from
  /// the last element down.
  public mutating func permutation(_ n: Int) -> [Int] {
    var values = Array(0..<n)
    var i = n - 1
    while i >= 1 {
      values.swapAt(i, interval(i))
      i -= 1
    }
    return values
  }

  /// `RandomState.choice(n, k, replace=False)`: the first `k` entries of a
  /// permutation of `0..<n`.
  public mutating func choice(_ n: Int, count k: Int) -> [Int] {
    Array(permutation(n).prefix(k))
  }
}
