import BGKernels

/// The classes of a set of samples: indices, or class vectors `[n, classes]`
/// row-major (one-hot or soft, for interpolated classes).
public enum SampleClasses: Sendable, Equatable {
  case labels([Int])
  case vectors([Float], classes: Int)

  /// How many samples.
  public var count: Int {
    switch self {
    case .labels(let l): return l.count
    case .vectors(let v, let k): return v.count / k
    }
  }

  /// The classes of samples `range`.
  public subscript(range: Range<Int>) -> SampleClasses {
    switch self {
    case .labels(let l): return .labels(Array(l[range]))
    case .vectors(let v, let k): return .vectors(Array(v[range.lowerBound * k..<range.upperBound * k]), classes: k)
    }
  }

  /// One index per sample (a vector's largest entry), for file names and
  /// labels.
  public var labels: [Int] {
    switch self {
    case .labels(let l): return l
    case .vectors(let v, let k):
      return stride(from: 0, to: v.count, by: k).map { start in
        (0..<k).max { v[start + $0] < v[start + $1] }!
      }
    }
  }
}

/// What an interpolation row blends between its two ends.
public enum Interpolation: String, CaseIterable, Sendable {
  /// Class fixed, latents blended.
  case z
  /// Latent fixed, class embeddings blended.
  case `class`
  /// Latents and class embeddings blended.
  case both
}

/// The latents and classes of a set of samples, in the order they are
/// drawn: `latents` holds `dimZ` values per sample.
public struct SampleInputs: Sendable, Equatable {
  public var latents: [Float]
  public var classes: SampleClasses

  public init(latents: [Float], classes: SampleClasses) {
    self.latents = latents
    self.classes = classes
  }

  /// `count` samples of each of `classes`, class by class, the latents drawn
  /// in that order from one stream seeded by `seed`: what `sample --classes
  /// --count --seed` draws (it draws them batch by batch from the same
  /// stream, which gives the same values).
  public static func grid(classes: [Int], count: Int, dimZ: Int, truncation: Double, mode: Truncation, seed: UInt64) -> SampleInputs {
    var rng = SeededRandom(seed: seed)
    let latents = mode.latents(count: classes.count * count, dim: dimZ, truncation: Float(truncation), rng: &rng)
    return SampleInputs(latents: latents, classes: .labels(classes.flatMap { Array(repeating: $0, count: count) }))
  }

  /// `rows` rows of `columns` images: two ends and evenly spaced blends of
  /// the latents, of the classes (soft class vectors), or both, each row's
  /// ends drawn from `seed`'s stream and its classes from `classes`: the
  /// cells of `sample --interpolate`'s sheet.
  public static func interpolation(
    _ blend: Interpolation, classes: [Int], rows: Int, columns: Int = 10, dimZ: Int, classCount: Int,
    truncation: Double, mode: Truncation, seed: UInt64
  ) -> SampleInputs {
    var rng = SeededRandom(seed: seed)
    let k = classCount
    var z = [Float](repeating: 0, count: rows * columns * dimZ)
    var y = [Float](repeating: 0, count: rows * columns * k)
    for r in 0..<rows {
      let z0 = mode.latents(count: 1, dim: dimZ, truncation: Float(truncation), rng: &rng)
      let z1 = blend == .class ? z0 : mode.latents(count: 1, dim: dimZ, truncation: Float(truncation), rng: &rng)
      let c0 = classes[Int(rng.next() % UInt64(classes.count))]
      let c1 = blend == .z ? c0 : classes[Int(rng.next() % UInt64(classes.count))]
      for j in 0..<columns {
        let t = Float(j) / Float(columns - 1), cell = r * columns + j
        for i in 0..<dimZ { z[cell * dimZ + i] = (1 - t) * z0[i] + t * z1[i] }
        y[cell * k + c0] += 1 - t
        y[cell * k + c1] += t
      }
    }
    return SampleInputs(latents: z, classes: .vectors(y, classes: k))
  }

  /// Latent number `index` of `seed`'s stream, once for each of `classes`:
  /// the same latent drawn as every class.
  public static func sameLatent(index: Int, classes: [Int], dimZ: Int, truncation: Double, mode: Truncation, seed: UInt64) -> SampleInputs {
    var rng = SeededRandom(seed: seed)
    var z: [Float] = []
    for _ in 0...index { z = mode.latents(count: 1, dim: dimZ, truncation: Float(truncation), rng: &rng) }
    return SampleInputs(latents: Array((0..<classes.count).map { _ in z }.joined()), classes: .labels(classes))
  }

  /// How many samples.
  public var count: Int { classes.count }

  /// The inputs of samples `range`.
  public subscript(range: Range<Int>, dimZ dimZ: Int) -> SampleInputs {
    SampleInputs(latents: Array(latents[range.lowerBound * dimZ..<range.upperBound * dimZ]), classes: classes[range])
  }
}

extension Generator {
  /// Images `[m, r, r, 3]` in [-1, 1] for `inputs` in inference mode, at
  /// the generator's current truncation.
  public func images(for inputs: SampleInputs) throws(KernelError) -> Tensor {
    let m = inputs.count, dim = configuration.dimZ
    let z = try Tensor(shape: [m, dim], storage: inputs.latents)
    switch inputs.classes {
    case .labels(let labels):
      return try forward(z: z, labels: labels, mode: .inference)
    case .vectors(let v, let k):
      return try forward(z: z, classVectors: try Tensor(shape: [m, k], storage: v), mode: .inference)
    }
  }
}
