import CImageIO

/// JPEG decoding through libjpeg-turbo.
public enum JPEG {
  /// Decodes an 8-bit RGB image; errors name the file and libjpeg's reason
  /// (a truncated or corrupt file is one). When its short side is at least
  /// four times `minimumSide` it is decoded at 1/2, 1/4 or 1/8 of its size,
  /// keeping the short side at least `2 * minimumSide` (0: full size), so a
  /// big photo decodes fast at the size it is needed at. Images of more
  /// than `maxPixels` pixels (after that scaling) are refused before they
  /// are decoded.
  public static func read(
    _ path: String, minimumSide: Int = 0, maxPixels: Int = ImageFile.defaultMaxPixels
  ) throws(PNG.Failure) -> PNG.Image {
    try ImageFile.decode(path, kind: "JPEG", maxPixels: maxPixels) { pixels, width, height, message, size in
      bk_jpeg_decode(path, Int32(clamping: minimumSide), Int64(maxPixels), pixels, width, height, message, size)
    }
  }
}
