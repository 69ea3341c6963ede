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

  private func conv(_ name: String, _ x: Tensor) throws -> Tensor {
    guard let layer = layers[name] else { throw EvaluationError("Inception-v3: no layer \(name)") }
    return try layer(x)
  }

  private func poolBranch(_ x: Tensor) throws -> Tensor {
    try averagePool(x, kernel: 3, stride: 1, padding: 1, countsPadding: false)
  }

  /// Mixed_5b-d: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | avg pool, 1x1.
  private func blockA(_ n: String, _ x: Tensor) throws -> Tensor {
    try concatenateChannels([
      conv("\(n).branch1x1", x),
      conv("\(n).branch5x5_2", conv("\(n).branch5x5_1", x)),
      conv("\(n).branch3x3dbl_3", conv("\(n).branch3x3dbl_2", conv("\(n).branch3x3dbl_1", x))),
      conv("\(n).branch_pool", poolBranch(x)),
    ])
  }

  /// Mixed_6a: 3x3 stride 2 | 1x1, 3x3, 3x3 stride 2 | max pool stride 2.
  private func blockB(_ n: String, _ x: Tensor) throws -> Tensor {
    try concatenateChannels([
      conv("\(n).branch3x3", x),
      conv("\(n).branch3x3dbl_3", conv("\(n).branch3x3dbl_2", conv("\(n).branch3x3dbl_1", x))),
      maxPool(x, kernel: 3, stride: 2, padding: 0),
    ])
  }

  /// Mixed_6b-e: 1x1 | 1x1, 1x7, 7x1 | 1x1, 7x1, 1x7, 7x1, 1x7 | avg pool, 1x1.
  private func blockC(_ n: String, _ x: Tensor) throws -> Tensor {
    var double = try conv("\(n).branch7x7dbl_1", x)
    for i in 2...5 { double = try conv("\(n).branch7x7dbl_\(i)", double) }
    return try concatenateChannels([
      conv("\(n).branch1x1", x),
      conv("\(n).branch7x7_3", conv("\(n).branch7x7_2", conv("\(n).branch7x7_1", x))),
      double,
      conv("\(n).branch_pool", poolBranch(x)),
    ])
  }

  /// Mixed_7a: 1x1, 3x3 stride 2 | 1x1, 1x7, 7x1, 3x3 stride 2 | max pool stride 2.
  private func blockD(_ n: String, _ x: Tensor) throws -> Tensor {
    var seven = try conv("\(n).branch7x7x3_1", x)
    for i in 2...4 { seven = try conv("\(n).branch7x7x3_\(i)", seven) }
    return try concatenateChannels([
      conv("\(n).branch3x3_2", conv("\(n).branch3x3_1", x)),
      seven,
      maxPool(x, kernel: 3, stride: 2, padding: 0),
    ])
  }

  /// Mixed_7b-c: 1x1 | 1x1, (1x3 | 3x1) | 1x1, 3x3, (1x3 | 3x1) | pool, 1x1;
  /// the pool averages (7b) or takes the maximum (7c, the FID graph's quirk).
  private func blockE(_ n: String, _ x: Tensor, maxPooled: Bool) throws -> Tensor {
    let single = try conv("\(n).branch3x3_1", x)
    let double = try conv("\(n).branch3x3dbl_2", conv("\(n).branch3x3dbl_1", x))
    let pooled = try maxPooled ? maxPool(x, kernel: 3, stride: 1, padding: 1) : poolBranch(x)
    return try concatenateChannels([
      conv("\(n).branch1x1", x),
      conv("\(n).branch3x3_2a", single), conv("\(n).branch3x3_2b", single),
      conv("\(n).branch3x3dbl_3a", double), conv("\(n).branch3x3dbl_3b", double),
      conv("\(n).branch_pool", pooled),
    ])
  }

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

  func callAsFunction(_ x: Tensor) throws(EvaluationError) -> Tensor {
    do {
      return relu(try conv2d(x, weight: weight, bias: bias, geometry: geometry, precision: precision, plan: plan))
    } catch {
      throw EvaluationError("Inception-v3 layer \(name): \(error)")
    }
  }
}

/// `[N, H, W, C_i]` tensors joined along channels.
func concatenateChannels(_ parts: [Tensor]) throws -> Tensor {
  let first = parts[0].shape
  let pixels = first[0] * first[1] * first[2]
  let total = parts.reduce(0) { $0 + $1.shape[3] }
  var out = Tensor(shape: Array(first.dropLast()) + [total])
  var offset = 0
  for part in parts {
    let c = part.shape[3]
    guard Array(part.shape.dropLast()) == Array(first.dropLast()) else {
      throw EvaluationError("Inception-v3: branch outputs \(part.shape) and \(first) differ in size")
    }
    part.storage.withUnsafeBufferPointer { src in
      out.storage.withUnsafeMutableBufferPointer { dst in
        for p in 0..<pixels {
          for j in 0..<c { dst[p * total + offset + j] = src[p * c + j] }
        }
      }
    }
    offset += c
  }
  return out
}
