import Foundation

/// One reader of outside bytes, fed each input libFuzzer makes.
struct FuzzTarget: Sendable {
  /// The `FUZZ_TARGET` value and the name of its seed folder under `Fuzz/Corpus/`.
  let name: String
  /// Reads `input` as the product would; errors are expected and ignored.
  let run: @Sendable (Data) -> Void
}
