import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// `biggan-fast stats`: a data set's Inception statistics, for FID, KID,
/// precision/recall and intra-class FID.
struct Stats: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write a data set's Inception statistics (.npz) for biggan-fast eval.",
    discussion: """
      The file holds mu (float64 [2048]) and sigma (float64 [2048, 2048], N-1
      normalisation), as pytorch-fid and BigGAN-PyTorch's inception moments
      do, so it works with those tools too; plus features (float32 [N, 2048])
      for KID and precision/recall, labels (int64 [N]) when the data has
      classes, and with --logits the unbiased logits (float32 [N, 1008]).
      --data takes what train --data takes ('builtin' with --resolution,
      cifar10:FOLDER, a folder of class sub-folders), a CIFAR-10 binary file
      (e.g. test_batch.bin), or any folder of PNG/JPEG images, each used at
      its own size unless --resolution centre-crops and resizes them as
      training does.
      """)

  @Option(help: "The images: a data set as train --data takes it, a CIFAR-10 .bin file, or a folder of images.")
  var data: String
  @Option(help: "Write the statistics to this .npz file.") var out: String
  @Option(parsing: .unconditional, help: "Centre-crop and resize folder images to this size first (as training does).") var resolution: Int?
  @Option(parsing: .unconditional, help: "Use only the first N images.") var count: Int?
  @Flag(help: "Also store the unbiased logits (for the data set's own Inception Score).") var logits = false
  @Flag(name: .customLong("no-features"), help: "Store mu and sigma only (no KID, precision/recall or intra-class FID against this file).") var noFeatures = false
  @OptionGroup var inception: InceptionOptions
  @OptionGroup var imageLimits: ImageOptions
  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    if let resolution, resolution < 1 { throw ValidationError("--resolution must be at least 1, got \(resolution)") }
    if let count, count < 2 { throw ValidationError("--count must be at least 2 (a covariance needs two images), got \(count)") }
  }

  func run() throws {
    Machine.keepLargeAllocations()
    compute.applyThreads()
    let extractor = try inception.extractor(precision: compute.precision)
    let source = try openImages(data, resolution: resolution, maxPixels: imageLimits.maxImagePixels)
    if let count, count > source.count {
      throw ValidationError("--count \(count): \(data) has only \(source.count) images")
    }
    let started = ContinuousClock.now
    let extracted = try extractor.features(of: source, count: count)
    var reference = try ReferenceStatistics(extracted, keepLogits: logits)
    if noFeatures { reference.features = nil; reference.labels = nil }
    try reference.write(to: out)
    let seconds = Double((ContinuousClock.now - started).components.seconds)
    print("wrote \(out): \(extracted.features.shape[0]) images, \(extracted.features.shape[1]) features (\(String(format: "%.0f", seconds)) s)")
  }
}
