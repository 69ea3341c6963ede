import CKernels
import Foundation
import Testing

@testable import BGKernels

// MARK: - Data

/// One attention problem: inputs and the output gradient.
private struct AttentionCase: CustomStringConvertible {
  let batch, n, m, dk, dv: Int
  let theta, phi, g, outputGradient: Tensor

  init(batch: Int, n: Int, m: Int, dk: Int, dv: Int, scale: Float = 1, seed: UInt64 = 7) {
    (self.batch, self.n, self.m, self.dk, self.dv) = (batch, n, m, dk, dv)
    var rng = SplitMix64(seed: seed &+ UInt64(batch * 1_000_003 + n * 1009 + m * 31 + dk * 7 + dv))
    theta = rng.tensor([batch, n, dk], scale: scale)
    phi = rng.tensor([batch, m, dk], scale: scale)
    g = rng.tensor([batch, m, dv])
    outputGradient = rng.tensor([batch, n, dv])
  }

  var description: String { "batch \(batch), n \(n), m \(m), dk \(dk), dv \(dv)" }
}

/// Every n and m of the specification, paired so that each dk, dv and batch
/// size meets tiles of every kind (single row, ragged, exact, several).
private let sweep: [AttentionCase] = {
  let extents = [1, 3, 17, 64, 129, 200], dks = [1, 3, 12, 24], dvs = [1, 5, 48, 96]
  var cases: [AttentionCase] = []
  for (i, n) in extents.enumerated() {
    for (j, m) in extents.enumerated() {
      cases.append(
        AttentionCase(batch: 1 + (i + j) % 3, n: n, m: m, dk: dks[(i + 3 * j) % 4], dv: dvs[(2 * i + j) % 4]))
    }
  }
  return cases
}()

// MARK: - Double-precision reference

/// fp32 unit roundoff.
private let eps = Double(Float.ulpOfOne) / 2

/// How far bf16 results may drift from a reference that rounds the same
/// operands: the engine and the reference round slightly different values
/// to bf16 (the forward's probabilities are scaled by a running maximum in
/// the engine, normalised in the reference; dS carries fp32 noise), and two
/// roundings, each within 2^-8 relative, stay within 2^-7 of each other.
private let bf16Drift = 1.0 / 128

/// The operand as the products see it: bf16-rounded in bf16 mode.
private func operand(_ x: Float, _ precision: Precision) -> Double {
  precision == .bf16 ? Double(BFloat16.rounded(x)) : Double(x)
}

private func operand(_ x: Double, _ precision: Precision) -> Double {
  precision == .bf16 ? Double(BFloat16.rounded(Float(x))) : x
}

/// A result with an element-wise error bound.
private struct Expected {
  var value: [Double]
  var tolerance: [Double]
}

/*
 Error model of the tolerances. With u = 2^-24, a score S_ij = theta_i . phi_j
 carries at most dk u A_ij of rounding error, A_ij = sum_k |theta_ik phi_jk|
 (bf16 operands multiply exactly in fp32, so this holds in both modes); the
 exp, the running sums (at most m, n, dv terms) and the final division add
 O((m + n + dv) u) relative error to every probability. Every result is a sum
 of probability-weighted terms, so its error is below
   2 u (dk max A + m + n + dv + 16) * magnitude
 where magnitude is the same sum with every term replaced by its absolute
 value (for dS = P (dP - D): P (|dout| |g| + |dout . out|)). These are
 worst-case bounds: observed errors stay an order of magnitude below them.
 bf16 adds bf16Drift * magnitude for the operands rounded after the scores.
 */
private func condition(_ c: AttentionCase, maxAbsScore: Double) -> Double {
  Double(c.dk) * maxAbsScore + Double(c.m + c.n + c.dv + 16)
}

/// Doubles behind a raw pointer: the reference loops run in a debug build,
/// where pointer subscripts cost far less than Array's.
private final class Doubles {
  let p: UnsafeMutablePointer<Double>
  let count: Int

  init(count: Int) {
    self.count = count
    p = .allocate(capacity: max(count, 1))
    p.initialize(repeating: 0, count: max(count, 1))
  }

  convenience init(_ xs: [Float], _ precision: Precision = .fp32) {
    self.init(count: xs.count)
    for i in 0..<count { p[i] = operand(xs[i], precision) }
  }

  deinit { p.deallocate() }

  var array: [Double] { Array(UnsafeBufferPointer(start: p, count: count)) }
}

