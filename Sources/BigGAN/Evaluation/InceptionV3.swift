import BGKernels
import Foundation

/// The FID Inception-v3: TensorFlow's 2015-12-05 graph as pytorch-fid and
/// torch-fidelity port it (1008 classes, no auxiliary head; average pools
/// that do not count padding in the A, C and first E blocks, a max pool in
/// the last E block's pool branch; batch-norm eps 1e-3), inference only, on
/// our kernels.
///
/// Weights come from one safetensors file with torch-fidelity's state-dict
/// names and PyTorch layouts (`tools/convert_inception.py` writes it from
/// the published `.pth` files). Each convolution's batch norm is folded
/// into its weight and bias at load. Channel counts are read from the file,
/// so reduced-width test models load too; the wiring is checked at load by
/// running a 75 x 75 image through the network.
public final class InceptionV3: @unchecked Sendable {
  /// The pool3 feature size (2048 for the published weights).
  public let featureDimension: Int
  /// The classifier's outputs (1008 for the published weights).
  public let classes: Int
  /// The precision of every convolution and of the classifier.
  public let precision: Precision

  private let layers: [String: FoldedConvolution]
  private let classifier: Tensor
  private let classifierPlan: WeightPlan?

  /// The smallest input the stride-2 stages leave non-empty.
  public static let minimumInputSize = 75

