import Foundation

/// A bad data set, named with the path and what was expected.
public struct DatasetError: Error, CustomStringConvertible, Equatable {
  public let description: String
}

/// Images in one sub-folder per class (ImageNet's layout), PNG or JPEG,
/// classes numbered in sorted folder order. Each image is centre-cropped on
/// its long edge and resampled to the resolution (big JPEGs are decoded at
/// a reduced size first); with `flip`, each draw is mirrored or not by a
/// coin seeded by the index and the epoch.
public struct FolderDataset: ImageDataset {
  public let root: String
  public let resolution: Int
  public let classNames: [String]
  public let flip: Bool
  /// Skip unreadable images (reported once on standard error, replaced by
  /// the next image) instead of failing the run.
  public let skipBad: Bool
  /// Images of more pixels than this are refused (or skipped).
  public let maxPixels: Int
  let files: [(path: String, label: Int)]
  public var count: Int { files.count }
  public var classes: Int { classNames.count }

  public init(
    root: String, resolution: Int, flip: Bool = false, skipBad: Bool = false,
    maxPixels: Int = ImageFile.defaultMaxPixels
  ) throws {
    let fm = FileManager.default
    var isFolder: ObjCBool = false
    guard fm.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
      throw DatasetError(description: "\(root): no such folder; expected one sub-folder of images per class")
    }
    let names = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter { name in
      var sub: ObjCBool = false
      return !name.hasPrefix(".") && fm.fileExists(atPath: "\(root)/\(name)", isDirectory: &sub) && sub.boolValue
    }.sorted()
    guard !names.isEmpty else {
      throw DatasetError(description: "\(root): no class sub-folders; expected one sub-folder of images per class")
    }
    var files: [(String, Int)] = []
    for (label, name) in names.enumerated() {
      let images = ((try? fm.contentsOfDirectory(atPath: "\(root)/\(name)")) ?? [])
        .filter(ImageFile.isImage).sorted()
      guard !images.isEmpty else {
        throw DatasetError(description: "\(root)/\(name): empty class folder; expected PNG or JPEG images")
      }
      for image in images where !isRegularFile("\(root)/\(name)/\(image)") {
        throw DatasetError(description: "\(root)/\(name)/\(image): not a regular file (a FIFO, device or folder); expected a PNG or JPEG image")
      }
      files += images.map { ("\(root)/\(name)/\($0)", label) }
    }
    self.root = root
    self.resolution = resolution
    self.classNames = names
    self.flip = flip
    self.skipBad = skipBad
    self.maxPixels = maxPixels
    self.files = files
  }

  public func sample(_ index: Int, epoch: Int) throws -> (pixels: [UInt8], label: Int) {
    var i = index
    for _ in 0..<files.count {
      let (path, label) = files[i]
      do {
        let image = try ImageFile.read(path, minimumSide: resolution, maxPixels: maxPixels)
        var rng = SeededRandom(seed: UInt64(index) &* 0x2545_F491_4F6C_DD1D &+ UInt64(epoch))
        return (image.centreSquare(size: resolution, mirrored: flip && rng.next() & 1 == 1), label)
      } catch {
        guard skipBad else { throw DatasetError(description: "\(error.description); pass --skip-bad to skip such files") }
        StandardError.write("skipping \(error.description)\n")
        i = (i + 1) % files.count
      }
    }
    throw DatasetError(description: "\(root): no readable image")
  }
}

/// CIFAR-10 in its binary format: `data_batch_1.bin` ... `data_batch_5.bin`,
/// each record a label byte and a 32x32 image as 3 planes of 1024 bytes.
public struct CIFAR10Dataset: ImageDataset {
  public let resolution = 32
  public let classNames = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
  public var classes: Int { 10 }
  let records: [UInt8]
  public var count: Int { records.count / 3073 }

  /// Reads every `data_batch_*.bin` in `folder` (the training set).
  public init(folder: String) throws {
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
      .filter { $0.hasPrefix("data_batch_") && $0.hasSuffix(".bin") }.sorted()
    guard !names.isEmpty else {
      throw DatasetError(description: "\(folder): no data_batch_*.bin files; expected the CIFAR-10 binary version")
    }
    try self.init(files: names.map { "\(folder)/\($0)" })
  }

  /// Reads the given binary files (e.g. `test_batch.bin`), in order.
  public init(files: [String]) throws {
    var records: [UInt8] = []
    for path in files {
      guard let data = FileManager.default.contents(atPath: path) else {
        throw DatasetError(description: "\(path): unreadable")
      }
      guard data.count % 3073 == 0, !data.isEmpty else {
        throw DatasetError(description: "\(path): \(data.count) bytes is not a whole number of 3073-byte CIFAR-10 records")
      }
      let bytes = [UInt8](data)
      for r in stride(from: 0, to: bytes.count, by: 3073) where bytes[r] > 9 {
        throw DatasetError(description: "\(path): record \(r / 3073) has label \(bytes[r]); expected 0...9")
      }
      records += bytes
    }
    self.records = records
  }

  public func sample(_ index: Int, epoch: Int = 0) -> (pixels: [UInt8], label: Int) {
    let r = index * 3073
    var pixels = [UInt8](repeating: 0, count: 3072)
    for p in 0..<1024 {
      for c in 0..<3 { pixels[p * 3 + c] = records[r + 1 + c * 1024 + p] }
    }
    return (pixels, Int(records[r]))
  }
}

/// Whether `path` is a plain file (reading a FIFO or device named like an
/// image would block or never end).
func isRegularFile(_ path: String) -> Bool {
  var info = stat()
  return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}
