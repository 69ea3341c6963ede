// swift-tools-version:6.0
import PackageDescription

// The fuzz targets live in their own package so that their flags (no `main`:
// libFuzzer provides it) and the sanitizer build never touch the product's
// own `swift build`. Build with `fuzz.sh`, which instruments every module,
// the library under test included, for libFuzzer's coverage and
// AddressSanitizer.
let package = Package(
  name: "biggan-fuzz",
  dependencies: [.package(name: "biggan-fast", path: "..")],
  targets: [
    .executableTarget(
      name: "biggan-fuzz",
      dependencies: [.product(name: "BigGAN", package: "biggan-fast")],
      swiftSettings: [.unsafeFlags(["-parse-as-library"])]
    )
  ]
)
