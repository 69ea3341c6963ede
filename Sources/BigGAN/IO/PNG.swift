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

  /// Writes `image` to `path` atomically (temporary file, then rename), the
  /// bytes `encode(_:)` makes.
  public static func write(_ image: Image, to path: String) throws(Failure) {
    let bytes: [UInt8]
    do { bytes = try encode(image) } catch { throw Failure(description: "\(path): \(error.description)") }
    let url = URL(fileURLWithPath: path)
    let temp = url.deletingLastPathComponent()
      .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp").path
    do {
      try Data(bytes).write(to: URL(fileURLWithPath: temp))
    } catch {
      unlink(temp)
      throw Failure(description: "\(path): cannot write PNG (\((error as NSError).localizedDescription))")
    }
    guard rename(temp, path) == 0 else {
      unlink(temp)
      throw Failure(description: "\(path): cannot write PNG (\(String(cString: strerror(errno))))")
    }
  }

  /// The PNG file of `image`, with a `tEXt` chunk per `(keyword, text)` of
  /// `text` after the header (keywords of 1 to 79 Latin-1 letters, texts
  /// without NUL bytes).
  public static func encode(_ image: Image, text: [(keyword: String, text: String)] = []) throws(Failure) -> [UInt8] {
    guard image.pixels.count == image.width * image.height * 3, image.width > 0, image.height > 0 else {
      throw Failure(description: "\(image.width)x\(image.height) image needs \(image.width * image.height * 3) bytes, got \(image.pixels.count)")
    }
    var png = png_image()
    png.version = UInt32(PNG_IMAGE_VERSION)
    png.width = UInt32(image.width)
    png.height = UInt32(image.height)
    png.format = UInt32(PNG_FORMAT_RGB)
    var size = 0
    // The first call measures, the second writes.
    var ok = image.pixels.withUnsafeBytes { raw in
      png_image_write_to_memory(&png, nil, &size, 0, raw.baseAddress, Int32(image.width * 3), nil)
    }
    var bytes = [UInt8](repeating: 0, count: size)
    if ok != 0 {
      ok = image.pixels.withUnsafeBytes { raw in
        bytes.withUnsafeMutableBytes { out in
          png_image_write_to_memory(&png, out.baseAddress, &size, 0, raw.baseAddress, Int32(image.width * 3), nil)
        }
      }
    }
    guard ok != 0 else { throw Failure(description: "cannot encode PNG (\(message(&png)))") }
    bytes.removeLast(bytes.count - size)
    // The signature (8 bytes) and IHDR (25) come first; text goes after them.
    var chunks: [UInt8] = []
    for (keyword, text) in text {
      guard (1...79).contains(keyword.utf8.count), keyword.utf8.allSatisfy({ (0x20...0x7e).contains($0) }), !text.utf8.contains(0) else {
        throw Failure(description: "PNG text '\(keyword)': keyword must be 1 to 79 printable ASCII characters and the text free of NUL")
      }
      chunks += chunk("tEXt", Array(keyword.utf8) + [0] + Array(text.utf8))
    }
    bytes.insert(contentsOf: chunks, at: 33)
    return bytes
  }

  /// One PNG chunk: length, type, data and the CRC-32 of type and data.
  static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let body = Array(type.utf8) + data
    var crc: UInt32 = 0xffff_ffff
    for byte in body {
      crc ^= UInt32(byte)
      for _ in 0..<8 { crc = (crc >> 1) ^ (0xedb8_8320 & (0 &- (crc & 1))) }
    }
    crc = ~crc
    let length = UInt32(data.count)
    return [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: length >> $0) } + body + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: crc >> $0) }
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