/// The forward in double, the probabilities materialised.
private func referenceForward(_ c: AttentionCase, _ precision: Precision) -> (
  output: Expected, logSumExp: Expected
) {
  let (n, m, dk, dv) = (c.n, c.m, c.dk, c.dv)
  let theta = Doubles(c.theta.storage, precision), phi = Doubles(c.phi.storage, precision)
  let g = Doubles(c.g.storage, precision)
  let out = Doubles(count: c.batch * n * dv), outMag = Doubles(count: c.batch * n * dv)
  let lse = Doubles(count: c.batch * n), s = Doubles(count: m)
  let (t, p, v, o, om, sp) = (theta.p, phi.p, g.p, out.p, outMag.p, s.p)
  var maxA = 0.0
  for b in 0..<c.batch {
    for i in 0..<n {
      let q = (b * n + i) * dk
      var top = -Double.infinity
      for j in 0..<m {
        let k0 = (b * m + j) * dk
        var dot = 0.0, abs = 0.0
        for k in 0..<dk {
          dot += t[q + k] * p[k0 + k]
          abs += fabs(t[q + k] * p[k0 + k])
        }
        sp[j] = dot
        if abs > maxA { maxA = abs }
        if dot > top { top = dot }
      }
      var sum = 0.0
      for j in 0..<m { sum += exp(sp[j] - top) }
      let l = top + log(sum)
      lse.p[b * n + i] = l
      let o0 = (b * n + i) * dv
      for j in 0..<m {
        let prob = exp(sp[j] - l), pr = operand(prob, precision)
        let v0 = (b * m + j) * dv
        for e in 0..<dv {
          o[o0 + e] += pr * v[v0 + e]
          om[o0 + e] += prob * fabs(v[v0 + e])
        }
      }
    }
  }
  let cond = condition(c, maxAbsScore: maxA)
  let drift = precision == .bf16 ? bf16Drift : 0
  let lseValues = lse.array
  return (
    Expected(value: out.array, tolerance: outMag.array.map { (drift + 2 * eps * cond) * $0 + 1e-30 }),
    Expected(value: lseValues, tolerance: lseValues.map { 2 * eps * (cond + fabs($0)) })
  )
}

/// The backward in double, from the given output and log-sum-exp (the same
/// inputs the engine receives).
private func referenceBackward(
  _ c: AttentionCase, output: Tensor, logSumExp: Tensor, _ precision: Precision
) -> (theta: Expected, phi: Expected, g: Expected) {
  let (n, m, dk, dv) = (c.n, c.m, c.dk, c.dv)
  let theta = Doubles(c.theta.storage, precision), phi = Doubles(c.phi.storage, precision)
  let g = Doubles(c.g.storage, precision)
  // D = rowsum(dout * out) is fp32 arithmetic, not a product: unrounded dout.
  let doutExact = Doubles(c.outputGradient.storage), dout = Doubles(c.outputGradient.storage, precision)
  let output = Doubles(output.storage), lse = Doubles(logSumExp.storage)
  let dTheta = Doubles(count: theta.count), dThetaMag = Doubles(count: theta.count)
  let dPhi = Doubles(count: phi.count), dPhiMag = Doubles(count: phi.count)
  let dG = Doubles(count: g.count), dGMag = Doubles(count: g.count)
  let (t, p, v, dy, dyx, y) = (theta.p, phi.p, g.p, dout.p, doutExact.p, output.p)
  let (dt, dtm, dp, dpm, dg, dgm) = (dTheta.p, dThetaMag.p, dPhi.p, dPhiMag.p, dG.p, dGMag.p)
  var maxA = 0.0
  for b in 0..<c.batch {
    for i in 0..<n {
      let q = (b * n + i) * dk, o = (b * n + i) * dv
      var d = 0.0, dAbs = 0.0
      for e in 0..<dv {
        d += dyx[o + e] * y[o + e]
        dAbs += fabs(dyx[o + e] * y[o + e])
      }
      let l = lse.p[b * n + i]
      for j in 0..<m {
        let k0 = (b * m + j) * dk, v0 = (b * m + j) * dv
        var s = 0.0, abs = 0.0
        for k in 0..<dk {
          s += t[q + k] * p[k0 + k]
          abs += fabs(t[q + k] * p[k0 + k])
        }
        if abs > maxA { maxA = abs }
        let prob = exp(s - l)
        var dprob = 0.0, dprobAbs = 0.0
        for e in 0..<dv {
          dprob += dy[o + e] * v[v0 + e]
          dprobAbs += fabs(dy[o + e] * v[v0 + e])
        }
        let ds = operand(prob * (dprob - d), precision)
        let weight = prob * (dprobAbs + dAbs)
        for k in 0..<dk {
          dt[q + k] += ds * p[k0 + k]
          dtm[q + k] += weight * fabs(p[k0 + k])
          dp[k0 + k] += ds * t[q + k]
          dpm[k0 + k] += weight * fabs(t[q + k])
        }
        let pr = operand(prob, precision)
        for e in 0..<dv {
          dg[v0 + e] += pr * dy[o + e]
          dgm[v0 + e] += prob * fabs(dy[o + e])
        }
      }
    }
  }
  let scale = (precision == .bf16 ? bf16Drift : 0) + 2 * eps * condition(c, maxAbsScore: maxA)
  func expected(_ value: Doubles, _ magnitude: Doubles) -> Expected {
    Expected(value: value.array, tolerance: magnitude.array.map { scale * $0 + 1e-30 })
  }
  return (expected(dTheta, dThetaMag), expected(dPhi, dPhiMag), expected(dG, dGMag))
}

