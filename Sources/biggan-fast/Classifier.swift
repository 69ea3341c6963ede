import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// `biggan-fast classifier`: trains the small data classifier that `eval
/// --classifier` and the experiments' `--classifier` measure generators
/// with.
struct Classifier: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train a small classifier on real data, to measure generators where Inception means nothing.",
    discussion: """
      Trains a small residual CNN (widths --widths, no normalisation) on the
      data with Adam and a cosine-decayed learning rate, holding out
      --held-out images (at most a tenth) to measure it, and writes it to
      --out as a safetensors file that records the data, the recipe and the
      held-out accuracy. Same --seed and --threads give the same file.
      Then: biggan-fast eval --classifier FILE --run NAME.
      """)

  @Option(help: "Write the classifier to this file (.safetensors).") var out: String
  @Option(help: "Data, as train --data takes it: 'builtin' (generated shapes), a folder of class sub-folders, or cifar10:FOLDER.") var data: String = "builtin"
  @Option(parsing: .unconditional, help: "Image size the classifier reads (the generator's resolution).") var resolution: Int = 32
  @Option(parsing: .unconditional, help: "Training steps.") var steps: Int = ClassifierRecipe().steps
  @Option(parsing: .unconditional, help: "Images per step.") var batch: Int = ClassifierRecipe().batch
  @Option(name: .customLong("learning-rate"), parsing: .unconditional, help: "Adam's learning rate at the start (decays to 0).") var learningRate: Float = ClassifierRecipe().learningRate
  @Option(parsing: .unconditional, help: "Seed of the weights, the data order and the held-out split.") var seed: UInt64 = 0
  @Option(name: .customLong("held-out"), parsing: .unconditional, help: "Images held out to measure the classifier (at most a tenth of the data).") var heldOut: Int = ClassifierRecipe().heldOutImages
  @Option(help: "Channels of the downsampling blocks, comma-separated.") var widths: String = DataClassifier.defaultWidths.map(String.init).joined(separator: ",")
  @Option(parsing: .unconditional, help: "Threads (default: OMP_NUM_THREADS or one per core).") var threads: Int?
  @OptionGroup var imageLimits: ImageOptions

  func validate() throws {
    _ = try recipe()
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    guard resolution >= 1 else { throw ValidationError("--resolution must be at least 1, got \(resolution)") }
  }

  func recipe() throws -> ClassifierRecipe {
    var r = ClassifierRecipe()
    r.steps = steps
    r.batch = batch
    r.learningRate = learningRate
    r.seed = seed
    r.heldOutImages = heldOut
    r.widths = try widths.split(separator: ",", omittingEmptySubsequences: false).map { part in
      guard let w = Int(part.trimmingCharacters(in: .whitespaces)), w >= 1 else {
        throw ValidationError("--widths: '\(part)' is not a channel count; expected e.g. 16,32,64")
      }
      return w
    }
    do { try r.validate() } catch { throw ValidationError(error.description) }
    return r
  }

  func run() throws {
    Machine.keepLargeAllocations()
    if let threads { Machine.threads = threads }
    let recipe = try recipe()
    let folder = (out as NSString).deletingLastPathComponent
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder.isEmpty ? "." : folder, isDirectory: &isFolder), isFolder.boolValue else {
      throw ValidationError("--out \(out): no folder \(folder) to write it in")
    }
    let dataSeed: UInt64 = 0
    let dataset = try Train.dataset(data, resolution: resolution, seed: dataSeed, maxPixels: imageLimits.maxImagePixels)
    // Refused before training: widths that do not fit the resolution.
    do { _ = try DataClassifier(classes: dataset.classes, resolution: resolution, widths: recipe.widths, seed: 0) } catch {
      throw ValidationError(error.description)
    }
    let split = try ClassifierSplit(count: dataset.count, recipe: recipe)
    StandardError.write("classifier: \(dataset.classes) classes of \(data) at \(resolution) px, \(split.training.count) training and \(split.heldOut.count) held-out images, \(recipe.steps) steps of \(recipe.batch)\n")
    let progress = StepProgress(total: recipe.steps, imagesPerStep: recipe.batch)
    let network = try ClassifierTraining.train(on: dataset, indices: split.training, recipe: recipe) { step, loss in
      progress.update(step, loss: loss)
    }
    progress.finish()
    let accuracy = try ClassifierTraining.accuracy(of: network, on: dataset, indices: split.heldOut)
    let record = ClassifierRecord(
      classNames: dataset.classNames, resolution: resolution, data: data, dataSeed: dataSeed, recipe: recipe, heldOutAccuracy: accuracy)
    try TrainedClassifier(network: network, record: record).write(to: out)
    print(String(format: "held-out accuracy: %.2f%% (%d images)", accuracy * 100, split.heldOut.count))
    print("wrote \(out)")
  }

  /// The real images a classifier's metrics compare with: `data` (a
  /// `train --data` spec), or the data the classifier was trained on, drawn
  /// with its seed when it is that data, at the classifier's resolution.
  static func realData(of record: ClassifierRecord, data: String?, maxPixels: Int) throws -> any ImageDataset {
    let spec = data ?? record.data
    return try Train.dataset(spec, resolution: record.resolution, seed: spec == record.data ? record.dataSeed : 0, maxPixels: maxPixels)
  }
}

/// A training progress line on standard error: the step, images per
/// second, the time left and the loss, redrawn in place on a terminal and
/// printed every tenth of the run otherwise.
final class StepProgress {
  let total: Int
  let imagesPerStep: Int
  private let started = ContinuousClock.now
  private let interactive = isatty(STDERR_FILENO) != 0
  private var length = 0

  init(total: Int, imagesPerStep: Int) {
    self.total = total
    self.imagesPerStep = imagesPerStep
  }

  func update(_ step: Int, loss: Float) {
    let every = max(1, total / 10)
    guard interactive || step % every == 0 || step == total else { return }
    let seconds = (ContinuousClock.now - started).seconds
    let rate = Double(step) / max(seconds, 1e-9)
    let eta = Int((Double(total - step) / max(rate, 1e-9)).rounded())
    let text = String(
      format: "step %d/%d  %.1f img/s  ETA %dm%02ds  loss %.4f", step, total, rate * Double(imagesPerStep), eta / 60, eta % 60, loss)
    if interactive {
      StandardError.write("\r" + text + String(repeating: " ", count: max(0, length - text.count)))
      length = text.count
    } else {
      StandardError.write(text + "\n")
    }
  }

  func finish() {
    if interactive && length > 0 { StandardError.write("\n") }
  }
}
