import BGKernels

/// A small image classifier for measuring generators on data that has no
/// meaningful Inception network: downsampling residual blocks (the
/// discriminator's, without spectral normalisation), ReLU, a global mean
/// pool and a linear map to the classes. The pooled vector is the
/// penultimate feature that the Fréchet classifier distance compares.
///
/// Shapes: images `[batch, resolution, resolution, 3]` in [-1, 1],
/// features `[batch, widths.last]`, logits `[batch, classes]`.
public final class DataClassifier: Module {
  public let classes: Int
  public let resolution: Int
  /// The output channels of the blocks, each of which halves the size.
  public let widths: [Int]
  let blocks: [DiscriminatorBlock]
  let linear: Linear

  /// What `backward` reads besides its layers': the last block's output
  /// (the ReLU's mask and the pooling's shape).
  private var savedFeatures: Tensor?

  /// The widths the `classifier` command trains with.
  public static let defaultWidths = [16, 32, 64]

  /// A freshly initialised classifier (orthogonal weights from `seed`);
  /// `resolution` must be divisible by `2^widths.count`.
  public init(classes: Int, resolution: Int, widths: [Int] = defaultWidths, seed: UInt64) throws(EvaluationError) {
    guard classes >= 2 else { throw EvaluationError("classifier: \(classes) classes; expected at least 2") }
    guard !widths.isEmpty, widths.allSatisfy({ $0 >= 1 }) else {
      throw EvaluationError("classifier: widths \(widths); expected at least one positive width")
    }
    let reduction = 1 << widths.count
    guard resolution >= reduction, resolution % reduction == 0 else {
      throw EvaluationError(
        "classifier: resolution \(resolution) px; expected a multiple of \(reduction) for \(widths.count) downsampling blocks")
    }
    self.classes = classes
    self.resolution = resolution
    self.widths = widths
    var rng = SeededRandom(seed: seed)
    let settings = LayerSettings(snEps: nil, bnEps: 0, initialization: .orthogonal)
    var blocks: [DiscriminatorBlock] = []
    for (i, width) in widths.enumerated() {
      blocks.append(DiscriminatorBlock(
        prefix: "blocks.\(i)", in: i == 0 ? 3 : widths[i - 1], out: width, preactivation: i > 0, downsample: true,
        settings: settings, rng: &rng))
    }
    self.blocks = blocks
    linear = Linear(prefix: "linear", in: widths[widths.count - 1], out: classes, spectralNorm: nil, initialization: .orthogonal, rng: &rng)
  }

  private var modules: [any Module] { blocks + [linear] }
  public var parameters: [Parameter] { modules.flatMap(\.parameters) }
  public var buffers: [Buffer] { modules.flatMap(\.buffers) }

  /// The penultimate features and the class logits of `images`.
  public func forward(_ images: Tensor, mode: Mode) throws(KernelError) -> (features: Tensor, logits: Tensor) {
    let s = try images.dims(4, "images")
    guard s[0] > 0, s[1] == resolution, s[2] == resolution, s[3] == 3 else {
      throw .shape("images have shape \(s); the classifier expects [batch, \(resolution), \(resolution), 3]")
    }
    savedFeatures = nil
    var h = images
    for block in blocks { h = try block.forward(h, mode: mode) }
    var pooled = try sumPool(relu(h))
    let scale = 1 / Float(h.shape[1] * h.shape[2])
    for i in 0..<pooled.count { pooled.storage[i] *= scale }
    if mode.keepsActivations { savedFeatures = h }
    return (pooled, try linear.forward(pooled, mode: mode))
  }

  /// Backpropagates `dL/dlogits` (`[batch, classes]`), accumulating every
  /// parameter gradient; returns `dL/dimages`.
  @discardableResult
  public func backward(_ dLogits: Tensor) throws(KernelError) -> Tensor {
    guard let features = savedFeatures.take() else {
      throw .shape("DataClassifier.backward called without a training- or evaluation-mode forward")
    }
    var dPooled = try linear.backward(dLogits)
    let scale = 1 / Float(features.shape[1] * features.shape[2])
    for i in 0..<dPooled.count { dPooled.storage[i] *= scale }
    var d = try reluBackward(input: features, outputGradient: try sumPoolBackward(dPooled, inputShape: features.shape))
    for block in blocks.reversed() { d = try block.backward(d) }
    return d
  }
}