  /// Loads the network from `path`.
  ///
  /// - Throws: `EvaluationError` naming the file and the tensor that is
  ///   missing, unexpected or of the wrong shape.
  public init(contentsOf path: String, precision: Precision = .fp32) throws(EvaluationError) {
    let file: SafeTensorsFile
    do { file = try SafeTensorsFile(contentsOf: path) } catch {
      throw EvaluationError("\(error.description) (expected the FID Inception-v3 weights; see tools/convert_inception.py)")
    }
    if let format = file.metadata["format"], format != "fid-inception-v3" {
      throw EvaluationError("\(path): format '\(format)'; expected 'fid-inception-v3' (the FID Inception-v3 weights from tools/convert_inception.py)")
    }
    var expected = Set(["fc.weight", "fc.bias"])
    var layers: [String: FoldedConvolution] = [:]
    for spec in Self.convolutions {
      for suffix in ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"] {
        expected.insert("\(spec.name).\(suffix)")
      }
      layers[spec.name] = try FoldedConvolution(file, spec, precision: precision)
    }
    for (block, branches) in Self.mergedHeads {
      layers["\(block).heads"] = try FoldedConvolution(merging: branches.map { layers["\(block).\($0)"]! }, name: "\(block).heads")
    }
    if let stray = file.names.sorted().first(where: { !expected.contains($0) }) {
      throw EvaluationError("\(path): unexpected tensor '\(stray)'; expected only the 472 tensors of the FID Inception-v3")
    }
    let fc: Tensor, fcBias: Tensor
    do {
      fc = try file.tensor("fc.weight")
      fcBias = try file.tensor("fc.bias")
    } catch { throw EvaluationError(error.description) }
    guard fc.shape.count == 2, fc.shape[0] >= 2, fcBias.shape == [fc.shape[0]] else {
      throw EvaluationError("\(path): fc.weight \(fc.shape) and fc.bias \(fcBias.shape); expected [classes, features] and [classes]")
    }
    self.layers = layers
    self.classifier = fc
    self.classifierPlan = WeightPlan(matrixRows: fc.shape[0], columns: fc.shape[1], precision: precision)
    self.classes = fc.shape[0]
    self.featureDimension = fc.shape[1]
    self.precision = precision
    do {
      let probe = try features(Tensor(shape: [1, Self.minimumInputSize, Self.minimumInputSize, 3]))
      guard probe.features.shape == [1, featureDimension] else {
        throw EvaluationError("\(path): the last block gives \(probe.features.shape[1]) features but fc.weight takes \(featureDimension)")
      }
    } catch let error as EvaluationError {
      throw EvaluationError(error.description.hasPrefix(path) ? error.description : "\(path): \(error.description)")
    } catch {
      throw EvaluationError("\(path): \(error)")
    }
  }

  /// The pool3 features (`[N, featureDimension]`) and the classifier's
  /// outputs without its bias (`[N, classes]`, torch-fidelity's
  /// `logits_unbiased`, what the Inception Score takes) of `x`, images
  /// `[N, H, W, 3]` already resized and scaled to about -1...1 (see
  /// `InceptionPreprocessing`), H and W at least 75.
  public func features(_ x: Tensor) throws(EvaluationError) -> (features: Tensor, logits: Tensor) {
    guard x.shape.count == 4, x.shape[3] == 3, x.shape[1] >= Self.minimumInputSize,
      x.shape[2] >= Self.minimumInputSize
    else {
      throw EvaluationError("Inception-v3: input has shape \(x.shape); expected [N, H >= 75, W >= 75, 3]")
    }
    do {
      var h = try conv("Conv2d_1a_3x3", x)
      h = try conv("Conv2d_2a_3x3", h)
      h = try conv("Conv2d_2b_3x3", h)
      h = try maxPool(h, kernel: 3, stride: 2, padding: 0)
      h = try conv("Conv2d_3b_1x1", h)
      h = try conv("Conv2d_4a_3x3", h)
      h = try maxPool(h, kernel: 3, stride: 2, padding: 0)
      for name in ["Mixed_5b", "Mixed_5c", "Mixed_5d"] { h = try blockA(name, h) }
      h = try blockB("Mixed_6a", h)
      for name in ["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"] { h = try blockC(name, h) }
      h = try blockD("Mixed_7a", h)
      h = try blockE("Mixed_7b", h, maxPooled: false)
      h = try blockE("Mixed_7c", h, maxPooled: true)
      let pooled = try globalAveragePool(h)
      let logits = try classifierPlan.map { plan throws(KernelError) in
        try matmul(pooled, transposing: classifier, plan: plan)
      } ?? matmul(pooled, classifier, transposeB: true, precision: precision)
      return (pooled, logits)
    } catch let error as EvaluationError {
      throw error
    } catch {
      throw EvaluationError("Inception-v3: \(error)")
    }
  }

  // MARK: - Blocks
  //
  // Each block allocates its concatenated output once; every branch's last
  // convolution (ReLU fused) or pool writes its channel slice in place.
  // Branch-opening 1x1 convolutions that read the same input run as one
  // merged GEMM (see `merged`), later layers reading their slice of it.

  private func conv(_ name: String, _ x: Tensor, channels: Range<Int>? = nil) throws -> Tensor {
    try layer(name).apply(x, channels: channels)
  }

  private func conv(
    _ name: String, _ x: Tensor, channels: Range<Int>? = nil, into y: inout Tensor, at offset: inout Int
  ) throws {
    let l = try layer(name)
    try l.apply(x, channels: channels, into: &y, channelOffset: offset)
    offset += l.outChannels
  }

  private func layer(_ name: String) throws -> FoldedConvolution {
    guard let layer = layers[name] else { throw EvaluationError("Inception-v3: no layer \(name)") }
    return layer
  }

  /// `[N, H, W, channels]` of `x`'s batch and size, for a block's output.
  private func output(_ x: Tensor, height: Int? = nil, width: Int? = nil, channels: Int) -> Tensor {
    Tensor(shape: [x.shape[0], height ?? x.shape[1], width ?? x.shape[2], channels])
  }

  private func outChannels(_ names: [String]) throws -> Int {
    try names.reduce(0) { $0 + (try layer($1)).outChannels }
  }

  /// Mixed_5b-d: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | avg pool, 1x1.
  private func blockA(_ n: String, _ x: Tensor) throws -> Tensor {
    let heads = try conv("\(n).heads", x)
    let split = try layer("\(n).branch5x5_1").outChannels
    var y = output(x, channels: try outChannels(["\(n).branch1x1", "\(n).branch5x5_2", "\(n).branch3x3dbl_3", "\(n).branch_pool"]))
    var at = 0
    try conv("\(n).branch1x1", x, into: &y, at: &at)
    try conv("\(n).branch5x5_2", heads, channels: 0..<split, into: &y, at: &at)
    let double = try conv("\(n).branch3x3dbl_2", heads, channels: split..<heads.shape[3])
    try conv("\(n).branch3x3dbl_3", double, into: &y, at: &at)
    try conv("\(n).branch_pool", averagePool(x, kernel: 3, stride: 1, padding: 1, countsPadding: false), into: &y, at: &at)
    return y
  }

  /// Mixed_6a: 3x3 stride 2 | 1x1, 3x3, 3x3 stride 2 | max pool stride 2.
  private func blockB(_ n: String, _ x: Tensor) throws -> Tensor {
    let (h, w) = ((x.shape[1] - 3) / 2 + 1, (x.shape[2] - 3) / 2 + 1)
    var y = output(x, height: h, width: w, channels: try outChannels(["\(n).branch3x3", "\(n).branch3x3dbl_3"]) + x.shape[3])
    var at = 0
    try conv("\(n).branch3x3", x, into: &y, at: &at)
    try conv("\(n).branch3x3dbl_3", conv("\(n).branch3x3dbl_2", conv("\(n).branch3x3dbl_1", x)), into: &y, at: &at)
    try maxPool(x, kernel: 3, stride: 2, padding: 0, into: &y, channelOffset: at)
    return y
  }

  /// Mixed_6b-e: 1x1 | 1x1, 1x7, 7x1 | 1x1, 7x1, 1x7, 7x1, 1x7 | avg pool, 1x1.
  private func blockC(_ n: String, _ x: Tensor) throws -> Tensor {
    let heads = try conv("\(n).heads", x)
    let split = try layer("\(n).branch7x7_1").outChannels
    var y = output(x, channels: try outChannels(["\(n).branch1x1", "\(n).branch7x7_3", "\(n).branch7x7dbl_5", "\(n).branch_pool"]))
    var at = 0
    try conv("\(n).branch1x1", x, into: &y, at: &at)
    try conv("\(n).branch7x7_3", conv("\(n).branch7x7_2", heads, channels: 0..<split), into: &y, at: &at)
    var double = try conv("\(n).branch7x7dbl_2", heads, channels: split..<heads.shape[3])
    for i in 3...4 { double = try conv("\(n).branch7x7dbl_\(i)", double) }
    try conv("\(n).branch7x7dbl_5", double, into: &y, at: &at)
    try conv("\(n).branch_pool", averagePool(x, kernel: 3, stride: 1, padding: 1, countsPadding: false), into: &y, at: &at)
    return y
  }

  /// Mixed_7a: 1x1, 3x3 stride 2 | 1x1, 1x7, 7x1, 3x3 stride 2 | max pool stride 2.
  private func blockD(_ n: String, _ x: Tensor) throws -> Tensor {
    let heads = try conv("\(n).heads", x)
    let split = try layer("\(n).branch3x3_1").outChannels
    let (h, w) = ((x.shape[1] - 3) / 2 + 1, (x.shape[2] - 3) / 2 + 1)
    var y = output(x, height: h, width: w, channels: try outChannels(["\(n).branch3x3_2", "\(n).branch7x7x3_4"]) + x.shape[3])
    var at = 0
    try conv("\(n).branch3x3_2", heads, channels: 0..<split, into: &y, at: &at)
    var seven = try conv("\(n).branch7x7x3_2", heads, channels: split..<heads.shape[3])
    seven = try conv("\(n).branch7x7x3_3", seven)
    try conv("\(n).branch7x7x3_4", seven, into: &y, at: &at)
    try maxPool(x, kernel: 3, stride: 2, padding: 0, into: &y, channelOffset: at)
    return y
  }

  /// Mixed_7b-c: 1x1 | 1x1, (1x3 | 3x1) | 1x1, 3x3, (1x3 | 3x1) | pool, 1x1;
  /// the pool averages (7b) or takes the maximum (7c, the FID graph's quirk).
  private func blockE(_ n: String, _ x: Tensor, maxPooled: Bool) throws -> Tensor {
    let heads = try conv("\(n).heads", x)
    let split = try layer("\(n).branch3x3_1").outChannels
    var y = output(x, channels: try outChannels([
      "\(n).branch1x1", "\(n).branch3x3_2a", "\(n).branch3x3_2b", "\(n).branch3x3dbl_3a", "\(n).branch3x3dbl_3b", "\(n).branch_pool",
    ]))
    var at = 0
    try conv("\(n).branch1x1", x, into: &y, at: &at)
    try conv("\(n).branch3x3_2a", heads, channels: 0..<split, into: &y, at: &at)
    try conv("\(n).branch3x3_2b", heads, channels: 0..<split, into: &y, at: &at)
    let double = try conv("\(n).branch3x3dbl_2", heads, channels: split..<heads.shape[3])
    try conv("\(n).branch3x3dbl_3a", double, into: &y, at: &at)
    try conv("\(n).branch3x3dbl_3b", double, into: &y, at: &at)
    let pooled = try maxPooled
      ? maxPool(x, kernel: 3, stride: 1, padding: 1) : averagePool(x, kernel: 3, stride: 1, padding: 1, countsPadding: false)
    try conv("\(n).branch_pool", pooled, into: &y, at: &at)
    return y
  }

  /// The branch-opening 1x1 convolutions each block merges into one
  /// (`BLOCK.heads`), in output-channel order.
  static let mergedHeads: [(block: String, branches: [String])] =
    ["Mixed_5b", "Mixed_5c", "Mixed_5d"].map { ($0, ["branch5x5_1", "branch3x3dbl_1"]) }
    + ["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"].map { ($0, ["branch7x7_1", "branch7x7dbl_1"]) }
    + [("Mixed_7a", ["branch3x3_1", "branch7x7x3_1"])]
    + ["Mixed_7b", "Mixed_7c"].map { ($0, ["branch3x3_1", "branch3x3dbl_1"]) }

  // MARK: - The layer table

  /// One convolution's place in the graph: kernel, stride, padding.
  struct ConvolutionSpec {
    let name: String
    let geometry: ConvolutionGeometry
  }

  private static func spec(
    _ name: String, _ kh: Int, _ kw: Int, stride: Int = 1, pad: (Int, Int) = (0, 0)
  ) -> ConvolutionSpec {
    ConvolutionSpec(
      name: name,
      geometry: ConvolutionGeometry(
        kernelHeight: kh, kernelWidth: kw, stride: stride, paddingHeight: pad.0, paddingWidth: pad.1))
  }

  /// The 94 convolutions, in the order of the forward pass.
  static let convolutions: [ConvolutionSpec] = {
    var specs = [
      spec("Conv2d_1a_3x3", 3, 3, stride: 2), spec("Conv2d_2a_3x3", 3, 3),
      spec("Conv2d_2b_3x3", 3, 3, pad: (1, 1)), spec("Conv2d_3b_1x1", 1, 1),
      spec("Conv2d_4a_3x3", 3, 3),
    ]
    for n in ["Mixed_5b", "Mixed_5c", "Mixed_5d"] {
      specs += [
        spec("\(n).branch1x1", 1, 1), spec("\(n).branch5x5_1", 1, 1),
        spec("\(n).branch5x5_2", 5, 5, pad: (2, 2)), spec("\(n).branch3x3dbl_1", 1, 1),
        spec("\(n).branch3x3dbl_2", 3, 3, pad: (1, 1)), spec("\(n).branch3x3dbl_3", 3, 3, pad: (1, 1)),
        spec("\(n).branch_pool", 1, 1),
      ]
    }
    specs += [
      spec("Mixed_6a.branch3x3", 3, 3, stride: 2), spec("Mixed_6a.branch3x3dbl_1", 1, 1),
      spec("Mixed_6a.branch3x3dbl_2", 3, 3, pad: (1, 1)), spec("Mixed_6a.branch3x3dbl_3", 3, 3, stride: 2),
    ]
    for n in ["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"] {
      specs += [
        spec("\(n).branch1x1", 1, 1), spec("\(n).branch7x7_1", 1, 1),
        spec("\(n).branch7x7_2", 1, 7, pad: (0, 3)), spec("\(n).branch7x7_3", 7, 1, pad: (3, 0)),
        spec("\(n).branch7x7dbl_1", 1, 1), spec("\(n).branch7x7dbl_2", 7, 1, pad: (3, 0)),
        spec("\(n).branch7x7dbl_3", 1, 7, pad: (0, 3)), spec("\(n).branch7x7dbl_4", 7, 1, pad: (3, 0)),
        spec("\(n).branch7x7dbl_5", 1, 7, pad: (0, 3)), spec("\(n).branch_pool", 1, 1),
      ]
    }
    specs += [
      spec("Mixed_7a.branch3x3_1", 1, 1), spec("Mixed_7a.branch3x3_2", 3, 3, stride: 2),
      spec("Mixed_7a.branch7x7x3_1", 1, 1), spec("Mixed_7a.branch7x7x3_2", 1, 7, pad: (0, 3)),
      spec("Mixed_7a.branch7x7x3_3", 7, 1, pad: (3, 0)), spec("Mixed_7a.branch7x7x3_4", 3, 3, stride: 2),
    ]
    for n in ["Mixed_7b", "Mixed_7c"] {
      specs += [
        spec("\(n).branch1x1", 1, 1), spec("\(n).branch3x3_1", 1, 1),
        spec("\(n).branch3x3_2a", 1, 3, pad: (0, 1)), spec("\(n).branch3x3_2b", 3, 1, pad: (1, 0)),
        spec("\(n).branch3x3dbl_1", 1, 1), spec("\(n).branch3x3dbl_2", 3, 3, pad: (1, 1)),
        spec("\(n).branch3x3dbl_3a", 1, 3, pad: (0, 1)), spec("\(n).branch3x3dbl_3b", 3, 1, pad: (1, 0)),
        spec("\(n).branch_pool", 1, 1),
      ]
    }
    return specs
  }()
}

