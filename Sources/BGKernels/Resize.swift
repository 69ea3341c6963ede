import CKernels

/// How `resize(_:height:width:filter:)` interpolates: each filter reproduces
/// the resampler of one FID tool, bit for bit.
public enum ResizeFilter: CaseIterable, Sendable {
  /// TensorFlow 1.x `resize_bilinear` without aligned corners or half-pixel
  /// centres (the original TF FID code), as torch-fidelity's
  /// `interpolate_bilinear_2d_like_tensorflow1x` computes it.
  case tfBilinear
  /// PyTorch's `F.interpolate(mode: 'bilinear', align_corners: False)` on an
  /// NCHW float tensor, as pytorch-fid runs it: half-pixel centres, no
  /// antialiasing (the arithmetic of its x86 AVX2 kernel).
  case pytorchBilinear
  /// Pillow's `Image.resize(size, BICUBIC)` on each channel as a 32-bit float
  /// image, as clean-fid runs it: antialiased when shrinking, with Pillow
  /// 13.0's order of passes. clean-fid clips the result to 0...255
  /// afterwards; this filter does not.
  case pilBicubic

  var c: bk_resize_filter {
    switch self {
    case .tfBilinear: return BK_RESIZE_TF_BILINEAR
    case .pytorchBilinear: return BK_RESIZE_TORCH_BILINEAR
    case .pilBicubic: return BK_RESIZE_PIL_BICUBIC
    }
  }
}

/// Resamples images `[n, h, w, c]` to `[n, height, width, c]` with `filter`,
/// any size to any size.
/// - Throws: `KernelError.shape` for a size below 1, `.unsupported` when
///   memory for the interpolation tables runs out.
public func resize(_ x: Tensor, height: Int, width: Int, filter: ResizeFilter) throws(KernelError)
  -> Tensor
{
  let (n, h, w, c) = try nhwc(x, "resize: x")
  guard h >= 1, w >= 1, c >= 1, height >= 1, width >= 1 else {
    throw .shape("resize: cannot resize \(x.shape) to \(height)x\(width); every extent must be at least 1")
  }
  try checkInt32(height, width, n * height * width * c)
  var y = Tensor(overwrittenShape: [n, height, width, c])
  let status = y.storage.withUnsafeMutableBufferPointer {
    bk_resize(
      filter.c, Int32(n), Int32(h), Int32(w), Int32(c), x.storage, Int32(height), Int32(width),
      $0.baseAddress)
  }
  guard status == 0 else {
    throw .unsupported("resize: out of memory resizing \(x.shape) to \(height)x\(width)")
  }
  return y
}
