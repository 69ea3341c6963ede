import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// `biggan-fast sample`: images from a trained generator.
struct Sample: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Draw samples from a run's generator (its EMA copy unless --raw).",
    discussion: """
      Truncation (--truncation t in (0, 1], --truncation-mode):
        resample  the paper's: z ~ N(0, I) with every component |z| > 2t redrawn
        scale     TF-Hub / pytorch-pretrained-BigGAN: t * truncnorm(-2, 2)
      Imported BigGAN-deep weights (tools/convert_pretrained.py) also pick their
      batch-norm statistics by t, blended between the two nearest of their 51
      rows as --statistics-blend says (pretrained: pytorch-pretrained-BigGAN's
      own blend, which reproduces its images; linear: a plain interpolation).
      Classes: indices, or names: those the run was trained on (its
      classes.json: the built-in data's "disc", "ring", ..., an image
      folder's sub-folder names, CIFAR-10's classes), or ImageNet names for
      1000-class models without names of their own, such as imported
      weights ("golden retriever"); --y takes class indices [n] or class
      vectors [n, classes] (one-hot or soft).
      Output: --out png writes class<k>_<i>.png per sample (8-bit RGB, pixel =
      round((x + 1) * 127.5)), plus with --grid one sheet with a row per class;
      --out npy writes samples.npy, float32 [n, h, w, 3] in [-1, 1].
      """)

  enum Output: String, ExpressibleByArgument, CaseIterable { case png, npy }

  @OptionGroup var source: GeneratorSource
  @Option(help: "Classes: comma-separated indices or names (the run's own, or ImageNet's for 1000-class models), or 'all'.") var classes: String = "all"
  @Option(parsing: .unconditional, help: "Samples per class.") var count: Int = 8
  @Option(parsing: .unconditional, help: "Truncation t in (0, 1].") var truncation: Double = 1
  @Option(name: .customLong("truncation-mode"), help: "How latents are truncated.") var truncationMode: Truncation = .resample
  @Option(name: .customLong("statistics-blend"), help: "Per-truncation batch-norm statistics of imported models between two rows.") var statisticsBlend: StatisticsBlend = .pretrained
  @Option(help: "Output kind: png or npy.") var out: Output = .png
  @Flag(help: "Also write one sheet with a row per class (png).") var grid = false
  @Option(help: "Output folder.") var output: String = "samples"
  @Option(parsing: .unconditional, help: "Random seed of the latents.") var seed: UInt64 = 0
  @Option(parsing: .unconditional, help: "Generator batch size.") var batch: Int = 16
  @OptionGroup var compute: ComputeOptions
  @Option(name: .customLong("standing-stats"), parsing: .unconditional, help: "Recompute batch-norm statistics over this many training-mode passes first.") var standingStats: Int?
  @Option(
    help: ArgumentHelp("Interpolation sheet (interp.png, BigGAN-PyTorch's interp_sheet): --count rows of 10 columns, endpoints drawn from --classes.", argumentType: Interpolation.self),
    transform: Interpolation.parse)
  var interpolate: Interpolation?
  @Option(help: "Truncation sweep: comma-separated values in (0, 1]; one column per value, one row per (class, latent), same latent across a row (the paper's fidelity/variety picture, written as sweep.png).") var sweep: String?
  @Option(help: "Latents from a .npy file [n, dim_z] (overrides --seed; --truncation still picks imported models' statistics).") var z: String?
  @Option(help: "Classes from a .npy file (with --z): indices [n] or class vectors [n, classes].") var y: String?

  func validate() throws {
    guard truncation > 0 && truncation <= 1 else {
      throw ValidationError("--truncation must be in (0, 1], got \(truncation)")
    }
    guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
    guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
    if let standingStats, standingStats < 1 { throw ValidationError("--standing-stats must be at least 1, got \(standingStats)") }
    guard (source.runName == nil) != (source.checkpoint == nil) else {
      throw ValidationError("pass exactly one of --run and --checkpoint")
    }
    if (z == nil) != (y == nil) { throw ValidationError("--z and --y go together") }
    if sweep != nil && z != nil { throw ValidationError("--sweep draws its own latents; it does not take --z") }
    if interpolate != nil && (sweep != nil || z != nil) {
      throw ValidationError("--interpolate goes without --sweep and --z")
    }
    _ = try sweepValues()
  }

  /// The truncation values of `--sweep`, each in (0, 1].
  func sweepValues() throws -> [Double] { try sweep.map { try truncations($0, flag: "--sweep") } ?? [] }

  func run() throws {
    Machine.keepLargeAllocations()
    compute.applyThreads()
    let sweepTruncations = try sweepValues()
    let g = try source.generator(precision: compute.precision, batch: batch).generator
    let model = g.configuration
    g.statisticsBlend = statisticsBlend

    if let standingStats {
      guard model.statisticsRows == 1 else {
        throw ValidationError("--standing-stats: this model carries per-truncation statistics (imported weights); it cannot recompute them")
      }
      var rng = SeededRandom(seed: seed &+ 1)
      try g.standingStatistics(passes: standingStats) {
        var z = Tensor(shape: [batch, model.dimZ])
        for i in 0..<z.count { z.storage[i] = rng.normal() }
        return (z, (0..<batch).map { _ in Int(rng.next() % UInt64(model.classes)) })
      }
    }

    do { try FileError.createFolder(output) } catch { throw ValidationError("--output \(error.description)") }
    guard FileManager.default.isWritableFile(atPath: output) else {
      throw ValidationError("--output \(output): folder is not writable")
    }
    if let interpolate {
      try interpolationSheet(g, model: model, mode: interpolate)
      return
    }

    let r = model.resolution
    if !sweepTruncations.isEmpty {
      // Row k keeps one generator seed, so its latent changes only by the
      // truncation across the columns; each column is generated at its own
      // truncation (imported models pick statistics by it).
      let rowCount = try imageCount(classes: try classList(model.classes).count)
      try requireHeld(rowCount, floats: 2 * sweepTruncations.count * r * r * 3, for: "sweep.\(out.rawValue)")
      let rows = try classList(model.classes).flatMap { Array(repeating: $0, count: count) }
      var columns: [Tensor] = []
      for t in sweepTruncations {
        var latents: [Float] = []
        for k in rows.indices {
          var rng = SeededRandom(seed: seed &+ UInt64(k))
          latents += truncationMode.latents(count: 1, dim: model.dimZ, truncation: Float(t), rng: &rng)
        }
        columns.append(try render(g, latents: latents, classes: .labels(rows), truncation: t))
      }
      let pixels = r * r * 3
      var sheet = Tensor(shape: [rows.count * columns.count, r, r, 3])
      for k in rows.indices {
        for (j, c) in columns.enumerated() {
          sheet.storage.replaceSubrange((k * columns.count + j) * pixels..<(k * columns.count + j + 1) * pixels, with: c.storage[k * pixels..<(k + 1) * pixels])
        }
      }
      let path = (output as NSString).appendingPathComponent(out == .npy ? "sweep.npy" : "sweep.png")
      if out == .npy {
        try NPY.write(sheet.storage, shape: sheet.shape, to: path)
      } else {
        try PNG.write(ImageGrid.sheet(sheet, columns: columns.count), to: path)
      }
      print("wrote \(path) (columns: truncation \(sweepTruncations.map { String($0) }.joined(separator: ", ")))")
      return
    }

    // Latents are drawn batch by batch from one generator, which gives the
    // same latents as drawing them all at once: nothing count-sized is
    // allocated unless the output must hold every image.
    let dim = model.dimZ, n: Int
    let inputs: (Range<Int>) -> ([Float], SampleClasses)
    if let z, let y {
      let (latents, classes) = try exactInputs(z: z, y: y, model: model)
      n = latents.count / dim
      inputs = { range in (Array(latents[range.lowerBound * dim..<range.upperBound * dim]), classes[range]) }
    } else {
      let chosen = try classList(model.classes), perClass = count
      n = try imageCount(classes: chosen.count)
      var rng = SeededRandom(seed: seed)
      inputs = { range in
        let latents = truncationMode.latents(count: range.count, dim: dim, truncation: Float(truncation), rng: &rng)
        return (latents, .labels(range.map { chosen[$0 / perClass] }))
      }
    }
    let holdAll = out == .npy || grid
    if holdAll { try requireHeld(n, floats: r * r * 3, for: out == .npy ? "samples.npy" : "the grid") }
    var held = holdAll ? Tensor(shape: [n, r, r, 3]) : nil
    var perClass: [Int: Int] = [:]
    try render(g, count: n, truncation: truncation, inputs: inputs) { start, images, classes in
      held?.storage.replaceSubrange(start * r * r * 3..<(start + images.shape[0]) * r * r * 3, with: images.storage)
      guard out == .png else { return }
      for (i, label) in classes.labels.enumerated() {
        let k = perClass[label, default: 0]
        perClass[label] = k + 1
        let path = (output as NSString).appendingPathComponent(String(format: "class%d_%04d.png", label, k))
        try PNG.write(PNG.Image(width: r, height: r, pixels: ImageGrid.pixels(images, index: i)), to: path)
      }
    }
    switch out {
    case .npy:
      let path = (output as NSString).appendingPathComponent("samples.npy")
      try NPY.write(held!.storage, shape: held!.shape, to: path)
      print("wrote \(path)")
    case .png:
      print("wrote \(n) images to \(output)")
      if grid {
        let path = (output as NSString).appendingPathComponent("grid.png")
        try PNG.write(ImageGrid.sheet(held!, columns: z == nil ? count : min(n, 8)), to: path)
        print("wrote \(path)")
      }
    }
  }

  /// `--count` samples of each of `classes` classes, refused when the
  /// product cannot be counted.
  func imageCount(classes: Int) throws -> Int {
    let (n, overflow) = classes.multipliedReportingOverflow(by: count)
    guard !overflow else {
      throw ValidationError("--count \(count): \(classes) classes of \(count) samples each are more images than can be counted")
    }
    return n
  }

  /// Refuses to hold `rows` rows of `floats` floats each at once (plus the
  /// copies a file or sheet is made of) when the machine cannot.
  func requireHeld(_ rows: Int, floats: Int, for what: String) throws {
    let bytes = Double(rows) * Double(floats) * 4 * 3
    try MemoryBudget.require(bytes, for: "--count \(count)", "holding \(rows) rows of images for \(what)")
  }

  /// `--z` and `--y` read and checked against the model.
  func exactInputs(z: String, y: String, model: BigGANConfiguration) throws -> ([Float], SampleClasses) {
    let (zv, zs) = try NPY.read(z), (yv, ys) = try NPY.read(y)
    guard zs.count == 2, zs[1] == model.dimZ, zs[0] > 0 else {
      throw ValidationError("--z \(z): shape \(zs), expected [n, \(model.dimZ)]")
    }
    if ys == [zs[0], model.classes] {
      guard yv.allSatisfy(\.isFinite) else { throw ValidationError("--y \(y): class vectors must be finite") }
      return (zv.map { Float($0) }, .vectors(yv.map { Float($0) }, classes: model.classes))
    }
    guard ys == [zs[0]] else {
      throw ValidationError("--y \(y): shape \(ys), expected [\(zs[0])] class indices or [\(zs[0]), \(model.classes)] class vectors")
    }
    let labels = try yv.map { v in
      guard v == v.rounded(), v >= 0, v < Double(model.classes) else {
        throw ValidationError("--y \(y): class \(v) is not an index in 0..<\(model.classes)")
      }
      return Int(v)
    }
    return (zv.map { Float($0) }, .labels(labels))
  }

  /// Images for `n` samples in batches of `--batch`, with a progress line
  /// on a terminal: `inputs` gives the latents (`dimZ` per sample) and
  /// classes of a range of samples, `body` gets the first sample's index,
  /// the batch's images `[m, r, r, 3]` and their classes.
  func render(
    _ g: Generator, count n: Int, truncation: Double, inputs: (Range<Int>) throws -> ([Float], SampleClasses),
    body: (Int, Tensor, SampleClasses) throws -> Void
  ) throws {
    g.truncation = truncation
    let progress = ProgressLine(total: n, unit: "images")
    for start in stride(from: 0, to: n, by: batch) {
      let m = min(batch, n - start)
      let (latents, classes) = try inputs(start..<start + m)
      let images = try g.images(for: SampleInputs(latents: latents, classes: classes))
      try body(start, images, classes)
      progress.update(start + m)
    }
    progress.finish()
  }

  /// Images `[n, r, r, 3]` for latents (`n * dimZ`) and classes, all at
  /// once (for sheets).
  func render(_ g: Generator, latents: [Float], classes: SampleClasses, truncation: Double) throws -> Tensor {
    let model = g.configuration, r = model.resolution, dim = model.dimZ
    let n = latents.count / dim
    var images = Tensor(shape: [n, r, r, 3])
    try render(g, count: n, truncation: truncation, inputs: { range in
      (Array(latents[range.lowerBound * dim..<range.upperBound * dim]), classes[range])
    }) { start, batch, _ in
      images.storage.replaceSubrange(start * r * r * 3..<start * r * r * 3 + batch.count, with: batch.storage)
    }
    return images
  }

  /// `--count` rows of 10 images: two endpoints and 8 evenly spaced blends
  /// of the latents, of the classes (soft class vectors, i.e. blends of the
  /// shared embeddings, or of every batch-norm's own), or both.
  func interpolationSheet(_ g: Generator, model: BigGANConfiguration, mode: Interpolation) throws {
    let columns = 10
    // Each image also has its latent and class vector.
    try requireHeld(count, floats: columns * (model.resolution * model.resolution * 3 + model.dimZ + model.classes), for: "interp.png")
    let inputs = SampleInputs.interpolation(
      mode, classes: try classList(model.classes), rows: count, columns: columns, dimZ: model.dimZ, classCount: model.classes,
      truncation: truncation, mode: truncationMode, seed: seed)
    let sheet = try render(g, latents: inputs.latents, classes: inputs.classes, truncation: truncation)
    let path = (output as NSString).appendingPathComponent("interp.png")
    try PNG.write(ImageGrid.sheet(sheet, columns: columns), to: path)
    print("wrote \(path)")
  }

  /// `--classes` as indices: numbers, the names the run was trained on
  /// (its classes.json), or ImageNet names for 1000-class models.
  func classList(_ classes: Int) throws -> [Int] {
    do {
      return try ClassSelection(classes: classes, runFolder: source.trainingRunFolder).indices(self.classes, input: "--classes")
    } catch { throw ValidationError(error.description) }
  }
}

extension Interpolation: ExpressibleByArgument {
  /// What the mode blends, shown per value in `--help`.
  public var defaultValueDescription: String {
    switch self {
    case .z: return "class fixed, latents blended"
    case .class: return "latent fixed, class embeddings blended"
    case .both: return "latents and class embeddings blended"
    }
  }

  /// `text` as a mode. A bad value names the flag and its modes, the
  /// message `--interpolate` has always given.
  static func parse(_ text: String) throws -> Interpolation {
    guard let mode = Interpolation(rawValue: text) else {
      let modes = allCases.map(\.rawValue)
      throw ValidationError("--interpolate must be \(modes.dropLast().joined(separator: ", ")) or \(modes.last!)")
    }
    return mode
  }
}