/// A convolution followed by batch norm (eps 1e-3) and ReLU, with the batch
/// norm folded into the weight and bias in float64 at load:
/// `w' = w gamma / sqrt(var + eps)`, `b' = beta - mean gamma / sqrt(var + eps)`.
struct FoldedConvolution {
  let name: String
  let weight: Tensor
  let bias: Tensor
  let geometry: ConvolutionGeometry
  let precision: Precision
  let plan: WeightPlan?

  init(_ file: SafeTensorsFile, _ spec: InceptionV3.ConvolutionSpec, precision: Precision)
    throws(EvaluationError)
  {
    let g = spec.geometry
    func load(_ suffix: String) throws(EvaluationError) -> Tensor {
      let key = "\(spec.name).\(suffix)"
      guard file.contains(key) else {
        throw EvaluationError("\(file.path): tensor '\(key)' missing; expected the FID Inception-v3 (convert the .pth with tools/convert_inception.py)")
      }
      do { return try file.tensor(key) } catch { throw EvaluationError(error.description) }
    }
    let w = try load("conv.weight")
    let s = w.shape
    guard s.count == 4, s[0] >= 1, s[1] >= 1, s[2] == g.kernelHeight, s[3] == g.kernelWidth else {
      throw EvaluationError(
        "\(file.path): '\(spec.name).conv.weight' has shape \(s); expected [out, in, \(g.kernelHeight), \(g.kernelWidth)]")
    }
    let out = s[0], inC = s[1], taps = s[2] * s[3]
    var statistics: [[Float]] = []
    for suffix in ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"] {
      let t = try load(suffix)
      guard t.shape == [out] else {
        throw EvaluationError("\(file.path): '\(spec.name).\(suffix)' has shape \(t.shape); expected [\(out)]")
      }
      statistics.append(t.storage)
    }
    let (gamma, beta, mean, variance) = (statistics[0], statistics[1], statistics[2], statistics[3])
    guard variance.allSatisfy({ $0 >= 0 }), (w.storage + gamma + beta + mean).allSatisfy(\.isFinite) else {
      throw EvaluationError("\(file.path): '\(spec.name)' holds NaN, infinity or a negative running variance")
    }
    var folded = [Float](repeating: 0, count: w.count)
    var bias = [Float](repeating: 0, count: out)
    for o in 0..<out {
      let scale = Double(gamma[o]) / (Double(variance[o]) + 1e-3).squareRoot()
      bias[o] = Float(Double(beta[o]) - Double(mean[o]) * scale)
      // OIHW -> OHWI.
      for i in 0..<inC {
        for t in 0..<taps {
          folded[(o * taps + t) * inC + i] = Float(Double(w.storage[(o * inC + i) * taps + t]) * scale)
        }
      }
    }
    self.name = spec.name
    self.weight = try! Tensor(shape: [out, s[2], s[3], inC], storage: folded)
    self.bias = try! Tensor(shape: [out], storage: bias)
    self.geometry = g
    self.precision = precision
    self.plan = WeightPlan(convolutionWeight: weight.shape, precision: precision)
  }

  /// Convolutions of one geometry that read the same input, as one with
  /// their output channels side by side.
  init(merging parts: [FoldedConvolution], name: String) throws(EvaluationError) {
    let first = parts[0]
    guard parts.allSatisfy({ $0.geometry == first.geometry && Array($0.weight.shape.dropFirst()) == Array(first.weight.shape.dropFirst()) })
    else { throw EvaluationError("Inception-v3: \(parts.map(\.name)) do not take the same input; cannot merge them") }
    let out = parts.reduce(0) { $0 + $1.outChannels }
    self.name = name
    self.weight = try! Tensor(shape: [out] + first.weight.shape.dropFirst(), storage: parts.flatMap(\.weight.storage))
    self.bias = try! Tensor(shape: [out], storage: parts.flatMap(\.bias.storage))
    self.geometry = first.geometry
    self.precision = first.precision
    self.plan = WeightPlan(convolutionWeight: weight.shape, precision: precision)
  }

  var outChannels: Int { weight.shape[0] }

  /// ReLU(conv(x) + bias) of `x`'s `channels` (all when `nil`).
  func apply(_ x: Tensor, channels: Range<Int>? = nil) throws(EvaluationError) -> Tensor {
    guard let out = geometry.outputSize(height: x.shape[1], width: x.shape[2]) else {
      throw EvaluationError("Inception-v3 layer \(name): a \(x.shape[1])x\(x.shape[2]) input is too small")
    }
    var y = Tensor(shape: [x.shape[0], out.height, out.width, outChannels])
    try apply(x, channels: channels, into: &y, channelOffset: 0)
    return y
  }

  /// `apply(_:channels:)` written into channels `channelOffset...` of `y`.
  func apply(_ x: Tensor, channels: Range<Int>?, into y: inout Tensor, channelOffset: Int) throws(EvaluationError) {
    do {
      try conv2d(
        x, inputChannels: channels, weight: weight, bias: bias, geometry: geometry, precision: precision,
        plan: plan, relu: true, into: &y, channelOffset: channelOffset)
    } catch {
      throw EvaluationError("Inception-v3 layer \(name): \(error)")
    }
  }
}
