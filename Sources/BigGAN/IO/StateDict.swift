import BGKernels
import Foundation

/// A model's weights as PyTorch sees them: every parameter and buffer under
/// its BigGAN-PyTorch state-dict name, in PyTorch's layouts.
///
/// Layouts differ in two places, converted here and nowhere else:
/// convolution weights are `[out, kh, kw, in]` inside and `[out, in, kh, kw]`
/// in files; the generator's stem linear emits its 4x4x16ch output in NHWC
/// order inside and in NCHW order (PyTorch's `view(-1, C, 4, 4)`) in files,
/// so the rows of its weight, bias and `u0` are permuted.
public enum StateDict {
  /// The model's tensors in file layout, in state-dict order.
  public static func tensors(of model: any Module) -> [(name: String, tensor: Tensor)] {
    let stem = stemChannels(model)
    return (model.parameters.map { ($0.name, $0.value) } + model.buffers.map { ($0.name, $0.value) })
      .map { ($0.0, toFile($0.0, $0.1, stem: stem)) }
  }

  /// The model's gradients in file layout, keyed by parameter name.
  public static func gradients(of model: any Module) -> [String: Tensor] {
    let stem = stemChannels(model)
    var out: [String: Tensor] = [:]
    for p in model.parameters { out[p.name] = toFile(p.name, p.gradient, stem: stem) }
    return out
  }

  /// Loads every parameter and buffer from `file` (names and PyTorch shapes
  /// must match exactly; extra tensors in the file are an error too).
  public static func load(_ model: any Module, from file: SafeTensorsFile) throws(StateDictError) {
    let stem = stemChannels(model)
    var expected = Set<String>()
    func fill(_ name: String, _ current: Tensor) throws(StateDictError) -> Tensor {
      expected.insert(name)
      guard file.contains(name) else { throw .missing(file: file.path, name: name) }
      let want = toFile(name, current, stem: stem).shape
      let t: Tensor
      do { t = try file.tensor(name) } catch { throw .unreadable(error.description) }
      guard t.shape == want else {
        throw .shape(file: file.path, name: name, found: t.shape, expected: want)
      }
      guard t.storage.allSatisfy(\.isFinite) else { throw .nonFinite(file: file.path, name: name) }
      return fromFile(name, t, ourShape: current.shape, stem: stem)
    }
    for p in model.parameters { p.value = try fill(p.name, p.value) }
    for b in model.buffers { b.value = try fill(b.name, b.value) }
    if let extra = file.names.first(where: { !expected.contains($0) }) {
      throw .unexpected(file: file.path, name: extra)
    }
  }

  /// Writes the model atomically as a safetensors file with `metadata`.
  public static func save(_ model: any Module, to path: String, metadata: [String: String] = [:]) throws(SafeTensorsError) {
    var writer = SafeTensorsWriter(metadata: metadata)
    for (name, t) in tensors(of: model) { writer.add(name, t) }
    try writer.write(to: path)
  }

  /// Channels of the generator's 4x4 stem, or nil for other models.
  private static func stemChannels(_ model: any Module) -> Int? {
    (model as? Generator).map { $0.configuration.stemChannels }
  }

  private static func isStem(_ name: String) -> Bool {
    name == "linear.weight" || name == "linear.bias" || name == "linear.u0"
  }

  static func toFile(_ name: String, _ t: Tensor, stem: Int?) -> Tensor {
    if t.shape.count == 4 && name.hasSuffix(".weight") {
      return permute(t, [0, 3, 1, 2])
    }
    if let c = stem, isStem(name) { return permuteStemRows(t, channels: c, toFile: true) }
    return t
  }

  static func fromFile(_ name: String, _ t: Tensor, ourShape: [Int], stem: Int?) -> Tensor {
    if t.shape.count == 4 && name.hasSuffix(".weight") {
      return permute(t, [0, 2, 3, 1])
    }
    if let c = stem, isStem(name) { return permuteStemRows(t, channels: c, toFile: false) }
    return t
  }

  /// Row r of the stem in NCHW order is channel r / 16, pixel r % 16; in
  /// NHWC order it is pixel r / C, channel r % C.
  private static func permuteStemRows(_ t: Tensor, channels c: Int, toFile: Bool) -> Tensor {
    let rows = 16 * c
    let cols = t.count / rows
    var out = t
    for ch in 0..<c {
      for px in 0..<16 {
        let nchw = ch * 16 + px, nhwc = px * c + ch
        let (from, to) = toFile ? (nhwc, nchw) : (nchw, nhwc)
        for j in 0..<cols { out.storage[to * cols + j] = t.storage[from * cols + j] }
      }
    }
    return out
  }

  /// A 4-D transpose: output axis i is input axis `order[i]`.
  static func permute(_ t: Tensor, _ order: [Int]) -> Tensor {
    let s = t.shape
    let outShape = order.map { s[$0] }
    var strides = [Int](repeating: 1, count: 4)
    for i in (0..<3).reversed() { strides[i] = strides[i + 1] * s[i + 1] }
    let inStrides = order.map { strides[$0] }
    var out = Tensor(shape: outShape)
    var o = 0
    for a in 0..<outShape[0] {
      for b in 0..<outShape[1] {
        for c in 0..<outShape[2] {
          let base = a * inStrides[0] + b * inStrides[1] + c * inStrides[2]
          for d in 0..<outShape[3] {
            out.storage[o] = t.storage[base + d * inStrides[3]]
            o += 1
          }
        }
      }
    }
    return out
  }
}

/// A weights file that does not fit the model.
public enum StateDictError: Error, CustomStringConvertible, Equatable {
  case missing(file: String, name: String)
  case unexpected(file: String, name: String)
  case shape(file: String, name: String, found: [Int], expected: [Int])
  case unreadable(String)
  case nonFinite(file: String, name: String)

  public var description: String {
    switch self {
    case .missing(let f, let n): return "\(f): no tensor '\(n)', which this model needs (another configuration?)"
    case .unexpected(let f, let n): return "\(f): tensor '\(n)' does not belong to this model (another configuration?)"
    case .shape(let f, let n, let found, let expected):
      return "\(f): tensor '\(n)' has shape \(found), this model expects \(expected) (another configuration?)"
    case .unreadable(let m): return m
    case .nonFinite(let f, let n): return "\(f): tensor '\(n)' holds NaN or infinity (a diverged or damaged checkpoint)"
    }
  }
}
