import CKernels

/// The SAGAN attention core, per batch item `b`:
/// `output[b] = softmax_rows(theta[b] phi[b]^T) g[b]` (no `1/sqrt(dk)`
/// scaling), computed tile by tile without storing the `[N, M]` scores.
///
/// - Parameters:
///   - theta: queries, `[B, N, dk]`.
///   - phi: keys, `[B, M, dk]`, with `M >= 1` and `dk >= 1`.
///   - g: values, `[B, M, dv]`, with `dv >= 1`.
///   - precision: `.bf16` rounds theta, phi, g and the probabilities to
///     bfloat16 before each product; the softmax stays fp32.
/// - Returns: `output` `[B, N, dv]` and `logSumExp` `[B, N]`, the log of
///   each score row's sum of exponentials, which `attentionBackward` needs.
/// - Throws: `KernelError.shape` when the shapes do not fit together.
public func attention(
  theta: Tensor, phi: Tensor, g: Tensor, precision: Precision = .fp32
) throws(KernelError) -> (output: Tensor, logSumExp: Tensor) {
  let s = try AttentionShape(theta: theta, phi: phi, g: g)
  var output = Tensor(shape: [s.batch, s.n, s.dv])
  var logSumExp = Tensor(shape: [s.batch, s.n])
  guard s.batch > 0, s.n > 0 else { return (output, logSumExp) }
  theta.storage.withUnsafeBufferPointer { pt in
    phi.storage.withUnsafeBufferPointer { pp in
      g.storage.withUnsafeBufferPointer { pg in
        output.storage.withUnsafeMutableBufferPointer { po in
          logSumExp.storage.withUnsafeMutableBufferPointer { pl in
            bk_attention_forward(
              precision.c, Int32(s.batch), Int32(s.n), Int32(s.m), Int32(s.dk), Int32(s.dv),
              pt.baseAddress, pp.baseAddress, pg.baseAddress, po.baseAddress, pl.baseAddress)
          }
        }
      }
    }
  }
  return (output, logSumExp)
}

/// Gradients of `attention(theta:phi:g:precision:)`, recomputing the
/// probabilities from the saved `logSumExp`.
///
/// - Parameters:
///   - theta: `[B, N, dk]`; phi: `[B, M, dk]`; g: `[B, M, dv]`, as given to
///     the forward.
///   - output: the forward's `output`, `[B, N, dv]`.
///   - logSumExp: the forward's `logSumExp`, `[B, N]`.
///   - outputGradient: the loss gradient with respect to `output`,
///     `[B, N, dv]`.
///   - precision: `.bf16` rounds theta, phi, g, the probabilities, their
///     gradients and `outputGradient` to bfloat16 before each product.
/// - Returns: the gradients with respect to `theta` `[B, N, dk]`, `phi`
///   `[B, M, dk]` and `g` `[B, M, dv]`.
/// - Throws: `KernelError.shape` when the shapes do not fit together.
public func attentionBackward(
  theta: Tensor, phi: Tensor, g: Tensor, output: Tensor, logSumExp: Tensor,
  outputGradient: Tensor, precision: Precision = .fp32
) throws(KernelError) -> (theta: Tensor, phi: Tensor, g: Tensor) {
  let s = try AttentionShape(theta: theta, phi: phi, g: g)
  try output.expect([s.batch, s.n, s.dv], "attentionBackward: output")
  try logSumExp.expect([s.batch, s.n], "attentionBackward: logSumExp")
  try outputGradient.expect([s.batch, s.n, s.dv], "attentionBackward: outputGradient")
  var dTheta = Tensor(shape: theta.shape)
  // With no queries, dphi and dg are empty sums: the zeros they start as.
  var dPhi = Tensor(shape: phi.shape)
  var dG = Tensor(shape: g.shape)
  guard s.batch > 0, s.n > 0 else { return (dTheta, dPhi, dG) }
  theta.storage.withUnsafeBufferPointer { pt in
    phi.storage.withUnsafeBufferPointer { pp in
      g.storage.withUnsafeBufferPointer { pg in
        output.storage.withUnsafeBufferPointer { po in
          logSumExp.storage.withUnsafeBufferPointer { pl in
            outputGradient.storage.withUnsafeBufferPointer { pd in
              dTheta.storage.withUnsafeMutableBufferPointer { dt in
                dPhi.storage.withUnsafeMutableBufferPointer { dp in
                  dG.storage.withUnsafeMutableBufferPointer { dg in
                    bk_attention_backward(
                      precision.c, Int32(s.batch), Int32(s.n), Int32(s.m), Int32(s.dk),
                      Int32(s.dv), pt.baseAddress, pp.baseAddress, pg.baseAddress,
                      po.baseAddress, pl.baseAddress, pd.baseAddress, dt.baseAddress,
                      dp.baseAddress, dg.baseAddress)
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return (dTheta, dPhi, dG)
}

/// The extents shared by the attention entry points, checked once.
private struct AttentionShape {
  let batch, n, m, dk, dv: Int

  init(theta: Tensor, phi: Tensor, g: Tensor) throws(KernelError) {
    let st = try theta.dims(3, "attention: theta [B, N, dk]")
    let sp = try phi.dims(3, "attention: phi [B, M, dk]")
    let sg = try g.dims(3, "attention: g [B, M, dv]")
    (batch, n, dk) = (st[0], st[1], st[2])
    (m, dv) = (sp[1], sg[2])
    guard sp == [batch, m, dk] else {
      throw .shape("attention: phi has shape \(sp), expected [\(batch), M, \(dk)] (batch and dk of theta)")
    }
    guard sg == [batch, m, dv] else {
      throw .shape("attention: g has shape \(sg), expected [\(batch), \(m), dv] (batch of theta, M of phi)")
    }
    // Softmax over no keys is undefined, and the kernels need a score and a
    // value to work with.
    guard m > 0, dk > 0, dv > 0 else {
      throw .shape("attention: M = \(m), dk = \(dk) and dv = \(dv) must all be at least 1")
    }
    try checkInt32(batch, n, m, dk, dv)
  }
}
