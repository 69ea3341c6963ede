import BGKernels
import Foundation
import Testing

@testable import BigGAN

@Suite(.serialized)
struct DataTests {
  @Test("the built-in shapes are deterministic, labelled index % 10, and differ between classes")
  func shapes() throws {
    let data = ShapesDataset(resolution: 32, count: 100, seed: 7)
    let a = data.sample(13), b = data.sample(13)
    #expect(a.pixels == b.pixels)
    #expect(a.label == 3)
    #expect(a.pixels.count == 32 * 32 * 3)
    #expect(data.sample(14).pixels != a.pixels)
    #expect(ShapesDataset(resolution: 32, count: 100, seed: 8).sample(13).pixels != a.pixels)
    // Foreground and background both present: the shape is drawn.
    #expect(Set(a.pixels).count > 20)
  }

  @Test("the loader visits every image once per epoch in a seeded order, whatever the timing")
  func loaderOrder() throws {
    let data = ShapesDataset(resolution: 8, count: 12, seed: 1)
    func labels(_ loader: BatchLoader, _ n: Int) throws -> [Int] {
      try (0..<n).flatMap { _ in try loader.next().labels }
    }
    let first = try labels(BatchLoader(dataset: data, batch: 4, seed: 5), 6)
    let again = try labels(BatchLoader(dataset: data, batch: 4, seed: 5), 6)
    #expect(first == again)
    #expect(first[0..<12].sorted() == Array(0..<12).map { $0 % 10 }.sorted())
    // Restarting from a saved position continues the same sequence.
    let loader = BatchLoader(dataset: data, batch: 4, seed: 5)
    _ = try labels(loader, 4)
    let resumed = BatchLoader(dataset: data, batch: 4, seed: 5, position: loader.position)
    let continued = try labels(resumed, 2)
    #expect(continued == Array(first[16..<24]))
    let images = try BatchLoader(dataset: data, batch: 2, seed: 5).next().images
    #expect(images.shape == [2, 8, 8, 3])
    #expect(images.storage.allSatisfy { $0 >= -1 && $0 <= 1 })
  }

  @Test("PNG sheets round-trip through libpng; unreadable files are a one-line error")
  func png() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("png-\(getpid())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let data = ShapesDataset(resolution: 32, count: 20, seed: 3)
    var images = Tensor(shape: [20, 32, 32, 3])
    for i in 0..<20 {
      let p = data.sample(i).pixels
      for j in 0..<p.count { images.storage[i * p.count + j] = Float(p[j]) / 127.5 - 1 }
    }
    let sheet = ImageGrid.sheet(images, columns: 10)
    let path = folder.appendingPathComponent("sheet.png").path
    try PNG.write(sheet, to: path)
    #expect(try PNG.read(path) == sheet)
    #expect(sheet.width == 10 * 34 + 2 && sheet.height == 2 * 34 + 2)
    let broken = folder.appendingPathComponent("broken.png").path
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: broken))
    #expect(throws: PNG.Failure.self) { try PNG.read(broken) }
    #expect(throws: PNG.Failure.self) { try PNG.read(folder.appendingPathComponent("missing.png").path) }
    if let keep = ProcessInfo.processInfo.environment["BIGGAN_KEEP_SHEET"] { try PNG.write(sheet, to: keep) }
  }
}
