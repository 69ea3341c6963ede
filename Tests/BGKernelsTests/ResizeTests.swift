import Foundation
import Testing

@testable import BGKernels

/// One fixture case of `tools/check_resize.py`: the library outputs are kept
/// on a grid of every `steps[0]`-th row and `steps[1]`-th column plus the last.
private struct ResizeCase: Decodable, Sendable {
  var name: String
  var batch, channels: Int
  var input, output, steps: [Int]

  /// The script's input: float32(m) / 1021 * 255 with
  /// m = (131 i + 71 j + 29 k + 37 b) mod 1021.
  var x: Tensor {
    let (h, w) = (input[0], input[1])
    var values: [Float] = []
    for b in 0..<batch {
      for i in 0..<h {
        for j in 0..<w {
          for k in 0..<channels {
            values.append(Float((131 * i + 71 * j + 29 * k + 37 * b) % 1021) / 1021 * 255)
          }
        }
      }
    }
    return try! Tensor(shape: [batch, h, w, channels], storage: values)
  }

  /// The values of `y` on the stored grid.
  func sampled(_ y: Tensor) -> [Float] {
    func grid(_ size: Int, _ step: Int) -> [Int] { Array(Set(stride(from: 0, to: size, by: step)).union([size - 1])).sorted() }
    let (oh, ow) = (output[0], output[1])
    var values: [Float] = []
    for b in 0..<batch {
      for i in grid(oh, steps[0]) {
        for j in grid(ow, steps[1]) {
          let at = ((b * oh + i) * ow + j) * channels
          values += y.storage[at..<at + channels]
        }
      }
    }
    return values
  }
}

/// The float32 values of a little-endian `.npy` file, with its shape.
private func readNPY(_ url: URL) throws -> (shape: [Int], values: [Float]) {
  let data = try Data(contentsOf: url)
  let headerLength = Int(data[8]) | Int(data[9]) << 8
  let header = String(decoding: data[10..<10 + headerLength], as: UTF8.self)
  #expect(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"))
  let dims = header.split(separator: "(")[1].split(separator: ")")[0]
  let shape = dims.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
  let values = data[(10 + headerLength)...].withUnsafeBytes { raw in
    (0..<raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
  }
  return (shape, values)
}

@Suite(.serialized)
struct ResizeTests {
  @Test("every filter gives the bits of its library (torch-fidelity, PyTorch, Pillow)")
  func libraryBits() throws {
    let root = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
      .appendingPathComponent("resize")
    let cases = try JSONDecoder().decode(
      [ResizeCase].self, from: Data(contentsOf: root.appendingPathComponent("cases.json")))
    #expect(cases.count == 11)
    for c in cases {
      let x = c.x
      for filter in ResizeFilter.allCases {
        let y = try resize(x, height: c.output[0], width: c.output[1], filter: filter)
        #expect(y.shape == [c.batch, c.output[0], c.output[1], c.channels])
        let (shape, expected) = try readNPY(root.appendingPathComponent("\(c.name)-\(filter).npy"))
        let ours = c.sampled(y)
        #expect(shape.reduce(1, *) == ours.count, "\(c.name) \(filter): shape \(shape)")
        expectSameBits(ours, expected, "\(c.name) \(filter)")
      }
    }
  }

  @Test("resizing to the same size returns the input unchanged")
  func identity() throws {
    var rng = SplitMix64(seed: 3)
    let x = rng.tensor([2, 13, 8, 3], scale: 255)
    for filter in ResizeFilter.allCases {
      expectSameBits(try resize(x, height: 13, width: 8, filter: filter).storage, x.storage, "\(filter)")
    }
  }

  @Test("resizing gives the same bits on 1 and 2 threads")
  func threads() throws {
    var rng = SplitMix64(seed: 11)
    let x = rng.tensor([3, 64, 48, 3], scale: 255)
    for filter in ResizeFilter.allCases {
      for (h, w) in [(299, 299), (37, 20)] {
        let one = try withThreads(1) { try resize(x, height: h, width: w, filter: filter) }
        let two = try withThreads(2) { try resize(x, height: h, width: w, filter: filter) }
        expectSameBits(one.storage, two.storage, "\(filter) to \(h)x\(w)")
      }
    }
  }

  @Test("a size below 1 or an input that is not NHWC is refused")
  func errors() {
    let x = Tensor(shape: [1, 4, 4, 3])
    #expect(throws: KernelError.self) { try resize(x, height: 0, width: 4, filter: .pilBicubic) }
    #expect(throws: KernelError.self) { try resize(Tensor(shape: [4, 4, 3]), height: 2, width: 2, filter: .tfBilinear) }
    #expect(throws: KernelError.self) { try resize(Tensor(shape: [1, 0, 4, 3]), height: 2, width: 2, filter: .pytorchBilinear) }
  }
}
