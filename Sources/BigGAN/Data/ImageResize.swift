extension PNG.Image {
  /// The centred square crop on the long edge, resampled to `size` x `size`
  /// by averaging each output pixel's footprint (a box filter: smooth when
  /// shrinking, nearest-like when enlarging); optionally mirrored.
  func centreSquare(size: Int, mirrored: Bool = false) -> [UInt8] {
    let side = min(width, height)
    let x0 = (width - side) / 2, y0 = (height - side) / 2
    let scale = Double(side) / Double(size)
    var out = [UInt8](repeating: 0, count: size * size * 3)
    for oy in 0..<size {
      let sy0 = Int((Double(oy) * scale).rounded(.down))
      let sy1 = max(sy0 + 1, Int((Double(oy + 1) * scale).rounded(.up)))
      for ox in 0..<size {
        let sx0 = Int((Double(ox) * scale).rounded(.down))
        let sx1 = max(sx0 + 1, Int((Double(ox + 1) * scale).rounded(.up)))
        var sum = (0, 0, 0), n = 0
        for sy in sy0..<min(sy1, side) {
          for sx in sx0..<min(sx1, side) {
            let i = ((y0 + sy) * width + x0 + sx) * 3
            sum.0 += Int(pixels[i]); sum.1 += Int(pixels[i + 1]); sum.2 += Int(pixels[i + 2])
            n += 1
          }
        }
        let tx = mirrored ? size - 1 - ox : ox
        let o = (oy * size + tx) * 3
        out[o] = UInt8((sum.0 + n / 2) / n)
        out[o + 1] = UInt8((sum.1 + n / 2) / n)
        out[o + 2] = UInt8((sum.2 + n / 2) / n)
      }
    }
    return out
  }
}
