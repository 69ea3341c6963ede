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
      Output: --out png writes class<k>_<i>.png per sample (8-bit RGB, pixel =
      round((x + 1) * 127.5)), plus with --grid one sheet with a row per class;
      --out npy writes samples.npy, float32 [n, h, w, 3] in [-1, 1].
      """)

  enum Output: String, ExpressibleByArgument, CaseIterable { case png, npy }

  @Option(name: .customLong("run"), help: "Run name: samples its newest checkpoint.") var runName: String?
  @Option(help: "Folder that holds run folders.") var runs: String = "runs"
  @Option(help: "A checkpoint folder, or a G / G_ema safetensors file written by biggan-fast.") var checkpoint: String?
  @Flag(help: "Use the raw generator weights instead of their moving average.") var raw = false
  @Option(help: "Classes: comma-separated indices, or 'all'.") var classes: String = "all"
  @Option(help: "Samples per class.") var count: Int = 8
  @Option(help: "Truncation t in (0, 1].") var truncation: Float = 1
  @Option(name: .customLong("truncation-mode"), help: "resample or scale.") var truncationMode: String = "resample"
  @Option(help: "Output kind: png or npy.") var out: Output = .png
  @Flag(help: "Also write one sheet with a row per class (png).") var grid = false
  @Option(help: "Output folder.") var output: String = "samples"
  @Option(help: "Random seed of the latents.") var seed: UInt64 = 0
  @Option(help: "Generator batch size.") var batch: Int = 16
  @Option(help: "Precision of every product: fp32 or bf16.") var precision: Precision = .fp32
  @Option(help: "Threads (default: OMP_NUM_THREADS or one per core).") var threads: Int?
  @Option(name: .customLong("standing-stats"), help: "Recompute batch-norm statistics over this many training-mode passes first.") var standingStats: Int?
  @Option(help: "Interpolation sheet (interp.png, BigGAN-PyTorch's interp_sheet): z (class fixed, latents blended), class (latent fixed, class embeddings blended) or both; --count rows of 10 columns, endpoints drawn from --classes.") var interpolate: String?
  @Option(help: "Truncation sweep: comma-separated values in (0, 1]; one column per value, one row per (class, latent), same latent across a row (the paper's fidelity/variety picture, written as sweep.png).") var sweep: String?
  @Option(help: "Latents from a .npy file [n, dim_z] (overrides --seed and truncation).") var z: String?
  @Option(help: "Class indices from a .npy file [n] (with --z).") var y: String?

  func validate() throws {
    guard truncation > 0 && truncation <= 1 else {
      throw ValidationError("--truncation must be in (0, 1], got \(truncation)")
    }
    guard Truncation(rawValue: truncationMode) != nil else {
      throw ValidationError("--truncation-mode must be resample or scale, got '\(truncationMode)'")
    }
    guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
    guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    if let standingStats, standingStats < 1 { throw ValidationError("--standing-stats must be at least 1, got \(standingStats)") }
    guard (runName == nil) != (checkpoint == nil) else {
      throw ValidationError("pass exactly one of --run and --checkpoint")
    }
    if (z == nil) != (y == nil) { throw ValidationError("--z and --y go together") }
    if sweep != nil && z != nil { throw ValidationError("--sweep draws its own latents; it does not take --z") }
    if let interpolate {
      guard ["z", "class", "both"].contains(interpolate) else {
        throw ValidationError("--interpolate must be z, class or both, got '\(interpolate)'")
      }
      guard sweep == nil && z == nil else { throw ValidationError("--interpolate goes without --sweep and --z") }
    }
    _ = try sweepValues()
  }

  /// The truncation values of `--sweep`, each in (0, 1].
  func sweepValues() throws -> [Float] {
    guard let sweep else { return [] }
    let values = try sweep.split(separator: ",").map { part -> Float in
      guard let v = Float(part.trimmingCharacters(in: .whitespaces)), v > 0, v <= 1 else {
        throw ValidationError("--sweep: '\(part)' is not a truncation in (0, 1]")
      }
      return v
    }
    guard !values.isEmpty else { throw ValidationError("--sweep needs at least one value") }
    return values
  }

  /// The weights file and the model it belongs to.
  func source() throws -> (SafeTensorsFile, BigGANConfiguration) {
    let name = raw ? "G.safetensors" : "G_ema.safetensors"
    var path: String
    if let runName {
      let folder = ((runs as NSString).appendingPathComponent(runName) as NSString).appendingPathComponent("checkpoint")
      guard let latest = Checkpoint.all(in: folder).last else {
        throw ValidationError("no checkpoint in \((runs as NSString).appendingPathComponent(runName)); train first or pass --checkpoint")
      }
      path = "\(latest)/\(name)"
    } else {
      path = checkpoint!
      var isFolder: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
        throw ValidationError("--checkpoint \(path): no such file or folder")
      }
      if isFolder.boolValue { path = "\(path)/\(name)" }
    }
    let file = try SafeTensorsFile(contentsOf: path)
    return (file, try Checkpoint.configuration(of: file))
  }

  func run() throws {
    Machine.keepLargeAllocations()
    if let threads { Machine.threads = threads }
    let (file, model) = try source()
    let sweepTruncations = try sweepValues()
    let g = try Generator(model, seed: 0, initialization: .zeros)
    try StateDict.load(g, from: file)
    g.precision = precision

    var latents: [Float], labels: [Int]
    if let z, let y {
      let (zv, zs) = try NPY.read(z), (yv, ys) = try NPY.read(y)
      guard zs.count == 2, zs[1] == model.dimZ else {
        throw ValidationError("--z \(z): shape \(zs), expected [n, \(model.dimZ)]")
      }
      guard ys == [zs[0]] else { throw ValidationError("--y \(y): shape \(ys), expected [\(zs[0])]") }
      latents = zv.map { Float($0) }
      labels = try yv.map { v in
        guard v == v.rounded(), v >= 0, Int(v) < model.classes else {
          throw ValidationError("--y \(y): class \(v) is not an index in 0..<\(model.classes)")
        }
        return Int(v)
      }
    } else if !sweepTruncations.isEmpty {
      // Row r keeps one generator seed, so its latent changes only by the
      // truncation across the columns.
      let rows = try classList(model.classes).flatMap { Array(repeating: $0, count: count) }
      labels = rows.flatMap { Array(repeating: $0, count: sweepTruncations.count) }
      latents = []
      for r in rows.indices {
        for t in sweepTruncations {
          var rng = SeededRandom(seed: seed &+ UInt64(r))
          latents += Truncation(rawValue: truncationMode)!.latents(count: 1, dim: model.dimZ, truncation: t, rng: &rng)
        }
      }
    } else {
      let chosen = try classList(model.classes)
      labels = chosen.flatMap { Array(repeating: $0, count: count) }
      var rng = SeededRandom(seed: seed)
      latents = Truncation(rawValue: truncationMode)!.latents(
        count: labels.count, dim: model.dimZ, truncation: truncation, rng: &rng)
    }

    if let standingStats {
      var rng = SeededRandom(seed: seed &+ 1)
      try g.standingStatistics(passes: standingStats) {
        var z = Tensor(shape: [batch, model.dimZ])
        for i in 0..<z.count { z.storage[i] = rng.normal() }
        return (z, (0..<batch).map { _ in Int(rng.next() % UInt64(model.classes)) })
      }
    }

    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    if let interpolate {
      try interpolationSheet(g, model: model, mode: interpolate)
      return
    }
    guard FileManager.default.isWritableFile(atPath: output) else {
      throw ValidationError("--output \(output): folder is not writable")
    }
    let n = labels.count, r = model.resolution
    var images = Tensor(shape: [n, r, r, 3])
    let started = ContinuousClock.now
    for start in stride(from: 0, to: n, by: batch) {
      let m = min(batch, n - start)
      let zb = try Tensor(shape: [m, model.dimZ], storage: Array(latents[start * model.dimZ..<(start + m) * model.dimZ]))
      let out = try g.forward(z: zb, labels: Array(labels[start..<start + m]), mode: .evaluation)
      images.storage.replaceSubrange(start * r * r * 3..<(start + m) * r * r * 3, with: out.storage)
      if isatty(STDERR_FILENO) != 0 {
        let t = ContinuousClock.now - started
        let s = Double(t.components.seconds) + Double(t.components.attoseconds) * 1e-18
        FileHandle.standardError.write(Data(String(format: "\r%d/%d images  %.2f img/s", start + m, n, Double(start + m) / s).utf8))
      }
    }
    if isatty(STDERR_FILENO) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }

    switch out {
    case .npy:
      let path = (output as NSString).appendingPathComponent("samples.npy")
      try NPY.write(images.storage, shape: images.shape, to: path)
      print("wrote \(path)")
    case .png where !sweepTruncations.isEmpty:
      let path = (output as NSString).appendingPathComponent("sweep.png")
      try PNG.write(ImageGrid.sheet(images, columns: sweepTruncations.count), to: path)
      print("wrote \(path) (columns: truncation \(sweepTruncations.map { String($0) }.joined(separator: ", ")))")
    case .png:
      var perClass: [Int: Int] = [:]
      for i in 0..<n {
        let k = perClass[labels[i], default: 0]
        perClass[labels[i]] = k + 1
        let path = (output as NSString).appendingPathComponent(String(format: "class%d_%04d.png", labels[i], k))
        try PNG.write(PNG.Image(width: r, height: r, pixels: ImageGrid.pixels(images, index: i)), to: path)
      }
      print("wrote \(n) images to \(output)")
      if grid {
        let path = (output as NSString).appendingPathComponent("grid.png")
        try PNG.write(ImageGrid.sheet(images, columns: z == nil ? count : min(n, 8)), to: path)
        print("wrote \(path)")
      }
    }
  }

  /// `--count` rows of 10 images: two endpoints and 8 evenly spaced blends.
  func interpolationSheet(_ g: Generator, model: BigGANConfiguration, mode: String) throws {
    let classes = try classList(model.classes)
    var rng = SeededRandom(seed: seed)
    let columns = 10, dim = model.dimZ, shared = model.sharedDim
    var z = Tensor(shape: [count * columns, dim]), e = Tensor(shape: [count * columns, shared])
    let truncation = Truncation(rawValue: truncationMode)!
    for r in 0..<count {
      let z0 = truncation.latents(count: 1, dim: dim, truncation: self.truncation, rng: &rng)
      let z1 = mode == "class" ? z0 : truncation.latents(count: 1, dim: dim, truncation: self.truncation, rng: &rng)
      let c0 = classes[Int(rng.next() % UInt64(classes.count))]
      let c1 = mode == "z" ? c0 : classes[Int(rng.next() % UInt64(classes.count))]
      let ends = try g.classEmbeddings([c0, c1])
      for k in 0..<columns {
        let t = Float(k) / Float(columns - 1), row = r * columns + k
        for j in 0..<dim { z.storage[row * dim + j] = (1 - t) * z0[j] + t * z1[j] }
        for j in 0..<shared { e.storage[row * shared + j] = (1 - t) * ends.storage[j] + t * ends.storage[shared + j] }
      }
    }
    var images: [Float] = []
    for start in stride(from: 0, to: count * columns, by: batch) {
      let m = min(batch, count * columns - start)
      let zb = try Tensor(shape: [m, dim], storage: Array(z.storage[start * dim..<(start + m) * dim]))
      let eb = try Tensor(shape: [m, shared], storage: Array(e.storage[start * shared..<(start + m) * shared]))
      images += try g.forward(z: zb, classEmbeddings: eb, mode: .evaluation).storage
    }
    let r = model.resolution
    let sheet = try Tensor(shape: [count * columns, r, r, 3], storage: images)
    let path = (output as NSString).appendingPathComponent("interp.png")
    try PNG.write(ImageGrid.sheet(sheet, columns: columns), to: path)
    print("wrote \(path)")
  }

  func classList(_ classes: Int) throws -> [Int] {
    if self.classes == "all" { return Array(0..<classes) }
    return try self.classes.split(separator: ",").map { part in
      guard let k = Int(part.trimmingCharacters(in: .whitespaces)), k >= 0, k < classes else {
        throw ValidationError("--classes: '\(part)' is not a class index in 0..<\(classes)")
      }
      return k
    }
  }
}
