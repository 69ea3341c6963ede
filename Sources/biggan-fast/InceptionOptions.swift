import ArgumentParser
import BGKernels
import BigGAN
import Foundation

extension InceptionResize: ExpressibleByArgument {}

/// The Inception network `stats` and `eval` score images with.
struct InceptionOptions: ParsableArguments {
  static let environmentVariable = "BIGGAN_FAST_INCEPTION"

  @Option(help: "The FID Inception-v3 weights (safetensors from tools/convert_inception.py); default: $\(environmentVariable).")
  var inception: String?

  @Option(help: "Preprocessing to 299 px: tf (torch-fidelity, TF1 bilinear), clean (clean-fid, PIL bicubic) or pytorch-fid.")
  var resize: InceptionResize = .tf

  @Option(name: .customLong("inception-batch"), parsing: .unconditional, help: "Images per Inception batch.") var inceptionBatch: Int = 50

  func validate() throws {
    guard inceptionBatch >= 1 else { throw ValidationError("--inception-batch must be at least 1, got \(inceptionBatch)") }
  }

  /// Whether a weights file was named, by flag or environment.
  var isGiven: Bool { weightsPath != nil }

  private var weightsPath: String? {
    let path = inception ?? ProcessInfo.processInfo.environment[Self.environmentVariable]
    return path?.isEmpty == false ? path : nil
  }

  /// The network, loaded; without a weights file, one line on where to get
  /// and how to convert it.
  func extractor(precision: Precision) throws -> InceptionExtractor {
    guard let path = weightsPath else {
      throw ValidationError(
        "no Inception weights: pass --inception FILE or set \(Self.environmentVariable); download pt_inception-2015-12-05-6726825d.pth (github.com/mseitzer/pytorch-fid/releases/tag/fid_weights) and convert it with tools/convert_inception.py")
    }
    guard FileManager.default.fileExists(atPath: path) else {
      throw ValidationError("--inception \(path): no such file; convert the published weights with tools/convert_inception.py")
    }
    return InceptionExtractor(network: try InceptionV3(contentsOf: path, precision: precision), resize: resize, batchSize: inceptionBatch)
  }
}

/// Images to score: a data set spec as `train --data` takes it, a CIFAR-10
/// binary file, or a folder of images at their own size.
func openImages(_ spec: String, resolution: Int?, maxPixels: Int) throws -> any ImageSource {
  if spec.hasSuffix(".bin") { return DatasetImages(try CIFAR10Dataset(files: [spec])) }
  if spec.hasPrefix("cifar10:") { return DatasetImages(try Train.dataset(spec, resolution: resolution ?? 32, seed: 0)) }
  if spec == "builtin" && resolution == nil {
    throw ValidationError("--data builtin: pass --resolution (the shapes are drawn at any size)")
  }
  if let resolution { return DatasetImages(try Train.dataset(spec, resolution: resolution, seed: 0, maxPixels: maxPixels)) }
  return try ImageFolder(root: spec, maxPixels: maxPixels)
}