/// Expects every element within its bound, reporting the count and the
/// worst offender rather than whole arrays.
private func expectWithin(
  _ got: Tensor, _ want: Expected, _ label: @autoclosure () -> String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  guard got.count == want.value.count else {
    Issue.record("\(label()): \(got.count) elements, expected \(want.value.count)", sourceLocation: sourceLocation)
    return
  }
  var bad = 0, worst = 0.0, worstIndex = 0
  for i in 0..<got.count {
    let error = fabs(Double(got.storage[i]) - want.value[i])
    let ratio = error / want.tolerance[i]
    if !(ratio <= 1) { bad += 1 }
    if !(ratio <= worst) { (worst, worstIndex) = (ratio, i) }
  }
  if bad > 0 {
    Issue.record(
      "\(label()): \(bad) of \(got.count) elements outside the bound; worst element \(worstIndex): \(got.storage[worstIndex]) vs \(want.value[worstIndex]) (error \(worst) x bound)",
      sourceLocation: sourceLocation)
  }
}

/// Runs forward and backward on `c` and checks both against the reference.
private func checkAgainstReference(_ c: AttentionCase, _ precision: Precision, _ label: String)
  throws
{
  let (out, lse) = try attention(theta: c.theta, phi: c.phi, g: c.g, precision: precision)
  let ref = referenceForward(c, precision)
  expectWithin(out, ref.output, "\(label) \(precision) \(c): output")
  expectWithin(lse, ref.logSumExp, "\(label) \(precision) \(c): logSumExp")
  let grads = try attentionBackward(
    theta: c.theta, phi: c.phi, g: c.g, output: out, logSumExp: lse,
    outputGradient: c.outputGradient, precision: precision)
  let refGrads = referenceBackward(c, output: out, logSumExp: lse, precision)
  expectWithin(grads.theta, refGrads.theta, "\(label) \(precision) \(c): dtheta")
  expectWithin(grads.phi, refGrads.phi, "\(label) \(precision) \(c): dphi")
  expectWithin(grads.g, refGrads.g, "\(label) \(precision) \(c): dg")
}

/// All five results of a forward and backward pass, for bitwise comparisons.
private func allResults(_ c: AttentionCase, _ precision: Precision) throws -> [[Float]] {
  let (out, lse) = try attention(theta: c.theta, phi: c.phi, g: c.g, precision: precision)
  let grads = try attentionBackward(
    theta: c.theta, phi: c.phi, g: c.g, output: out, logSumExp: lse,
    outputGradient: c.outputGradient, precision: precision)
  return [out.storage, lse.storage, grads.theta.storage, grads.phi.storage, grads.g.storage]
}

// MARK: - Specifications

@Suite(.serialized)
struct AttentionTests {
  @Test func fp32ForwardAndBackwardMatchTheDoubleReference() throws {
    for c in sweep { try checkAgainstReference(c, .fp32, "sweep") }
  }

  @Test func bf16MatchesAReferenceThatRoundsTheSameOperands() throws {
    for c in sweep { try checkAgainstReference(c, .bf16, "sweep") }
  }

