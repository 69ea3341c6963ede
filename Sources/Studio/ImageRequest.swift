import BigGAN
import Foundation

/// A set of images the page asks for, read from query parameters: which
/// view, its classes and sizes, and the sampling settings. Each view is what
/// `biggan-fast sample` draws with the same settings.
struct ImageRequest: Sendable, Equatable {
  /// How the images are laid out and their inputs drawn.
  enum View: String, Sendable, CaseIterable {
    /// `sample --classes C --count N`: a row per class, N columns.
    case grid
    /// `sample --interpolate`: N rows of 10 blends.
    case interpolate
    /// One latent drawn as each class: one row.
    case sameZ = "same-z"
  }

  var view: View
  var truncation: Double = 1
  var mode: Truncation = .resample
  var seed: UInt64 = 0
  var blend: StatisticsBlend = .pretrained
  var classes: [Int] = []
  var count = 4
  var interpolation: Interpolation = .z
  var latent = 0

  /// Columns of an interpolation row, as `sample --interpolate` draws them.
  static let interpolationColumns = 10

  /// The request `query` describes for a model of `classes` classes (names
  /// resolved by `selection`), refused with a one-line reason when a value
  /// is malformed or the images would exceed `limits`.
  init(query: [String: String], selection: ClassSelection, limits: StudioLimits) throws(StudioError) {
    guard let viewText = query["view"] else { throw .badRequest("view is missing; expected grid, interpolate or same-z") }
    guard let view = View(rawValue: viewText) else { throw .badRequest("view '\(viewText)' is not grid, interpolate or same-z") }
    self.view = view
    if let t = query["truncation"] {
      guard let v = Double(t), v > 0, v <= 1 else { throw .badRequest("truncation '\(t)' is not a number in (0, 1]") }
      truncation = v
    }
    mode = try Self.choice(query, "mode", default: .resample)
    blend = try Self.choice(query, "blend", default: .pretrained)
    interpolation = try Self.choice(query, "interp", default: .z)
    if let s = query["seed"] {
      guard let v = UInt64(s) else { throw .badRequest("seed '\(s)' is not an integer in 0...\(UInt64.max)") }
      seed = v
    }
    count = try Self.integer(query, "count", default: 4, in: 1...limits.maxCount)
    latent = try Self.integer(query, "latent", default: 0, in: 0...limits.maxLatent)
    let classText = query["classes"] ?? "all"
    guard classText.utf8.count <= limits.maxClassesText else {
      throw .badRequest("classes is \(classText.utf8.count) bytes long; at most \(limits.maxClassesText)")
    }
    do { classes = try selection.indices(classText, input: "classes") } catch { throw .badRequest(error.description) }
    guard imageCount <= limits.maxImages else {
      throw .badRequest("\(imageCount) images asked for (\(classes.count) classes, count \(count)); at most \(limits.maxImages) per request")
    }
  }

  /// Images in the request.
  var imageCount: Int {
    switch view {
    case .grid: return classes.count * count
    case .interpolate: return count * Self.interpolationColumns
    case .sameZ: return classes.count
    }
  }

  /// Rows and columns of the layout.
  var shape: (rows: Int, columns: Int) {
    switch view {
    case .grid: return (classes.count, count)
    case .interpolate: return (count, Self.interpolationColumns)
    case .sameZ: return (1, classes.count)
    }
  }

  /// Every image's latent and class, in order.
  func inputs(dimZ: Int, classCount: Int) -> SampleInputs {
    switch view {
    case .grid:
      return .grid(classes: classes, count: count, dimZ: dimZ, truncation: truncation, mode: mode, seed: seed)
    case .interpolate:
      return .interpolation(
        interpolation, classes: classes, rows: count, columns: Self.interpolationColumns, dimZ: dimZ, classCount: classCount,
        truncation: truncation, mode: mode, seed: seed)
    case .sameZ:
      return .sameLatent(index: latent, classes: classes, dimZ: dimZ, truncation: truncation, mode: mode, seed: seed)
    }
  }

  /// The `image` parameter: an index into the request's images.
  func imageIndex(_ query: [String: String]) throws(StudioError) -> Int {
    try Self.integer(query, "image", default: nil, in: 0...(imageCount - 1))
  }

  /// A named choice among `T`'s raw values, or `default` when absent.
  static func choice<T: RawRepresentable & CaseIterable>(
    _ query: [String: String], _ name: String, default value: T
  ) throws(StudioError) -> T where T.RawValue == String {
    guard let text = query[name] else { return value }
    guard let v = T(rawValue: text) else {
      throw .badRequest("\(name) '\(text)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return v
  }

  /// An integer parameter within `range`; required when `value` is nil.
  static func integer(_ query: [String: String], _ name: String, default value: Int?, in range: ClosedRange<Int>) throws(StudioError) -> Int {
    guard let text = query[name] else {
      guard let value else { throw .badRequest("\(name) is missing; expected an integer in \(range.lowerBound)...\(range.upperBound)") }
      return value
    }
    guard let v = Int(text), range.contains(v) else {
      throw .badRequest("\(name) '\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
    }
    return v
  }
}
