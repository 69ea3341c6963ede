import ArgumentParser
import BigGAN

/// The cap on the pixels of image files that are read (train, stats and
/// eval): a small file can claim a huge size.
struct ImageOptions: ParsableArguments {
  @Option(
    name: .customLong("max-image-pixels"), parsing: .unconditional,
    help: "Refuse images of more pixels than this (JPEGs for training count after their reduced-size decoding).")
  var maxImagePixels: Int = ImageFile.defaultMaxPixels

  func validate() throws {
    guard maxImagePixels >= 1 else { throw ValidationError("--max-image-pixels must be at least 1, got \(maxImagePixels)") }
  }
}
