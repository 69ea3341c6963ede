import BGKernels

/// What the metrics read from a set of images: pool3 features `[N, D]`,
/// unbiased logits `[N, classes]`, and class labels when known.
public struct InceptionFeatures: Sendable {
  public var features: Tensor
  public var logits: Tensor
  public var labels: [Int]?
}

/// Runs images through the FID Inception-v3 in batches.
public struct InceptionExtractor {
  public let network: InceptionV3
  public let resize: InceptionResize
  public let batchSize: Int

  public init(network: InceptionV3, resize: InceptionResize = .tf, batchSize: Int = 50) {
    self.network = network
    self.resize = resize
    self.batchSize = max(1, batchSize)
  }

  /// The features of `count` images that `images(range)` hands over batch
  /// by batch (any sizes, labels optional), with a progress line.
  public func features(
    count: Int, images: (Range<Int>) throws -> [(image: PNG.Image, label: Int?)]
  ) throws -> InceptionFeatures {
    let d = network.featureDimension, c = network.classes
    var features = Tensor(shape: [count, d]), logits = Tensor(shape: [count, c])
    var labels: [Int] = [], labelled = true
    let progress = ProgressLine(total: count, unit: "images")
    for start in stride(from: 0, to: count, by: batchSize) {
      let range = start..<min(count, start + batchSize)
      let batch = try images(range)
      guard batch.count == range.count else {
        throw EvaluationError("image batch \(range) holds \(batch.count) images; expected \(range.count)")
      }
      // Runs of equal-sized images share one resize call (a whole batch of
      // generated or data-set images is one run).
      var runs: [Range<Int>] = []
      var i = 0
      while i < batch.count {
        var j = i + 1
        while j < batch.count, batch[j].image.width == batch[i].image.width,
          batch[j].image.height == batch[i].image.height
        { j += 1 }
        runs.append(i..<j)
        i = j
      }
      var input: Tensor
      if runs.count == 1 {
        input = try resize.input(batch.map(\.image))
      } else {
        input = Tensor(shape: [batch.count, InceptionResize.inputSize, InceptionResize.inputSize, 3])
        let stride = InceptionResize.inputSize * InceptionResize.inputSize * 3
        for run in runs {
          let resized = try resize.input(batch[run].map(\.image))
          input.storage.replaceSubrange(run.lowerBound * stride..<run.upperBound * stride, with: resized.storage)
        }
      }
      let out = try network.features(input)
      features.storage.replaceSubrange(range.lowerBound * d..<range.upperBound * d, with: out.features.storage)
      logits.storage.replaceSubrange(range.lowerBound * c..<range.upperBound * c, with: out.logits.storage)
      for item in batch {
        if let label = item.label { labels.append(label) } else { labelled = false }
      }
      progress.update(range.upperBound)
    }
    progress.finish()
    return InceptionFeatures(features: features, logits: logits, labels: labelled ? labels : nil)
  }

  /// The features of the first `count` images of `source` (all of them
  /// when `nil`).
  public func features(of source: any ImageSource, count: Int? = nil) throws -> InceptionFeatures {
    let n = count ?? source.count
    guard n >= 1, n <= source.count else {
      throw EvaluationError("\(n) images asked for, but the source has \(source.count)")
    }
    return try features(count: n) { range in try range.map { try source.image($0) } }
  }
}
