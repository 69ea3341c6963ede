import CImageIO
import CPNG
import Foundation

/// 8-bit RGB PNG files through libpng's simplified API.
public enum PNG {
  /// A decoded image: `pixels` holds `height` rows of `width` RGB triples.
  public struct Image: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
      self.width = width
      self.height = height
      self.pixels = pixels
    }
  }

  /// A PNG that cannot be read or written: the message names the file.
  public struct Failure: Error, CustomStringConvertible, Equatable {
    public let description: String
  }

  /// Writes `image` to `path` atomically (temporary file, then rename).
  public static func write(_ image: Image, to path: String) throws(Failure) {
    guard image.pixels.count == image.width * image.height * 3, image.width > 0, image.height > 0 else {
      throw Failure(description: "\(path): \(image.width)x\(image.height) image needs \(image.width * image.height * 3) bytes, got \(image.pixels.count)")
    }
    let url = URL(fileURLWithPath: path)
    let temp = url.deletingLastPathComponent()
      .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp").path
    var png = png_image()
    png.version = UInt32(PNG_IMAGE_VERSION)
    png.width = UInt32(image.width)
    png.height = UInt32(image.height)
    png.format = UInt32(PNG_FORMAT_RGB)
    let ok = image.pixels.withUnsafeBytes { raw in
      png_image_write_to_file(&png, temp, 0, raw.baseAddress, Int32(image.width * 3), nil)
    }
    guard ok != 0 else {
      let reason = message(&png)
      unlink(temp)
      throw Failure(description: "\(path): cannot write PNG (\(reason))")
    }
    guard rename(temp, path) == 0 else {
      unlink(temp)
      throw Failure(description: "\(path): cannot write PNG (\(String(cString: strerror(errno))))")
    }
  }

  /// Reads any PNG libpng understands as 8-bit RGB, as Pillow's
  /// `convert("RGB")` does (no gamma correction, 16-bit samples to their
  /// high byte, alpha dropped), so evaluation sees the pixels the reference
  /// implementations see; images of more than `maxPixels` pixels are refused
  /// before they are decoded.
  public static func read(_ path: String, maxPixels: Int = ImageFile.defaultMaxPixels) throws(Failure) -> Image {
    try ImageFile.decode(path, kind: "PNG", maxPixels: maxPixels) { pixels, width, height, message, size in
      bk_png_decode(path, Int64(maxPixels), pixels, width, height, message, size)
    }
  }

  private static func message(_ png: inout png_image) -> String {
    withUnsafeBytes(of: &png.message) { raw in
      String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
  }
}
