import BGKernels

/// How images become the Inception network's 299 x 299 input, as the
/// standard FID tools do it.
public enum InceptionResize: String, CaseIterable, Sendable {
  /// torch-fidelity and the TensorFlow graph: TF1 bilinear without
  /// half-pixel centres on 0...255 values, then `(x - 128) / 128`.
  case tf
  /// clean-fid: PIL's antialiased bicubic on float 0...255 values, clipped
  /// to 0...255, then `(x - 128) / 128`.
  case clean
  /// pytorch-fid: `x / 255`, PyTorch's bilinear (half-pixel centres, no
  /// antialias), then `2x - 1`.
  case pytorchFID = "pytorch-fid"

  /// The network's input size.
  public static let inputSize = 299

  /// `images` (same size, 8-bit RGB) as a `[n, 299, 299, 3]` network input.
  public func input(_ images: [PNG.Image]) throws(KernelError) -> Tensor {
    let w = images[0].width, h = images[0].height, pixels = w * h * 3
    var x = Tensor(shape: [images.count, h, w, 3])
    let divisor: Float = self == .pytorchFID ? 255 : 1
    x.storage.withUnsafeMutableBufferPointer { out in
      for (i, image) in images.enumerated() {
        for j in 0..<pixels { out[i * pixels + j] = Float(image.pixels[j]) / divisor }
      }
    }
    let size = Self.inputSize
    var y: Tensor
    switch self {
    case .tf: y = try resize(x, height: size, width: size, filter: .tfBilinear)
    case .clean: y = try resize(x, height: size, width: size, filter: .pilBicubic)
    case .pytorchFID: y = try resize(x, height: size, width: size, filter: .pytorchBilinear)
    }
    y.storage.withUnsafeMutableBufferPointer { v in
      for i in v.indices {
        switch self {
        case .tf: v[i] = (v[i] - 128) / 128
        case .clean: v[i] = (min(max(v[i], 0), 255) - 128) / 128
        case .pytorchFID: v[i] = 2 * v[i] - 1
        }
      }
    }
    return y
  }
}
