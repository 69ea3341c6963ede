import BGKernels

/// Spectral normalisation of a weight viewed as a matrix `[rows, rest]`,
/// following BigGAN-PyTorch (`layers.py`, `SN` and `power_iteration`).
///
/// One power-iteration step per forward, from the persistent vector `u0`
/// (`[1, rows]`): `v = normalize(u W)`, `u = normalize(W v)`,
/// `sigma = u . (W v)`, and the layer uses `W / sigma`; `normalize(x)` is
/// `x / max(|x|, eps)`. The step runs in both modes, as in BigGAN-PyTorch,
/// but only training stores the new `u` (and `sv0`, the logged sigma).
/// The column order of `W` does not change sigma or `u`, so our OHWI
/// convolution weights share PyTorch's vectors.
final class SpectralNorm {
  let u: Buffer
  let sv: Buffer
  let eps: Float

  /// What one power-iteration step found, all that the backward of
  /// `W / sigma` reads: `u` `[rows]`, `v` `[rest]` and `sigma`.
  struct Step {
    let u: [Float]
    let v: [Float]
    let sigma: Float

    /// The gradient of the raw weight from `g`, that of `W / sigma`. As
    /// autograd does in BigGAN-PyTorch, `u` and `v` are constants:
    /// `dW = G / sigma - <G, W> / sigma^2 * u v^T`.
    func weightGradient(_ g: Tensor, weight: Tensor) throws(KernelError) -> Tensor {
      let inner = try dot(g, weight)
      var out = g.scaled(by: 1 / sigma)
      try out.addOuterProduct(u, v, scaledBy: Float(-inner / Double(sigma * sigma)))
      return out
    }
  }

  init(prefix: String, rows: Int, eps: Float, rng: inout SeededRandom) {
    var u0 = Tensor(shape: [1, rows])
    for i in 0..<rows { u0.storage[i] = rng.normal() }
    u = Buffer(path(prefix, "u0"), u0)
    sv = Buffer(path(prefix, "sv0"), Tensor(shape: [1], repeating: 1))
    self.eps = eps
  }

  /// `W / sigma` and the step that found sigma, updating `u` in training
  /// mode.
  func normalize(_ weight: Tensor, mode: Mode) throws(KernelError) -> (weight: Tensor, step: Step) {
    let rows = u.value.count
    var v = try matrixVector(weight, rows: rows, u.value.storage, transposed: true)
    scaleToUnit(&v)
    let wv = try matrixVector(weight, rows: rows, v)
    var un = wv
    scaleToUnit(&un)
    let sigma = zip(un, wv).reduce(Float(0)) { $0 + $1.0 * $1.1 }
    if mode.isTraining {
      u.value.storage = un
      sv.value.storage = [sigma]
    }
    return (weight.scaled(by: 1 / sigma), Step(u: un, v: v, sigma: sigma))
  }

  private func scaleToUnit(_ x: inout [Float]) {
    let norm = x.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
    let d = max(norm, eps)
    for i in x.indices { x[i] /= d }
  }
}