  @Test(arguments: Precision.allCases)
  func bigGANShapesScaledDown(precision: Precision) throws {
    let c = AttentionCase(batch: 2, n: 1024, m: 256, dk: 24, dv: 96)
    try checkAgainstReference(c, precision, "BigGAN")
  }

  /// Scores far beyond +-88, where exp overflows fp32, must not: the online
  /// softmax subtracts the running maximum before every exp.
  @Test(arguments: Precision.allCases)
  func largeScoresDoNotOverflow(precision: Precision) throws {
    let c = AttentionCase(batch: 2, n: 130, m: 200, dk: 12, dv: 5, scale: 5, seed: 99)
    let scores = try matmul(
      c.theta.reshaped([2 * 130, 12]), c.phi.reshaped([2 * 200, 12]), transposeB: true)
    #expect(scores.storage.map(abs).max()! > 100, "the data must reach scores that overflow exp")
    let all = try allResults(c, precision)
    #expect(all.allSatisfy { $0.allSatisfy(\.isFinite) })
    try checkAgainstReference(c, precision, "large scores")
  }

  /// bf16 rounds the probabilities, not just theta, phi and g: one query,
  /// scores [0, -1.203125] (exact in bf16) and g = [0, 1] give
  /// bf16(e^-1.203125) / (1 + e^-1.203125) = 0.30078125 / 1.30026...
  @Test func bf16RoundsTheProbabilities() throws {
    let theta = try Tensor(shape: [1, 1, 1], storage: [1])
    let phi = try Tensor(shape: [1, 2, 1], storage: [0, -1.203125])
    let g = try Tensor(shape: [1, 2, 1], storage: [0, 1])
    let e = exp(-1.203125)
    let (bf, _) = try attention(theta: theta, phi: phi, g: g, precision: .bf16)
    let (fp, lse) = try attention(theta: theta, phi: phi, g: g, precision: .fp32)
    #expect(abs(Double(bf.storage[0]) - 0.30078125 / (1 + e)) < 1e-6)
    #expect(abs(Double(fp.storage[0]) - e / (1 + e)) < 1e-6)
    #expect(abs(Double(lse.storage[0]) - log(1 + e)) < 1e-6)
  }

  @Test(arguments: Precision.allCases)
  func threadCountDoesNotChangeTheBits(precision: Precision) throws {
    let c = AttentionCase(batch: 2, n: 600, m: 260, dk: 24, dv: 96)
    let one = try withThreads(1) { try allResults(c, precision) }
    let two = try withThreads(2) { try allResults(c, precision) }
    for (name, (a, b)) in zip(["output", "logSumExp", "dtheta", "dphi", "dg"], zip(one, two)) {
      #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(precision) \(name) differs between 1 and 2 threads")
    }
  }

  @Test func everyInstructionSetMatchesTheReference() throws {
    let c = AttentionCase(batch: 2, n: 129, m: 200, dk: 24, dv: 48)
    try forEachInstructionSet { isa in
      for precision in Precision.allCases {
        try checkAgainstReference(c, precision, isa.rawValue)
      }
    }
  }

