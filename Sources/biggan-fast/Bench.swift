import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// `biggan-fast bench`: whole-network timings.
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time the generator and discriminator passes of a configuration.",
    discussion: """
      Passes: g-forward (inference-mode generator forward, as in sampling),
      g-forward-backward and d-forward-backward (training mode, every
      parameter gradient and D's input gradient), and dg-step (the forward
      and backward work of one D step on [G(z); x] plus one G step through D,
      without the optimizer update), and iteration (one full training
      iteration of the paper's recipe: two D steps, each on fresh fake and
      real batches, one G step, Adam updates, orthogonal regularisation and
      the EMA of G; images/s counts every image D sees and G makes). Reports
      the median of --repeats runs after one warm-up, and the process's peak
      resident memory. With --checkpoint the generator is the one in that
      file (e.g. imported BigGAN-deep weights), sampled at --truncation.
      With --inception FILE it times the FID Inception-v3 instead (the
      inception pass): --batch uint8 images of --image-size px to pool3
      features and logits, preprocessing (--resize) included, as
      torch-fidelity's extractor does.
      Under mpirun the iteration pass runs data-parallel on the ranks with
      --batch the global batch, as `train` does, and reports the time spent
      in communication, and the rank-order sum of a gradient as large as
      both networks' (sum).
      Build with `swift build -c release`.
      """)

  enum Pass: String, CaseIterable, ExpressibleByArgument {
    case gForward = "g-forward"
    case gForwardBackward = "g-forward-backward"
    case dForwardBackward = "d-forward-backward"
    case dgStep = "dg-step"
    case iteration
  }

  @OptionGroup var model: ModelOptions

  @Option(parsing: .unconditional, help: "Batch size.")
  var batch: Int = 8

  @Option(help: "A G / G_ema safetensors file written by biggan-fast or tools/convert_pretrained.py: time its generator instead of a fresh --config one.")
  var checkpoint: String?

  @Option(parsing: .unconditional, help: "Truncation of the latents and, for imported models, of their batch-norm statistics.")
  var truncation: Double = 1

  @Option(parsing: .upToNextOption, help: "Passes to time: \(Pass.allCases.map(\.rawValue).joined(separator: ", ")).")
  var pass: [Pass] = Pass.allCases

  @OptionGroup var compute: ComputeOptions

  @Option(parsing: .unconditional, help: "Timed runs per pass.")
  var repeats: Int = 3

  @Option(parsing: .unconditional, help: "R1 penalty's gamma in the iteration pass's D steps (0: none), to time its cost.")
  var r1: Float = 0

  @Flag(help: "Print one JSON document.")
  var json = false

  @Option(help: "FID Inception-v3 weights (tools/convert_inception.py): time feature extraction instead.")
  var inception: String?

  @Option(name: .customLong("image-size"), parsing: .unconditional, help: "Input size of the inception pass's images.")
  var imageSize: Int = 32

  @Option(help: "Preprocessing of the inception pass: tf, clean or pytorch-fid.")
  var resize: InceptionResize = .tf

  func validate() throws {
    guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
    guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
    guard truncation > 0 && truncation <= 1 else {
      throw ValidationError("--truncation must be in (0, 1], got \(truncation)")
    }
    guard imageSize >= 1 else { throw ValidationError("--image-size must be at least 1, got \(imageSize)") }
    guard r1 >= 0 && r1.isFinite else { throw ValidationError("--r1 must be a number at least 0 (0: off), got \(r1)") }
  }

  /// The median and every time of `repeats` calls after one warm-up.
  func time(_ call: () throws -> Void) throws -> (median: Double, times: [Double]) {
    try call()
    var times: [Double] = []
    for _ in 0..<repeats {
      let start = ContinuousClock.now
      try call()
      times.append((ContinuousClock.now - start).seconds)
    }
    return (times.sorted()[times.count / 2], times)
  }

  /// The process's peak resident memory in bytes.
  var peakMemory: Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024  // kilobytes on Linux
  }

  /// The inception pass: `--batch` random images through preprocessing and
  /// the network.
  func benchInception(_ path: String) throws {
    // The batch's images, the network's 299 px input, and about four of
    // its widest activations (64 channels at 147 px) alive at once.
    let perImage = Double(imageSize) * Double(imageSize) * 3 + 4 * (299 * 299 * 3 + 4 * 147 * 147 * 64)
    try MemoryBudget.require(Double(batch) * perImage, for: "--batch \(batch) --image-size \(imageSize)", "timing Inception-v3")
    let network = try InceptionV3(contentsOf: path, precision: compute.precision)
    var rng = SeededRandom(seed: 3)
    let images = (0..<batch).map { _ in
      PNG.Image(width: imageSize, height: imageSize, pixels: (0..<imageSize * imageSize * 3).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    }
    let (median, times) = try time { _ = try network.features(resize.input(images)) }
    if json {
      let doc: [String: Any] = [
        "config": "inception-v3", "peak_rss_bytes": peakMemory, "resolution": imageSize, "resize": resize.rawValue,
        "batch": batch, "precision": compute.precision.rawValue, "threads": Machine.threads, "isa": Machine.instructionSet.rawValue,
        "results": [["pass": "inception", "median_s": median, "times_s": times, "images_per_s": Double(batch) / median]],
      ]
      print(String(decoding: try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys]), as: UTF8.self))
    } else {
      print("biggan-fast bench: FID Inception-v3, batch \(batch) of \(imageSize) px, resize \(resize.rawValue), \(compute.precision), \(Machine.threads) threads, \(Machine.instructionSet.rawValue)")
      print(String(format: "%-20@ %9.1f ms  %8.1f images/s", "inception", median * 1e3, Double(batch) / median))
      print(String(format: "peak memory          %9.1f MiB", Double(peakMemory) / 1048576))
    }
  }

  func run() throws {
    Machine.keepLargeAllocations()
    try inJob(threads: compute.threads) { try bench(replicas: $0) }
  }

  func bench(replicas: MPIReplicaGroup?) throws {
    if replicas != nil && (inception != nil || pass != [.iteration]) {
      throw ValidationError("under mpirun only --pass iteration runs on the ranks")
    }
    if let inception { return try benchInception(inception) }
    let file = try checkpoint.map { try SafeTensorsFile(contentsOf: $0) }
    let c = try file.map { try Checkpoint.configuration(of: $0) } ?? model.resolve()
    let generatorOnly = pass.allSatisfy { $0 == .gForward }
    try MemoryBudget.require(
      generatorOnly ? c.estimatedSamplingBytes(batch: batch) : c.estimatedTrainingBytes(batch: batch),
      for: "--batch \(batch)", "timing \(checkpoint ?? model.flags)")
    let g: Generator
    if let file {
      g = try Generator(c, seed: 1, initialization: .zeros)
      try StateDict.load(g, from: file)
    } else {
      // Timing does not depend on the weights' values; N(0, 0.02) skips the
      // orthogonalisation of every weight.
      g = try Generator(c, seed: 1, initialization: .normal(std: 0.02))
    }
    g.truncation = truncation
    g.precision = compute.precision
    var rng = SeededRandom(seed: 3)
    func latents() throws -> Tensor {
      try Tensor(shape: [batch, c.dimZ], storage: Truncation.scale.latents(count: batch, dim: c.dimZ, truncation: Float(truncation), rng: &rng))
    }
    let labels = (0..<batch).map { $0 % c.classes }
    // D and a real batch only for the passes that use them, so that the
    // generator passes' peak memory is the generator's.
    var discriminator: (d: Discriminator, real: Tensor)?
    func discriminatorAndReal() throws -> (d: Discriminator, real: Tensor) {
      if let discriminator { return discriminator }
      let d = try Discriminator(c, seed: 2, initialization: .normal(std: 0.02))
      d.precision = compute.precision
      var real = Tensor(shape: [batch, c.resolution, c.resolution, 3])
      for i in 0..<real.count { real.storage[i] = 2 * rng.uniform() - 1 }
      discriminator = (d, real)
      return (d, real)
    }
    let scoreGradient = Tensor(shape: [batch, 1], repeating: 1 / Float(batch))

    // The iteration pass runs the trainer itself on the built-in data, so
    // with its ten classes: the class embeddings, a small share of the
    // work, shrink accordingly.
    let trainer = try pass.contains(.iteration) ? iterationTrainer(c, replicas: replicas) : nil
    // Seconds each iteration spent in collective calls (with replicas).
    var communication: [Double] = []
    // The images an iteration processes, as the trainer counts them: the
    // fake and real batches of every D step and the G step's batch, each
    // accumulation included.
    var iterationImages = 0
    func body(_ p: Pass) throws -> () throws -> Void {
      switch p {
      case .iteration:
        return {
          let before = replicas?.communicationSeconds ?? 0
          iterationImages = try trainer!.trainStep().images
          communication.append((replicas?.communicationSeconds ?? 0) - before)
        }
      case .gForward:
        return { _ = try g.forward(z: try latents(), labels: labels, mode: .inference) }
      case .gForwardBackward:
        return {
          let images = try g.forward(z: try latents(), labels: labels, mode: .training)
          try g.backward(images.scaled(by: 1 / Float(images.count)))
        }
      case .dForwardBackward:
        let (d, real) = try discriminatorAndReal()
        return {
          _ = try d.forward(real, labels: labels, mode: .training)
          try d.backward(scoreGradient)
        }
      case .dgStep:
        let (d, real) = try discriminatorAndReal()
        return {
          let fake = try g.forward(z: try latents(), labels: labels, mode: .training)
          var both = fake
          both.storage += real.storage
          both = try both.reshaped([2 * batch] + Array(fake.shape.dropFirst()))
          _ = try d.forward(both, labels: labels + labels, mode: .training)
          try d.backward(Tensor(shape: [2 * batch, 1], repeating: 1 / Float(2 * batch)))
          let again = try g.forward(z: try latents(), labels: labels, mode: .training)
          _ = try d.forward(again, labels: labels, mode: .training)
          try g.backward(try d.backward(scoreGradient))
        }
      }
    }

    var results: [[String: Any]] = []
    // Rank 0 speaks for every rank.
    let speaks = (replicas?.rank ?? 0) == 0
    if !json && speaks {
      let ranks = replicas.map { ", \($0.count) ranks" } ?? ""
      print("biggan-fast bench: \(checkpoint ?? model.config), batch \(batch), \(compute.precision), \(Machine.threads) threads\(ranks), \(Machine.instructionSet.rawValue)")
    }
    for p in pass {
      let median: Double, times: [Double]
      do { (median, times) = try time(try body(p)) } catch { throw ValidationError("--pass \(p.rawValue) of \(checkpoint ?? model.flags): \(error)") }
      let images = p == .iteration ? iterationImages : batch
      let rate = Double(images) / median
      var result: [String: Any] = ["pass": p.rawValue, "median_s": median, "times_s": times, "images": images, "images_per_s": rate]
      var line = String(format: "%-20@ %9.1f ms  %8.1f images/s", p.rawValue, median * 1e3, rate)
      if let replicas, p == .iteration {
        let timed = Array(communication.suffix(repeats)).sorted()
        result["communication_s"] = timed[timed.count / 2]
        line += String(format: "  (communication %.1f ms)", timed[timed.count / 2] * 1e3)
        results.append(result)
        result = try sumResult(replicas, values: trainer!.generator.parameterCount + trainer!.discriminator.parameterCount)
        line += "\n" + String(format: "%-20@ %9.1f ms  %8.2f GB/s of gradient", "sum", result["median_s"] as! Double * 1e3, result["gigabytes_per_s"] as! Double)
      }
      results.append(result)
      if !json && speaks { print(line) }
    }
    let peak = peakMemory
    guard speaks else { return }
    if json {
      let doc: [String: Any] = [
        "config": checkpoint ?? model.config, "peak_rss_bytes": peak, "truncation": truncation, "resolution": c.resolution, "ch": c.generatorChannels,
        "batch": batch, "precision": compute.precision.rawValue, "threads": Machine.threads, "ranks": replicas?.count ?? 1,
        "isa": Machine.instructionSet.rawValue, "results": results,
        "g_parameters": g.parameterCount,
      ].merging(discriminator.map { ["d_parameters": $0.d.parameterCount] } ?? [:]) { a, _ in a }
      let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      print(String(format: "peak memory          %9.1f MiB", Double(peak) / 1048576))
    }
  }

  /// A trainer of `configuration`'s networks on the built-in data (and so
  /// with its classes), at this run's batch and precision; when there can
  /// be none (a sampling-only imported model, a batch that does not split
  /// over the ranks), an error that says why.
  func iterationTrainer(_ configuration: BigGANConfiguration, replicas: (any ReplicaGroup)?) throws -> Trainer {
    let data = ShapesDataset(resolution: configuration.resolution, count: 4096)
    var m = configuration
    m.classes = data.classes
    var recipe = TrainingRecipe()
    recipe.batch = batch
    recipe.precision = compute.precision
    recipe.r1Gamma = r1 > 0 ? r1 : nil
    do {
      return try Trainer(model: m, recipe: recipe, dataset: data, replicas: replicas)
    } catch {
      throw ValidationError("--pass iteration: cannot build a trainer of \(checkpoint ?? model.flags): \(error)")
    }
  }

  /// Times the rank-order sum over the ranks of `values` floats (a gradient
  /// of both networks): its median and the gradient bytes summed per second.
  func sumResult(_ replicas: any ReplicaGroup, values: Int) throws -> [String: Any] {
    var gradient = [Float](repeating: 1, count: values)
    let (median, times) = try time { replicas.sum(&gradient) }
    return ["pass": "sum", "median_s": median, "times_s": times, "values": values, "gigabytes_per_s": Double(4 * values) / median / 1e9]
  }
}
