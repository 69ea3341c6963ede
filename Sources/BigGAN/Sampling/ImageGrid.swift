import BGKernels

/// Turns generator output into 8-bit pictures.
public enum ImageGrid {
  /// One image of `images` (`[n, h, w, 3]` in [-1, 1]) as RGB bytes:
  /// `round((x + 1) * 127.5)`, clamped; no gamma change.
  public static func pixels(_ images: Tensor, index: Int) -> [UInt8] {
    let size = images.shape[1] * images.shape[2] * 3
    return images.storage[index * size..<(index + 1) * size].map { byte($0) }
  }

  static func byte(_ x: Float) -> UInt8 {
    let v = ((x + 1) * 127.5).rounded()
    return UInt8(max(0, min(255, v.isNaN ? 0 : v)))
  }

  /// `images` laid out `columns` per row with a `gap`-pixel border.
  public static func sheet(_ images: Tensor, columns: Int, gap: Int = 2) -> PNG.Image {
    let n = images.shape[0], h = images.shape[1], w = images.shape[2]
    let rows = (n + columns - 1) / columns
    let width = columns * (w + gap) + gap, height = rows * (h + gap) + gap
    var out = [UInt8](repeating: 0, count: width * height * 3)
    for i in 0..<n {
      let (r, c) = (i / columns, i % columns)
      let x0 = gap + c * (w + gap), y0 = gap + r * (h + gap)
      let base = i * h * w * 3
      for y in 0..<h {
        for x in 0..<w {
          for ch in 0..<3 {
            out[((y0 + y) * width + x0 + x) * 3 + ch] = byte(images.storage[base + (y * w + x) * 3 + ch])
          }
        }
      }
    }
    return PNG.Image(width: width, height: height, pixels: out)
  }
}

extension ImageGrid {
  /// The labels of a class sheet: `columns` images of each of the first
  /// ten classes (fewer when the model has fewer), one class per row.
  public static func classRows(classes: Int, columns: Int) -> [Int] {
    (0..<min(classes, 10)).flatMap { Array(repeating: $0, count: columns) }
  }

  /// The sheet of `generator`'s images of `z` (`[labels.count, dimZ]`) and
  /// `labels`, `columns` per row, rendered in inference mode `batch` images
  /// at a time so that it never needs more memory than one such batch.
  public static func sheet(
    of generator: Generator, z: Tensor, labels: [Int], columns: Int, batch: Int
  ) throws(KernelError) -> PNG.Image {
    let model = generator.configuration, d = model.dimZ
    let size = model.resolution * model.resolution * 3
    var images = Tensor(shape: [labels.count, model.resolution, model.resolution, 3])
    for start in stride(from: 0, to: labels.count, by: batch) {
      let end = min(labels.count, start + batch)
      let part = try generator.forward(
        z: try Tensor(shape: [end - start, d], storage: Array(z.storage[start * d..<end * d])),
        labels: Array(labels[start..<end]), mode: .inference)
      images.storage.replaceSubrange(start * size..<end * size, with: part.storage)
    }
    return sheet(images, columns: columns)
  }
}

extension ImageGrid {
  /// The real images' sheet beside G's: `columns` images of each of the
  /// first ten classes, one class per row, drawn from `dataset` at evenly
  /// spaced indices (so class-sorted folders give every class a row
  /// without reading the whole data set). A class with fewer images found
  /// leaves its row short.
  public static func sheet(of dataset: any ImageDataset, columns: Int) throws -> PNG.Image {
    let classes = min(dataset.classes, 10), r = dataset.resolution, size = r * r * 3
    let probes = min(dataset.count, classes * columns * 8)
    var rows = [[[UInt8]]](repeating: [], count: classes)
    for k in 0..<probes {
      let (pixels, label) = try dataset.sample(k * dataset.count / probes, epoch: 0)
      if label < classes && rows[label].count < columns { rows[label].append(pixels) }
    }
    var images = Tensor(shape: [classes * columns, r, r, 3])
    images.storage = [Float](repeating: -1, count: images.count)
    for (c, row) in rows.enumerated() {
      for (j, pixels) in row.enumerated() {
        let base = (c * columns + j) * size
        for i in 0..<size { images.storage[base + i] = Float(pixels[i]) / 127.5 - 1 }
      }
    }
    return sheet(images, columns: columns)
  }
}
