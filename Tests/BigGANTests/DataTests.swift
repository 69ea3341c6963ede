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

  /// Shapes holding a token that lives as long as something references the
  /// data set: the loader, or its thread.
  struct TrackedShapes: ImageDataset {
    final class Token: Sendable {}
    let shapes = ShapesDataset(resolution: 32, count: 64, seed: 1)
    let token: Token
    var count: Int { shapes.count }
    var classes: Int { shapes.classes }
    var resolution: Int { shapes.resolution }
    var classNames: [String] { shapes.classNames }
    func sample(_ index: Int, epoch: Int) throws -> (pixels: [UInt8], label: Int) { shapes.sample(index, epoch: epoch) }
  }

  /// Whether `token` is released within a few seconds (the loader thread
  /// ends at its own pace).
  static func released(_ token: () -> AnyObject?) -> Bool {
    for _ in 0..<500 where token() != nil { usleep(10_000) }
    return token() == nil
  }

  @Test("a released loader, or trainer, ends its thread")
  func loaderThreadEnds() throws {
    weak var loader: BatchLoader?
    weak var token: TrackedShapes.Token?
    do {
      let t = TrackedShapes.Token()
      token = t
      let l = BatchLoader(dataset: TrackedShapes(token: t), batch: 4, seed: 5)
      loader = l
      _ = try l.next()
    }
    #expect(loader == nil, "the loader outlives its last reference")
    #expect(Self.released { token }, "the loader's thread still holds the data set")

    weak var trainer: Trainer?
    do {
      let t = TrackedShapes.Token()
      token = t
      let model = BigGANConfiguration(
        resolution: 32, generatorChannels: 2, discriminatorChannels: 2, dimZ: 8, sharedDim: 4,
        classes: 10, generatorAttention: [], discriminatorAttention: [])
      var recipe = TrainingRecipe()
      recipe.batch = 2
      let made = try Trainer(model: model, recipe: recipe, dataset: TrackedShapes(token: t))
      trainer = made
      _ = try made.trainStep()
    }
    #expect(trainer == nil)
    #expect(Self.released { token }, "the trainer's loader thread still holds the data set")
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
