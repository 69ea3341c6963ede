import CImageIO
import Foundation

/// JPEG decoding through libjpeg-turbo.
public enum JPEG {
  /// Decodes an 8-bit RGB image; errors name the file and libjpeg's reason.
  public static func read(_ path: String) throws(PNG.Failure) -> PNG.Image {
    var pixels: UnsafeMutablePointer<UInt8>?
    var width: Int32 = 0, height: Int32 = 0
    var message = [CChar](repeating: 0, count: 256)
    guard bk_jpeg_decode(path, &pixels, &width, &height, &message, message.count) == 0, let pixels else {
      let reason = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
      throw PNG.Failure(description: "\(path): not a readable JPEG (\(reason))")
    }
    defer { free(pixels) }
    let count = Int(width) * Int(height) * 3
    return PNG.Image(width: Int(width), height: Int(height), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
  }
}
