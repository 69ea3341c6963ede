import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// Files damaged in ways that would otherwise read as plausible numbers.
struct DamagedFileTests {
  static func file(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("damaged-\(getpid())-\(name)").path
  }

  @Test("a safetensors header length a few bytes short, or a gap in the data, is refused instead of read shifted")
  func shiftedHeader() throws {
    var writer = SafeTensorsWriter()
    writer.add("a", try Tensor(shape: [3], storage: [1, 2, 3]))
    writer.add("b", try Tensor(shape: [2], storage: [4, 5]))
    let path = Self.file("ok.safetensors")
    defer { try? FileManager.default.removeItem(atPath: path) }
    try writer.write(to: path)
    #expect(try SafeTensorsFile(contentsOf: path).tensor("b").storage == [4, 5])
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let length = Int(bytes[0]) | Int(bytes[1]) << 8
    for shortBy in [1, 2] {
      var damaged = bytes
      damaged[0] = UInt8((length - shortBy) & 0xff)
      damaged[1] = UInt8((length - shortBy) >> 8)
      #expect(throws: SafeTensorsError.self, "header \(shortBy) bytes short") {
        _ = try SafeTensorsFile(data: Data(damaged), name: "short")
      }
    }
    #expect(throws: SafeTensorsError.self, "trailing bytes") {
      _ = try SafeTensorsFile(data: Data(bytes + [0, 0, 0, 0]), name: "tail")
    }
  }

  @Test("a state.json or weights file whose model sizes would overflow the layer widths is refused, not trapped on")
  func oversizedModel() throws {
    var model = BigGANConfiguration.imagenet64
    model.generatorChannels = 1 << 60
    #expect(throws: ConfigurationError.self) { try model.validate() }
    let folder = Self.file("oversized")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let state = CheckpointState(
      step: 1, model: model, recipe: TrainingRecipe.presets["tiny"]!.recipe, latentRandom: [1, 2, 3, 4],
      data: DataPosition(), generatorOptimizerStep: 1, discriminatorOptimizerStep: 1)
    try JSONEncoder().encode(state).write(to: URL(fileURLWithPath: "\(folder)/state.json"))
    do {
      _ = try Checkpoint.state(at: folder)
      Issue.record("read a state.json with 2^60 generator channels")
    } catch {
      #expect("\(error)".contains("generator channels must be at most 65536"), "\(error)")
    }
  }

  /// `images/NAME` of the test fixtures, as bytes.
  static func fixture(_ name: String) throws -> [UInt8] {
    let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("images/\(name)")))
  }

  @Test("a progressive JPEG whose header claims 65000x65000 pixels is refused before libjpeg allocates them")
  func hugeJPEGHeader() throws {
    var bytes = try Self.fixture("progressive.jpg")
    let frame = try #require(bytes.indices.dropLast().first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC2 })
    // Start-of-frame: marker, 2 length bytes, precision, then height and width.
    bytes.replaceSubrange(frame + 5..<frame + 9, with: [0xFD, 0xE8, 0xFD, 0xE8])
    let path = Self.file("huge.jpg")
    defer { try? FileManager.default.removeItem(atPath: path) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    #expect(throws: PNG.Failure(description: "\(path): not a readable JPEG (unsupported JPEG size 65000x65000 (over 1 GiB of pixels))")) {
      _ = try JPEG.read(path)
    }
  }

  @Test("a JPEG cut short is refused instead of decoded with grey rows")
  func truncatedJPEG() throws {
    let bytes = try Self.fixture("red_blue.jpg")
    let path = Self.file("cut.jpg")
    defer { try? FileManager.default.removeItem(atPath: path) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    #expect(try JPEG.read(path).width > 0)
    try Data(bytes.prefix(bytes.count * 3 / 4)).write(to: URL(fileURLWithPath: path))
    #expect(throws: PNG.Failure(description: "\(path): not a readable JPEG (Premature end of JPEG file)")) {
      _ = try JPEG.read(path)
    }
  }

  @Test("weights holding NaN or infinity are refused on load, naming the tensor")
  func nonFiniteWeights() throws {
    let model = BigGANConfiguration(
      resolution: 32, generatorChannels: 4, discriminatorChannels: 4, dimZ: 8, sharedDim: 4,
      classes: 2, generatorAttention: [], discriminatorAttention: [])
    let g = try Generator(model, seed: 1, initialization: .normal(std: 0.02))
    let path = Self.file("nan.safetensors")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let victim = g.parameters[3]
    victim.value.storage[0] = .nan
    try StateDict.save(g, to: path)
    do {
      try StateDict.load(try Generator(model, seed: 2, initialization: .zeros), from: SafeTensorsFile(contentsOf: path))
      Issue.record("loaded NaN weights")
    } catch {
      #expect("\(error)".contains("holds NaN or infinity"), "\(error)")
    }
  }
}
