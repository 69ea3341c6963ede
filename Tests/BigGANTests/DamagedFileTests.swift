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

  @Test("a state.json whose model sizes would overflow the layer widths is refused, not trapped on")
  func oversizedModel() throws {
    var model = BigGANConfiguration.imagenet64
    model.generatorChannels = 1 << 60
    #expect(throws: ConfigurationError.self) { try model.validate() }
    let folder = Self.file("oversized")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let state = CheckpointState(
      step: 1, model: model, recipe: TrainingPreset.all["tiny"]!.recipe, schedule: TrainingPreset.all["tiny"]!.schedule,
      latentRandom: [1, 2, 3, 4],
      data: DataPosition(), generatorOptimizerStep: 1, discriminatorOptimizerStep: 1)
    try JSONEncoder().encode(state).write(to: URL(fileURLWithPath: "\(folder)/state.json"))
    do {
      _ = try Checkpoint.state(at: folder)
      Issue.record("read a state.json with 2^60 generator channels")
    } catch {
      #expect("\(error)".contains("generator channels must be at most \(Int32.max)"), "\(error)")
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

  @Test("a truncated JPEG is an error naming the file, not a grey image; so is one whose header claims 18000x19000")
  func truncatedJPEG() throws {
    let bytes = ImageDecodingTests.gradientJPEG
    let path = Self.file("truncated.jpg")
    defer { try? FileManager.default.removeItem(atPath: path) }
    try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
    do {
      _ = try JPEG.read(path)
      Issue.record("decoded a truncated JPEG")
    } catch {
      #expect(error.description == "\(path): not a readable JPEG (Premature end of JPEG file)")
    }
    // The start-of-frame marker's height and width.
    var forged = [UInt8](bytes)
    let sof = try #require((0..<forged.count - 1).first { forged[$0] == 0xff && forged[$0 + 1] == 0xc0 })
    forged[sof + 5...sof + 8] = [0x4a, 0x38, 0x46, 0x50]  // 19000, 18000
    try Data(forged).write(to: URL(fileURLWithPath: path))
    #expect(throws: PNG.Failure(description: "\(path): 18000x19000 pixels is more than the limit of \(ImageFile.defaultMaxPixels) (--max-image-pixels)")) {
      _ = try JPEG.read(path)
    }
    // Decoded at 1/8 for a small target, it is within the cap, and what is
    // missing is an error.
    #expect(throws: PNG.Failure.self) { _ = try JPEG.read(path, minimumSide: 32) }
  }

  @Test(".npy shapes whose element count overflows, or exceeds the data, are refused by name")
  func npyShapes() throws {
    func npy(_ shape: String, body: Int) -> [UInt8] {
      var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape)), }"
      header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
      let n = header.utf8.count
      return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(header.utf8) + [UInt8](repeating: 0, count: body)
    }
    for shape in ["4611686018427387904, 4", "9223372036854775807, 9223372036854775807", "3037000500, 3037000500", "99999999999999999999"] {
      #expect(throws: NPY.Failure.self, "\(shape)") { _ = try NPY.decode(npy(shape, body: 16), name: "x.npy") }
    }
    #expect(try NPY.decode(npy("2, 2", body: 16), name: "x.npy").shape == [2, 2])
  }

  @Test("a checkpoint whose metadata describes a model too big for the machine is refused before the model is built")
  func hugeConfiguration() throws {
    var model = BigGANConfiguration.cifar32
    model.generatorChannels = 1_000_000_000
    model.discriminatorChannels = 1_000_000_000
    let config = String(decoding: try JSONEncoder().encode(model), as: UTF8.self)
    var writer = SafeTensorsWriter(metadata: ["config": config])
    writer.add("a", try Tensor(shape: [1], storage: [1]))
    let path = Self.file("huge.safetensors")
    defer { try? FileManager.default.removeItem(atPath: path) }
    try writer.write(to: path)
    do {
      _ = try Checkpoint.configuration(of: SafeTensorsFile(contentsOf: path))
      Issue.record("accepted a ch 1e9 configuration")
    } catch {
      #expect("\(error)".hasPrefix("\(path): the generator its metadata describes would need about "), "\(error)")
    }
  }
}
