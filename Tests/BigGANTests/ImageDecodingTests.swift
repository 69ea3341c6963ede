import Foundation
import Testing

@testable import BigGAN

/// PNG and JPEG decoding as Pillow's `convert("RGB")` gives the pixels, and
/// JPEGs decoded at the size they are needed at.
struct ImageDecodingTests {
  static func file(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("decoding-\(getpid())-\(name)").path
  }

  /// A 64x64 gradient JPEG (Pillow, quality 50).
  static let gradientJPEG = Data(base64Encoded: "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCABAAEADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDhljqZY6kWOpljoTCnUIljqZY6lWOpVjqkzup1CNY6lWOpVjqZY6tM7qdQiWOpljqRY6mWOqTO6nUMJY6lWOpVjqZY65kz4enUIljqZY6kWOpljqkzup1CJY6mWOpVjqVY6pM7qdQjWOpljqRY6mWOrTO6nUMFY6mWOpFjqZY65Uz4enUI1jqVY6lWOpljq0zup1CJY6mWOpFjqZY6pM7qdQiWOpljqVY6lWOqTO6nUMJY6mWOpFjqZY65kz4enUIljqZY6lWOpVjqkzup1CNY6lWOpVjqZY6tM7qdQiWOpljqRY6mWOqTO6nUP//Z")!

  /// A PNG file of one IDAT (stored, uncompressed deflate) and optional
  /// extra chunks before it.
  static func png(width: Int, height: Int, depth: UInt8, colorType: UInt8, rows: [[UInt8]], extra: [(String, [UInt8])] = []) -> Data {
    func crc(_ bytes: [UInt8]) -> UInt32 {
      var c: UInt32 = 0xffff_ffff
      for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
      }
      return ~c
    }
    func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
      let body = Array(type.utf8) + data
      return be(UInt32(data.count)) + body + be(crc(body))
    }
    let raw: [UInt8] = rows.flatMap { row -> [UInt8] in [0] + row }
    var a: UInt32 = 1, b: UInt32 = 0
    for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
    let n = UInt16(raw.count)
    let stored: [UInt8] = [0x78, 0x01, 0x01, UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8(~n >> 8)]
    let zlib = stored + raw + be(b << 16 | a)
    var bytes: [UInt8] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
    bytes += chunk("IHDR", be(UInt32(width)) + be(UInt32(height)) + [depth, colorType, 0, 0, 0])
    for (type, data) in extra { bytes += chunk(type, data) }
    bytes += chunk("IDAT", zlib) + chunk("IEND", [])
    return Data(bytes)
  }

  @Test("a 16-bit PNG decodes to the high byte of each sample, with or without gAMA, as Pillow does; alpha is dropped")
  func sixteenBitPNG() throws {
    let samples: [UInt16] = [0x8040, 0x1234, 0xffff, 0x0101, 0x7f80, 0x00ff]
    let row = samples.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    let path = Self.file("rgb16.png")
    defer { try? FileManager.default.removeItem(atPath: path) }
    // Pillow 12's Image.open(...).convert("RGB") of these files.
    let expected: [UInt8] = [128, 18, 255, 1, 127, 0]
    try Self.png(width: 2, height: 1, depth: 16, colorType: 2, rows: [row]).write(to: URL(fileURLWithPath: path))
    #expect(try PNG.read(path).pixels == expected)
    let gamma: [UInt8] = [0, 0, 0xb1, 0x8f]  // 45455: 1/2.2
    try Self.png(width: 2, height: 1, depth: 16, colorType: 2, rows: [row], extra: [("gAMA", gamma)]).write(to: URL(fileURLWithPath: path))
    #expect(try PNG.read(path).pixels == expected)
    try Self.png(width: 2, height: 1, depth: 8, colorType: 6, rows: [[200, 100, 50, 0, 10, 20, 30, 128]]).write(to: URL(fileURLWithPath: path))
    #expect(try PNG.read(path).pixels == [200, 100, 50, 10, 20, 30])
  }

  @Test("a PNG claiming more pixels than the cap is refused before it is decoded, naming the file and the size")
  func pixelCap() throws {
    let path = Self.file("wide.png")
    defer { try? FileManager.default.removeItem(atPath: path) }
    try Self.png(width: 100_000, height: 100_000, depth: 8, colorType: 2, rows: [[1, 2, 3]]).write(to: URL(fileURLWithPath: path))
    do {
      _ = try PNG.read(path)
      Issue.record("decoded a 100000x100000 PNG")
    } catch {
      #expect(error.description == "\(path): 100000x100000 pixels is more than the limit of \(ImageFile.defaultMaxPixels) (--max-image-pixels)")
    }
  }

  @Test("a JPEG much bigger than needed decodes at a reduced size; at full size otherwise")
  func scaledJPEG() throws {
    let path = Self.file("gradient.jpg")
    defer { try? FileManager.default.removeItem(atPath: path) }
    try Self.gradientJPEG.write(to: URL(fileURLWithPath: path))
    let full = try ImageFile.read(path)
    #expect(full.width == 64 && full.height == 64)
    let quarter = try ImageFile.read(path, minimumSide: 8)
    #expect(quarter.width == 16 && quarter.height == 16)
    #expect(try ImageFile.read(path, minimumSide: 32).width == 64)
    // The reduced decode is the full image's average over each 4x4 block,
    // near enough.
    let i = (5 * 16 + 9) * 3
    var sum = 0
    for y in 20..<24 { for x in 36..<40 { sum += Int(full.pixels[(y * 64 + x) * 3]) } }
    #expect(abs(Int(quarter.pixels[i]) - sum / 16) <= 6, "\(quarter.pixels[i]) vs \(sum / 16)")
  }
}
