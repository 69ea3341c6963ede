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

/// The images of `settings` drawn from a generator in inference mode,
/// range after range in order (one latent stream, so the images do not
/// depend on how the ranges are cut), quantised as PNG files are
/// (`round((x + 1) * 127.5)`). No state of the generator changes but its
/// truncation, set for each range and restored.
public struct GeneratedImageStream {
  public let generator: Generator
  public let settings: GenerationSettings
  private var rng: SeededRandom

  public init(_ generator: Generator, _ settings: GenerationSettings) {
    self.generator = generator
    self.settings = settings
    rng = SeededRandom(seed: settings.seed)
  }

  /// Images `range` (the next ones after the previous call's) with their
  /// classes, image `i` of class `i % classes`.
  public mutating func images(_ range: Range<Int>) throws -> [(image: PNG.Image, label: Int)] {
    let model = generator.configuration, r = model.resolution
    let saved = generator.truncation
    generator.truncation = settings.truncation
    defer { generator.truncation = saved }
    var out: [(image: PNG.Image, label: Int)] = []
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

extension InceptionExtractor {
  /// The features of images drawn from `generator` by a
  /// `GeneratedImageStream`.
  public func features(of generator: Generator, _ settings: GenerationSettings) throws -> InceptionFeatures {
    var stream = GeneratedImageStream(generator, settings)
    return try features(count: settings.count) { range in try stream.images(range).map { ($0.image, $0.label) } }
  }
}
