import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// Real-data loaders on small files the tests write themselves (and one
/// committed JPEG), including truncated and corrupt ones.
@Suite(.serialized)
struct LoaderTests {
  static func folder(_ name: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())").path
    try? FileManager.default.removeItem(atPath: path)
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  static func solid(_ w: Int, _ h: Int, _ rgb: (UInt8, UInt8, UInt8)) -> PNG.Image {
    PNG.Image(width: w, height: h, pixels: (0..<(w * h)).flatMap { _ in [rgb.0, rgb.1, rgb.2] })
  }

  @Test("image folders: classes in sorted folder order, centre crop on the long edge, resize")
  func folders() throws {
    let root = try Self.folder("folders")
    defer { try? FileManager.default.removeItem(atPath: root) }
    for name in ["b_dog", "a_cat"] { try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true) }
    // A wide image: blue borders left and right, red in the centre square.
    var wide = Self.solid(30, 10, (0, 0, 255))
    for y in 0..<10 { for x in 10..<20 { wide.pixels[(y * 30 + x) * 3..<(y * 30 + x) * 3 + 3] = [255, 0, 0] } }
    try PNG.write(wide, to: "\(root)/a_cat/wide.png")
    try PNG.write(Self.solid(7, 7, (0, 255, 0)), to: "\(root)/b_dog/small.png")
    let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent("images/red_blue.jpg").path, toPath: "\(root)/b_dog/photo.jpg")
    let data = try FolderDataset(root: root, resolution: 4)
    #expect(data.classNames == ["a_cat", "b_dog"])
    #expect(data.count == 3)
    let (cat, label) = try data.sample(0, epoch: 0)
    #expect(label == 0)
    #expect(cat.count == 4 * 4 * 3)
    #expect(stride(from: 0, to: cat.count, by: 3).allSatisfy { cat[$0] == 255 && cat[$0 + 2] == 0 })
    let (dog, dogLabel) = try data.sample(2, epoch: 0)
    #expect(dogLabel == 1 && dog[1] == 255)
    // The JPEG (left half red, right half blue) decodes and crops to its centre.
    let (photo, _) = try data.sample(1, epoch: 0)
    #expect(photo[0] > 150 && photo[2] < 80)
    #expect(photo[(3 * 4 + 3) * 3 + 2] > 150)
  }

  @Test("bad files: a clear error naming the file, or skipped with --skip-bad")
  func badFiles() throws {
    let root = try Self.folder("bad")
    defer { try? FileManager.default.removeItem(atPath: root) }
    try FileManager.default.createDirectory(atPath: "\(root)/only", withIntermediateDirectories: true)
    try PNG.write(Self.solid(8, 8, (9, 9, 9)), to: "\(root)/only/a.png")
    let png = try Data(contentsOf: URL(fileURLWithPath: "\(root)/only/a.png"))
    try png.prefix(png.count / 2).write(to: URL(fileURLWithPath: "\(root)/only/b_truncated.png"))
    try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: "\(root)/only/c_fake.jpg"))
    let strict = try FolderDataset(root: root, resolution: 8)
    #expect(throws: DatasetError.self) { try strict.sample(1, epoch: 0) }
    #expect(throws: DatasetError.self) { try strict.sample(2, epoch: 0) }
    do { _ = try strict.sample(2, epoch: 0) } catch {
      #expect("\(error)".contains("c_fake.jpg"))
    }
    let lenient = try FolderDataset(root: root, resolution: 8, skipBad: true)
    #expect(try lenient.sample(1, epoch: 0).pixels == (try lenient.sample(0, epoch: 0).pixels))
    try FileManager.default.createDirectory(atPath: "\(root)/empty", withIntermediateDirectories: true)
    #expect(throws: DatasetError.self) { try FolderDataset(root: root, resolution: 8) }
    #expect(throws: DatasetError.self) { try FolderDataset(root: "\(root)/missing", resolution: 8) }
  }

  @Test("CIFAR-10 binary batches: label byte then three 1024-byte planes")
  func cifar() throws {
    let root = try Self.folder("cifar")
    defer { try? FileManager.default.removeItem(atPath: root) }
    var record = [UInt8](repeating: 0, count: 3073)
    record[0] = 7
    for p in 0..<1024 { record[1 + p] = 10; record[1025 + p] = 20; record[2049 + p] = UInt8(p % 256) }
    try Data(record + record).write(to: URL(fileURLWithPath: "\(root)/data_batch_1.bin"))
    let data = try CIFAR10Dataset(folder: root)
    #expect(data.count == 2)
    let (pixels, label) = data.sample(1)
    #expect(label == 7)
    #expect(Array(pixels[0..<6]) == [10, 20, 0, 10, 20, 1])
    try Data(record.prefix(3000)).write(to: URL(fileURLWithPath: "\(root)/data_batch_2.bin"))
    #expect(throws: DatasetError.self) { try CIFAR10Dataset(folder: root) }
    record[0] = 12
    try Data(record).write(to: URL(fileURLWithPath: "\(root)/data_batch_2.bin"))
    #expect(throws: DatasetError.self) { try CIFAR10Dataset(folder: root) }
  }

  @Test("top singular values match a matrix built with known ones")
  func singularValues() throws {
    var rng = SeededRandom(seed: 21)
    let (rows, cols) = (9, 14)
    func orthonormal(_ n: Int, _ len: Int) -> Tensor {
      var t = Tensor(shape: [n, len])
      for i in 0..<t.count { t.storage[i] = rng.normal() }
      SingularValues.orthonormalizeRows(&t)
      return t
    }
    let u = orthonormal(rows, rows), v = orthonormal(rows, cols)
    let sigma: [Float] = [5, 3, 2.5, 1, 0.8, 0.5, 0.3, 0.2, 0.1]
    var w = Tensor(shape: [rows, cols])
    for i in 0..<rows {
      for j in 0..<cols {
        var s: Float = 0
        for k in 0..<rows { s += u.storage[k * rows + i] * sigma[k] * v.storage[k * cols + j] }
        w.storage[i * cols + j] = s
      }
    }
    let top = try SingularValues.top(w, count: 3, iterations: 200)
    for (a, b) in zip(top, sigma.prefix(3)) { #expect(abs(a - b) <= 1e-3 * b) }
  }
}
