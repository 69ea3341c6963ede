import BGKernels
import Foundation

/// What a classifier file says about its network besides the weights: the
/// data it was trained on (as `train --data` names it, and the seed of the
/// built-in shapes), the classes, the recipe (whose seed names the
/// held-out split) and the accuracy on the held-out images.
public struct ClassifierRecord: Codable, Equatable, Sendable {
  public var classes: Int
  public var resolution: Int
  public var classNames: [String]
  /// The data spec, e.g. `builtin` or a folder.
  public var data: String
  /// The seed the data set was drawn with (the built-in shapes').
  public var dataSeed: UInt64
  public var recipe: ClassifierRecipe
  /// The share of the held-out images classified right: the ceiling of
  /// every accuracy measured with this classifier.
  public var heldOutAccuracy: Double

  public init(
    classNames: [String], resolution: Int, data: String, dataSeed: UInt64, recipe: ClassifierRecipe, heldOutAccuracy: Double
  ) {
    self.classes = classNames.count
    self.resolution = resolution
    self.classNames = classNames
    self.data = data
    self.dataSeed = dataSeed
    self.recipe = recipe
    self.heldOutAccuracy = heldOutAccuracy
  }
}

/// A data classifier with its record, as `biggan-fast classifier` writes
/// it: a safetensors file of the network's weights (PyTorch layouts, as
/// checkpoints) whose metadata holds the record as JSON under
/// `classifier`.
public final class TrainedClassifier {
  public let network: DataClassifier
  public let record: ClassifierRecord

  static let metadataKey = "classifier"

  public init(network: DataClassifier, record: ClassifierRecord) {
    self.network = network
    self.record = record
  }

  /// Writes the file at `path` atomically.
  public func write(to path: String) throws(SafeTensorsError) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let json = String(decoding: (try? encoder.encode(record)) ?? Data(), as: UTF8.self)
    try StateDict.save(network, to: path, metadata: [Self.metadataKey: json])
  }

  /// Loads the file at `path`: its record must be complete and consistent,
  /// and every tensor of the network there in its shape; any other file is
  /// refused with one line naming it.
  public convenience init(contentsOf path: String) throws {
    let file = try SafeTensorsFile(contentsOf: path)
    guard let json = file.metadata[Self.metadataKey] else {
      throw EvaluationError("\(path): not a classifier file (no '\(Self.metadataKey)' record in its metadata); make one with biggan-fast classifier")
    }
    let record: ClassifierRecord
    do {
      record = try JSONDecoder().decode(ClassifierRecord.self, from: Data(json.utf8))
    } catch {
      throw EvaluationError("\(path): the classifier record is not readable JSON with classes, resolution, classNames, data, dataSeed, recipe and heldOutAccuracy")
    }
    guard record.classNames.count == record.classes else {
      throw EvaluationError("\(path): the classifier record names \(record.classNames.count) classes but has \(record.classes)")
    }
    guard (0...1).contains(record.heldOutAccuracy) else {
      throw EvaluationError("\(path): the classifier record's held-out accuracy is \(record.heldOutAccuracy); expected a share in [0, 1]")
    }
    let network: DataClassifier
    do {
      try record.recipe.validate()
      network = try DataClassifier(classes: record.classes, resolution: record.resolution, widths: record.recipe.widths, seed: 0)
    } catch {
      throw EvaluationError("\(path): \(error.description)")
    }
    try StateDict.load(network, from: file)
    self.init(network: network, record: record)
  }
}
