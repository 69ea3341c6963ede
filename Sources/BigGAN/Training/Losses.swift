import BGKernels

/// BigGAN's hinge loss (BigGAN-PyTorch `losses.py`) with its gradients.
public enum HingeLoss {
  /// `mean(relu(1 - real)) + mean(relu(1 + fake))` as its two terms, and the
  /// gradients of their sum with respect to both score tensors.
  public static func discriminator(fake: Tensor, real: Tensor)
    -> (real: Float, fake: Float, fakeGradient: Tensor, realGradient: Tensor)
  {
    func term(_ s: Tensor, sign: Float) -> (Float, Tensor) {
      var g = Tensor(shape: s.shape)
      var loss: Double = 0
      let n = Float(max(s.count, 1))
      for i in 0..<s.count {
        let margin = 1 + sign * s.storage[i]
        if margin > 0 {
          loss += Double(margin)
          g.storage[i] = sign / n
        }
      }
      return (Float(loss / Double(n)), g)
    }
    let (lr, gr) = term(real, sign: -1), (lf, gf) = term(fake, sign: 1)
    return (lr, lf, gf, gr)
  }

  /// `-mean(fake)` and its gradient.
  public static func generator(fake: Tensor) -> (loss: Float, gradient: Tensor) {
    let n = Float(max(fake.count, 1))
    return (-fake.storage.reduce(0, +) / n, Tensor(shape: fake.shape, repeating: -1 / n))
  }
}