  /// The gradients are those of the loss sum(dout * out): central
  /// differences (h = 1e-2, truncation error ~h^2, fp32 noise ~1e-7 / h)
  /// agree to 1e-3.
  @Test func backwardMatchesFiniteDifferences() throws {
    let c = AttentionCase(batch: 1, n: 5, m: 3, dk: 2, dv: 3, seed: 3)
    let (out, lse) = try attention(theta: c.theta, phi: c.phi, g: c.g)
    let grads = try attentionBackward(
      theta: c.theta, phi: c.phi, g: c.g, output: out, logSumExp: lse,
      outputGradient: c.outputGradient)

    func loss(_ theta: Tensor, _ phi: Tensor, _ g: Tensor) throws -> Double {
      let (o, _) = try attention(theta: theta, phi: phi, g: g)
      return zip(o.storage, c.outputGradient.storage).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    func numeric(_ x: Tensor, _ index: Int, _ evaluate: (Tensor) throws -> Double) rethrows -> Double {
      var plus = x, minus = x
      plus.storage[index] += 1e-2
      minus.storage[index] -= 1e-2
      let step = Double(plus.storage[index]) - Double(minus.storage[index])
      return try (evaluate(plus) - evaluate(minus)) / step
    }
    let inputs: [(String, Tensor, Tensor, (Tensor) throws -> Double)] = [
      ("theta", c.theta, grads.theta, { try loss($0, c.phi, c.g) }),
      ("phi", c.phi, grads.phi, { try loss(c.theta, $0, c.g) }),
      ("g", c.g, grads.g, { try loss(c.theta, c.phi, $0) }),
    ]
    for (name, x, analytic, evaluate) in inputs {
      for i in 0..<x.count {
        let fd = try numeric(x, i, evaluate)
        let a = Double(analytic.storage[i])
        #expect(abs(fd - a) <= 1e-3 * max(1, abs(a)), "d loss / d \(name)[\(i)]: analytic \(a), numeric \(fd)")
      }
    }
  }

  @Test func wrappersRejectShapesThatDoNotFit() {
    let theta = Tensor(shape: [2, 5, 4]), phi = Tensor(shape: [2, 3, 4]), g = Tensor(shape: [2, 3, 6])
    let out = Tensor(shape: [2, 5, 6]), lse = Tensor(shape: [2, 5])
    func message(_ body: () throws -> Void) -> String {
      do { try body() } catch let error as KernelError { return error.description } catch {
        return "unexpected error \(error)"
      }
      return "no error"
    }
    #expect(message { _ = try attention(theta: Tensor(shape: [5, 4]), phi: phi, g: g) }.contains("theta"))
    #expect(message { _ = try attention(theta: theta, phi: Tensor(shape: [1, 3, 4]), g: g) }.contains("phi"))
    #expect(message { _ = try attention(theta: theta, phi: Tensor(shape: [2, 3, 5]), g: g) }.contains("phi"))
    #expect(message { _ = try attention(theta: theta, phi: phi, g: Tensor(shape: [2, 4, 6])) }.contains("g has shape"))
    #expect(message { _ = try attention(theta: theta, phi: Tensor(shape: [2, 0, 4]), g: Tensor(shape: [2, 0, 6])) }.contains("M = 0"))
    #expect(message { _ = try attention(theta: theta, phi: phi, g: Tensor(shape: [2, 3, 0])) }.contains("dv = 0"))
    func backward(output: Tensor? = nil, logSumExp: Tensor? = nil, outputGradient: Tensor? = nil) -> String {
      message {
        _ = try attentionBackward(
          theta: theta, phi: phi, g: g, output: output ?? out, logSumExp: logSumExp ?? lse,
          outputGradient: outputGradient ?? out)
      }
    }
    #expect(backward() == "no error")
    #expect(backward(output: Tensor(shape: [2, 5, 5])).contains("output has shape [2, 5, 5], expected [2, 5, 6]"))
    #expect(backward(logSumExp: Tensor(shape: [2, 5, 1])).contains("logSumExp"))
    #expect(backward(outputGradient: Tensor(shape: [2, 6, 6])).contains("outputGradient"))
  }

  /// No queries: empty outputs, and dphi, dg are sums over nothing.
  @Test func noQueriesGiveEmptyResultsAndZeroKeyGradients() throws {
    let c = AttentionCase(batch: 2, n: 0, m: 3, dk: 4, dv: 6)
    let (out, lse) = try attention(theta: c.theta, phi: c.phi, g: c.g)
    #expect(out.shape == [2, 0, 6] && lse.shape == [2, 0])
    let grads = try attentionBackward(
      theta: c.theta, phi: c.phi, g: c.g, output: out, logSumExp: lse, outputGradient: out)
    #expect(grads.theta.shape == [2, 0, 4])
    #expect(grads.phi == Tensor(shape: [2, 3, 4]) && grads.g == Tensor(shape: [2, 3, 6]))
  }

  @Test func cEntryPointsIgnoreInvalidSizes() {
    let sentinel: Float = 12345
    var x = [Float](repeating: sentinel, count: 64)
    x.withUnsafeMutableBufferPointer { p in
      let a = p.baseAddress!
      for (batch, n, m, dk, dv): (Int32, Int32, Int32, Int32, Int32) in [
        (0, 2, 2, 2, 2), (1, 0, 2, 2, 2), (1, 2, -1, 2, 2), (1, 2, 2, 0, 2), (1, 2, 2, 2, -3),
      ] {
        bk_attention_forward(BK_FP32, batch, n, m, dk, dv, a, a, a, a, a)
        bk_attention_backward(BK_BF16, batch, n, m, dk, dv, a, a, a, a, a, a, a, a, a)
      }
    }
    #expect(x.allSatisfy { $0 == sentinel })
  }
}
