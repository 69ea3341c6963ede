import BGKernels
import Foundation

/// How a data classifier is trained: its widths, Adam's learning rate
/// (cosine-decayed to zero over the steps), the batch, the steps, the seed
/// of its weights, data order and held-out split, and how many images are
/// held out.
public struct ClassifierRecipe: Codable, Equatable, Sendable {
  public var steps = 1000
  public var batch = 32
  public var learningRate: Float = 2e-3
  public var seed: UInt64 = 0
  public var widths = DataClassifier.defaultWidths
  /// Images held out of training to measure the classifier (at most a
  /// tenth of the data).
  public var heldOutImages = 2000

  public init() {}

  /// One line naming the first setting out of range.
  public func validate() throws(EvaluationError) {
    guard steps >= 1, batch >= 1, heldOutImages >= 1 else {
      throw EvaluationError("classifier recipe: steps \(steps), batch \(batch), held-out images \(heldOutImages); each must be at least 1")
    }
    guard learningRate > 0, learningRate.isFinite else {
      throw EvaluationError("classifier recipe: learning rate \(learningRate); expected a positive number")
    }
  }

  /// The learning rate of update `step` (1-based): half a cosine from the
  /// full rate down to zero, which ends a short run at a settled minimum.
  func learningRate(at step: Int) -> Float {
    learningRate * Float(0.5 * (1 + cos(Double.pi * Double(step - 1) / Double(steps))))
  }
}

/// The images of a data set a classifier trains on and those held out to
/// measure it: a seeded order, so a classifier's file (its recipe) names
/// its held-out images exactly.
public struct ClassifierSplit: Sendable {
  public let heldOut: [Int]
  public let training: [Int]

  /// The split of `count >= 2` images by `recipe`'s seed and held-out size.
  public init(count: Int, recipe: ClassifierRecipe) throws(EvaluationError) {
    guard count >= 2 else { throw EvaluationError("classifier data: \(count) images; expected at least 2 (some to train on, some held out)") }
    var order = Array(0..<count)
    var random = SeededRandom(seed: recipe.seed ^ 0x5EED_C1A5_5EED)
    order.shuffle(using: &random)
    let held = max(1, min(recipe.heldOutImages, count / 10))
    heldOut = Array(order[0..<held])
    training = Array(order[held...])
  }
}

/// Training a `DataClassifier` with Adam and the softmax cross-entropy,
/// and measuring it.
public enum ClassifierTraining {
  /// A classifier trained on `indices` of `dataset` by `recipe`;
  /// `progress(step, loss)` is called after every update. The same recipe
  /// and thread count give the same weights, bit for bit.
  public static func train(
    on dataset: any ImageDataset, indices: [Int], recipe: ClassifierRecipe,
    progress: (_ step: Int, _ loss: Float) -> Void = { _, _ in }
  ) throws -> DataClassifier {
    try recipe.validate()
    guard !indices.isEmpty else { throw EvaluationError("classifier data: no images to train on") }
    let network = try DataClassifier(classes: dataset.classes, resolution: dataset.resolution, widths: recipe.widths, seed: recipe.seed)
    let adam = Adam(parameters: network.parameters, learningRate: recipe.learningRate, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
    let loader = BatchLoader(dataset: dataset, batch: recipe.batch, seed: recipe.seed &+ 1, indices: indices)
    defer { loader.stop() }
    for step in 1...recipe.steps {
      let (images, labels) = try loader.next()
      network.zeroGradients()
      let (_, logits) = try network.forward(images, mode: .training)
      let (loss, gradient) = try SoftmaxCrossEntropy.loss(logits: logits, labels: labels)
      guard loss.isFinite else { throw EvaluationError("classifier training diverged at step \(step) (loss \(loss)); lower the learning rate") }
      try network.backward(gradient)
      adam.learningRate = recipe.learningRate(at: step)
      try adam.update()
      progress(step, loss)
    }
    return network
  }

  /// The share of `indices` of `dataset` that `network` assigns to their
  /// own class.
  public static func accuracy(of network: DataClassifier, on dataset: any ImageDataset, indices: [Int]) throws -> Double {
    let outputs = try network.outputs(count: indices.count) { range in try range.map { try dataset.sample(indices[$0], epoch: 0) } }
    return accuracy(outputs.predictions, outputs.labels)
  }

  /// The share of `predictions` equal to `labels`.
  static func accuracy(_ predictions: [Int], _ labels: [Int]) -> Double {
    Double(zip(predictions, labels).filter { $0 == $1 }.count) / Double(max(labels.count, 1))
  }
}

extension DataClassifier {
  /// What the classifier makes of a set of images: penultimate features
  /// `[count, widths.last]`, predicted classes (the largest logit) and the
  /// images' own labels.
  public struct Outputs {
    public var features: Tensor
    public var predictions: [Int]
    public var labels: [Int]
  }

  /// The outputs for `count` images (RGB bytes, `resolution` square, with a
  /// label) that `images(range)` hands over `batch` at a time.
  public func outputs(
    count: Int, batch: Int = 100, images: (Range<Int>) throws -> [(pixels: [UInt8], label: Int)]
  ) throws -> Outputs {
    let d = widths[widths.count - 1], size = resolution * resolution * 3
    var out = Outputs(features: Tensor(shape: [count, d]), predictions: [], labels: [])
    for start in stride(from: 0, to: count, by: batch) {
      let range = start..<min(count, start + batch)
      let items = try images(range)
      guard items.count == range.count else {
        throw EvaluationError("classifier input: image batch \(range) holds \(items.count) images; expected \(range.count)")
      }
      var input = Tensor(shape: [range.count, resolution, resolution, 3])
      for (b, item) in items.enumerated() {
        guard item.pixels.count == size else {
          throw EvaluationError("classifier input: an image of \(item.pixels.count) bytes; expected \(resolution)x\(resolution) RGB")
        }
        for j in 0..<size { input.storage[b * size + j] = Float(item.pixels[j]) / 127.5 - 1 }
        out.labels.append(item.label)
      }
      let (features, logits) = try forward(input, mode: .inference)
      out.features.storage.replaceSubrange(range.lowerBound * d..<range.upperBound * d, with: features.storage)
      for b in 0..<range.count {
        let row = logits.storage[b * classes..<(b + 1) * classes]
        out.predictions.append(row.indices.max { row[$0] < row[$1] }! - b * classes)
      }
    }
    return out
  }
}
