import BGKernels

/// How a generator's images are drawn for evaluation.
public struct GenerationSettings: Sendable {
  /// Images to draw; image `i` is of class `i % classes`.
  public var count: Int
  /// Truncation in (0, 1] and how latents are truncated.
  public var truncation: Double = 1
  public var truncationMode: Truncation = .resample
  /// Seed of the one latent stream (drawn image by image, so the set does
  /// not depend on the batch size).
  public var seed: UInt64 = 0
  /// Generator batch size.
  public var batch: Int = 50

  public init(count: Int) { self.count = count }
}

extension InceptionExtractor {
  /// The features of images drawn from `generator` in inference mode (no
  /// state of the generator changes but its truncation, which is restored),
  /// quantised as PNG files are (`round((x + 1) * 127.5)`) before scoring.
  public func features(of generator: Generator, _ settings: GenerationSettings) throws -> InceptionFeatures {
    let model = generator.configuration, r = model.resolution
    let saved = generator.truncation
    generator.truncation = settings.truncation
    defer { generator.truncation = saved }
    var rng = SeededRandom(seed: settings.seed)
    return try features(count: settings.count) { range in
      var out: [(image: PNG.Image, label: Int?)] = []
      for start in stride(from: range.lowerBound, to: range.upperBound, by: max(1, settings.batch)) {
        let m = min(max(1, settings.batch), range.upperBound - start)
        let labels = (start..<start + m).map { $0 % model.classes }
        let latents = settings.truncationMode.latents(
          count: m, dim: model.dimZ, truncation: Float(settings.truncation), rng: &rng)
        let images = try generator.forward(
          z: Tensor(shape: [m, model.dimZ], storage: latents), labels: labels, mode: .inference)
        for i in 0..<m {
          out.append((PNG.Image(width: r, height: r, pixels: ImageGrid.pixels(images, index: i)), labels[i]))
        }
      }
      return out
    }
  }
}
