import BGKernels
import Foundation

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

/// The softmax cross-entropy of class logits, averaged over the batch, with
/// its gradient (what a classifier trains with).
public enum SoftmaxCrossEntropy {
  /// `mean_b(logsumexp(logits_b) - logits_b[labels_b])` for logits
  /// `[batch, classes]` and labels in `0..<classes`, and its gradient
  /// `(softmax(logits) - onehot(labels)) / batch`; accumulated in float64
  /// with the largest logit of each row subtracted first.
  public static func loss(logits: Tensor, labels: [Int]) throws(KernelError) -> (loss: Float, gradient: Tensor) {
    let s = try logits.dims(2, "logits")
    let (n, c) = (s[0], s[1])
    guard n == labels.count, n > 0, labels.allSatisfy({ (0..<c).contains($0) }) else {
      throw .shape("logits \(s) with \(labels.count) labels; expected one label in 0..<\(c) per row")
    }
    var gradient = Tensor(shape: s)
    var total = 0.0
    for b in 0..<n {
      let row = b * c
      var largest = -Double.infinity
      for j in 0..<c { largest = max(largest, Double(logits.storage[row + j])) }
      var sum = 0.0
      for j in 0..<c { sum += exp(Double(logits.storage[row + j]) - largest) }
      total += largest + log(sum) - Double(logits.storage[row + labels[b]])
      for j in 0..<c {
        let p = exp(Double(logits.storage[row + j]) - largest) / sum
        gradient.storage[row + j] = Float((p - (j == labels[b] ? 1 : 0)) / Double(n))
      }
    }
    return (Float(total / Double(n)), gradient)
  }
}
