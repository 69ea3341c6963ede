import CImageIO
import Foundation

/// PNG and JPEG files read by their extension, with a cap on the pixels
/// decoded: a few hundred bytes of header can claim gigapixels.
public enum ImageFile {
  /// The default cap: 8192 x 8192 pixels (192 MiB of RGB), far above any
  /// image trained on or scored, far below what a forged header claims.
  public static let defaultMaxPixels = 8192 * 8192

  /// Whether `path` names a PNG or JPEG file this reads.
  public static func isImage(_ path: String) -> Bool {
    ["png", "jpg", "jpeg"].contains((path as NSString).pathExtension.lowercased())
  }

  /// The image at `path` as 8-bit RGB; JPEGs are decoded at a reduced size
  /// when that still leaves a short side of at least `2 * minimumSide`.
  public static func read(_ path: String, minimumSide: Int = 0, maxPixels: Int = defaultMaxPixels) throws(PNG.Failure) -> PNG.Image {
    (path as NSString).pathExtension.lowercased() == "png"
      ? try PNG.read(path, maxPixels: maxPixels)
      : try JPEG.read(path, minimumSide: minimumSide, maxPixels: maxPixels)
  }

  /// Runs one of CImageIO's decoders and turns its result into an image or
  /// a one-line failure naming the file.
  static func decode(
    _ path: String, kind: String, maxPixels: Int,
    _ decoder: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<CChar>, Int) -> Int32
  ) throws(PNG.Failure) -> PNG.Image {
    var pixels: UnsafeMutablePointer<UInt8>?
    var width: Int32 = 0, height: Int32 = 0
    var message = [CChar](repeating: 0, count: 256)
    let status = message.withUnsafeMutableBufferPointer { decoder(&pixels, &width, &height, $0.baseAddress!, $0.count) }
    if status == BK_IMAGE_TOO_LARGE {
      throw PNG.Failure(description: "\(path): \(width)x\(height) pixels is more than the limit of \(maxPixels) (--max-image-pixels)")
    }
    guard status == 0, let pixels else {
      let reason = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
      throw PNG.Failure(description: "\(path): not a readable \(kind) (\(reason))")
    }
    defer { free(pixels) }
    let count = Int(width) * Int(height) * 3
    return PNG.Image(width: Int(width), height: Int(height), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
  }
}
