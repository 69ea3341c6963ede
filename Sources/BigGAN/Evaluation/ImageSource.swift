import BGKernels
import Foundation

/// An ordered, finite set of RGB images to score, with class labels when it
/// has them.
public protocol ImageSource {
  /// The number of images.
  var count: Int { get }
  /// The number of classes, or `nil` for unlabelled images.
  var classes: Int? { get }
  /// Image `index` (any size) and its label.
  func image(_ index: Int) throws -> (image: PNG.Image, label: Int?)
}

/// Every PNG and JPEG under a folder (recursively, in sorted path order, as
/// pytorch-fid and torch-fidelity list a folder; other files are ignored),
/// at its own size. When every image sits in a first-level sub-folder the
/// sub-folders are classes, numbered in sorted order (ImageNet's layout).
public struct ImageFolder: ImageSource {
  public let root: String
  public let paths: [String]
  public let labels: [Int]?
  public let classNames: [String]?
  public var count: Int { paths.count }
  public var classes: Int? { classNames?.count }
  /// Images of more pixels than this are refused.
  public let maxPixels: Int

  /// The images under `root`; each is decoded at full size (the reference
  /// implementations' preprocessing starts from it), up to `maxPixels`.
  public init(root: String, maxPixels: Int = ImageFile.defaultMaxPixels) throws(EvaluationError) {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
      throw EvaluationError("\(root): no such folder; expected a folder of PNG or JPEG images")
    }
    guard let walker = FileManager.default.enumerator(atPath: root) else {
      throw EvaluationError("\(root): cannot list the folder")
    }
    var relative: [String] = []
    while let item = walker.nextObject() as? String {
      let name = (item as NSString).lastPathComponent
      if name.hasPrefix(".") { continue }
      if ImageFile.isImage(name) { relative.append(item) }
    }
    relative.sort()
    if let odd = relative.first(where: { !isRegularFile("\(root)/\($0)") }) {
      throw EvaluationError("\(root)/\(odd): not a regular file (a FIFO, device or folder); expected a PNG or JPEG image")
    }
    guard !relative.isEmpty else {
      throw EvaluationError("\(root): no PNG or JPEG images; expected a folder of images (or one sub-folder per class)")
    }
    let folders = relative.map { $0.split(separator: "/", maxSplits: 1) }
    if folders.allSatisfy({ $0.count == 2 }) {
      let names = Array(Set(folders.map { String($0[0]) })).sorted()
      let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
      self.classNames = names
      self.labels = folders.map { index[String($0[0])]! }
    } else {
      self.classNames = nil
      self.labels = nil
    }
    self.root = root
    self.maxPixels = maxPixels
    self.paths = relative.map { "\(root)/\($0)" }
  }

  public func image(_ index: Int) throws -> (image: PNG.Image, label: Int?) {
    let path = paths[index]
    let image = try ImageFile.read(path, maxPixels: maxPixels)
    return (image, labels?[index])
  }
}

/// A training data set (at its resolution) as images to score.
public struct DatasetImages: ImageSource {
  public let dataset: any ImageDataset
  public var count: Int { dataset.count }
  public var classes: Int? { dataset.classes }

  public init(_ dataset: any ImageDataset) { self.dataset = dataset }

  public func image(_ index: Int) throws -> (image: PNG.Image, label: Int?) {
    let (pixels, label) = try dataset.sample(index, epoch: 0)
    let r = dataset.resolution
    return (PNG.Image(width: r, height: r, pixels: pixels), label)
  }
}
