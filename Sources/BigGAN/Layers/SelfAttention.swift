import BGKernels

/// SAGAN self-attention (BigGAN-PyTorch `Attention`): `theta`, `phi`, `g`
/// 1x1 spectrally normalised convolutions without bias (C to C/8, C/8,
/// C/2), 2x2 max pooling of `phi` and `g`, `softmax(theta phi^T)` over keys
/// without 1/sqrt(d) scaling, `o` (C/2 to C), and `x + gamma o` with `gamma`
/// starting at 0. The core runs in the fused attention kernel.
///
/// Shapes: `x` and the result `[batch, h, w, C]` (h and w even).
public final class SelfAttention: Module {
  let theta: Conv2d
  let phi: Conv2d
  let g: Conv2d
  let o: Conv2d
  let gamma: Parameter
  var precision: Precision = .fp32 {
    didSet { for c in [theta, phi, g, o] { c.precision = precision } }
  }

  /// What `backward` reads: the attention core's inputs and output
  /// (queries `[batch, h * w, C/8]`, pooled keys `[batch, h * w / 4, C/8]`
  /// and values `[batch, h * w / 4, C/2]`, the output `[batch, h * w, C/2]`
  /// and its log-sum-exps), the poolings' argmax, `o`'s output for gamma's
  /// gradient, and the input's shape, from which the unpooled keys' and
  /// values' shapes follow.
  private struct Saved {
    let inputShape: [Int]
    let theta: Tensor
    let phi: Tensor
    let g: Tensor
    let phiArgmax: [UInt8]
    let gArgmax: [UInt8]
    let attended: Tensor
    let logSumExp: Tensor
    let o: Tensor
  }
  private var saved: Saved?

  init(prefix: String, channels: Int, settings: LayerSettings, rng: inout SeededRandom) {
    func conv(_ name: String, _ i: Int, _ o: Int, _ rng: inout SeededRandom) -> Conv2d {
      Conv2d(
        prefix: path(prefix, name), in: i, out: o, kernel: 1, bias: false, spectralNorm: settings.snEps,
        initialization: settings.initialization, rng: &rng)
    }
    theta = conv("theta", channels, channels / 8, &rng)
    phi = conv("phi", channels, channels / 8, &rng)
    g = conv("g", channels, channels / 2, &rng)
    o = conv("o", channels / 2, channels, &rng)
    gamma = Parameter(path(prefix, "gamma"), Tensor(shape: [], repeating: 0))
  }

  public var parameters: [Parameter] {
    theta.parameters + phi.parameters + g.parameters + o.parameters + [gamma]
  }
  public var buffers: [Buffer] { theta.buffers + phi.buffers + g.buffers + o.buffers }

  func forward(_ x: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    saved = nil
    let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let t = try theta.forward(x, mode: mode)
    let pf = try phi.forward(x, mode: mode), gf = try g.forward(x, mode: mode)
    let (pp, pa) = try maxPool2x2(pf), (gp, ga) = try maxPool2x2(gf)
    let keys = (h / 2) * (w / 2)
    let q = try t.reshaped([b, h * w, c / 8])
    let k = try pp.reshaped([b, keys, c / 8]), v = try gp.reshaped([b, keys, c / 2])
    let (att, lse) = try attention(theta: q, phi: k, g: v, precision: precision)
    let oOut = try o.forward(try att.reshaped([b, h, w, c / 2]), mode: mode)
    if mode.keepsActivations {
      saved = Saved(
        inputShape: x.shape, theta: q, phi: k, g: v, phiArgmax: pa, gArgmax: ga, attended: att,
        logSumExp: lse, o: oOut)
    }
    var y = x
    try y.add(oOut, scaledBy: gamma.value.storage[0])
    return y
  }

  func backward(_ dy: Tensor) throws(KernelError) -> Tensor {
    guard let s = saved.take() else { throw .shape("SelfAttention.backward called without a training- or evaluation-mode forward") }
    let (b, h, w, c) = (s.inputShape[0], s.inputShape[1], s.inputShape[2], s.inputShape[3])
    if gamma.requiresGradient {
      try gamma.accumulate(try Tensor(shape: [], storage: [Float(try dot(dy, s.o))]))
    }
    let dAtt = try o.backward(dy.scaled(by: gamma.value.storage[0]))
    let (dq, dk, dv) = try attentionBackward(
      theta: s.theta, phi: s.phi, g: s.g, output: s.attended, logSumExp: s.logSumExp,
      outputGradient: try dAtt.reshaped([b, h * w, c / 2]), precision: precision)
    let dpf = try maxPool2x2Backward(
      try dk.reshaped([b, h / 2, w / 2, c / 8]), argmax: s.phiArgmax, inputShape: [b, h, w, c / 8])
    let dgf = try maxPool2x2Backward(
      try dv.reshaped([b, h / 2, w / 2, c / 2]), argmax: s.gArgmax, inputShape: [b, h, w, c / 2])
    var dx = dy
    try dx.add(try theta.backward(try dq.reshaped([b, h, w, c / 8])))
    try dx.add(try phi.backward(dpf))
    try dx.add(try g.backward(dgf))
    return dx
  }
}
