// swift-tools-version:6.1
import Foundation
import PackageDescription

/// Debian ships LLVM's `omp.h` in the clang resource folder of the LLVM that
/// built libomp (e.g. /usr/lib/llvm-14/lib/clang/14.0.6/include), which the
/// Swift toolchain's clang does not search. `-idirafter` adds it after clang's
/// own intrinsics headers so it cannot shadow them.
func openMPIncludeDirectory() -> String? {
  let fm = FileManager.default
  let roots = ((try? fm.contentsOfDirectory(atPath: "/usr/lib")) ?? [])
    .filter { $0.hasPrefix("llvm-") }
    .sorted { $0.compare($1, options: .numeric) == .orderedDescending }
  for root in roots {
    let clangDir = "/usr/lib/\(root)/lib/clang"
    for version in (try? fm.contentsOfDirectory(atPath: clangDir)) ?? [] {
      let include = "\(clangDir)/\(version)/include"
      if fm.fileExists(atPath: "\(include)/omp.h") { return include }
    }
  }
  return nil
}

func openMPLibraryDirectory() -> String? {
  let fm = FileManager.default
  let roots = ((try? fm.contentsOfDirectory(atPath: "/usr/lib")) ?? [])
    .filter { $0.hasPrefix("llvm-") }
    .sorted { $0.compare($1, options: .numeric) == .orderedDescending }
  return roots.map { "/usr/lib/\($0)/lib" }
    .first { fm.fileExists(atPath: "\($0)/libomp.so") }
}

// No contraction of a * b + c into FMAs behind the code's back: every fused
// multiply-add is written as one, so each instruction-set path computes the
// same bits.
var kernelFlags = ["-O2", "-fno-math-errno", "-ffp-contract=off"]
var kernelLinker: [LinkerSetting] = []
if let include = openMPIncludeDirectory(), let lib = openMPLibraryDirectory() {
  kernelFlags += ["-fopenmp", "-idirafter", include]
  kernelLinker = [.unsafeFlags(["-L\(lib)"]), .linkedLibrary("omp")]
} else {
  // Without OpenMP every kernel runs on one thread: say so rather than
  // leave a slow build to be discovered.
  FileHandle.standardError.write(Data(
    "OpenMP not found (libomp-dev: omp.h and libomp.so under /usr/lib/llvm-*); CKernels builds without it and every kernel runs on one thread\n".utf8))
}

let package = Package(
  name: "biggan-fast",
  platforms: [.macOS(.v13)],
  products: [
    .library(name: "BGKernels", targets: ["BGKernels"]),
    .library(name: "BigGAN", targets: ["BigGAN"]),
    .executable(name: "bgkernels", targets: ["bgkernels"]),
    .executable(name: "biggan-fast", targets: ["biggan-fast"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    // Only the HTTP server: no swift-configuration, no extra Foundation.
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
  ],
  targets: [
    // MARK: - Implementation details
    .target(
      name: "CKernels",
      path: "CKernels",
      cSettings: [.unsafeFlags(kernelFlags)],
      linkerSettings: kernelLinker + [.linkedLibrary("m")]
    ),
    // MARK: - Public API
    .target(name: "BGKernels", dependencies: ["CKernels"]),
    .systemLibrary(
      name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
      providers: [.apt(["libpng-dev"])]),
    .target(
      name: "CImageIO", path: "Sources/CImageIO",
      linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png")]),
    .systemLibrary(
      name: "CZip", path: "Sources/CZip", pkgConfig: "libzip",
      providers: [.apt(["libzip-dev"])]),
    .systemLibrary(
      name: "CLAPACK", path: "Sources/CLAPACK",
      providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(
      name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
      providers: [.apt(["libopenmpi-dev"])]),
    .target(name: "BigGAN", dependencies: ["BGKernels", "CPNG", "CImageIO", "CZip", "CLAPACK", "CMPI"]),
    .executableTarget(
      name: "bgkernels",
      dependencies: [
        "BGKernels",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .target(
      name: "Studio",
      dependencies: ["BGKernels", "BigGAN", .product(name: "Hummingbird", package: "hummingbird")],
      resources: [.embedInCode("Assets/index.html"), .embedInCode("Assets/studio.js"), .embedInCode("Assets/studio.css")]
    ),
    .executableTarget(
      name: "biggan-fast",
      dependencies: [
        "BGKernels", "BigGAN", "Studio",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // MARK: - Unit test bundles
    .testTarget(
      name: "BGKernelsTests",
      dependencies: ["BGKernels", "CKernels"],
      resources: [.copy("Fixtures")]
    ),
    .testTarget(name: "CommandLineTests", dependencies: ["biggan-fast", "bgkernels", "BigGAN"]),
    .testTarget(
      name: "BigGANTests",
      dependencies: ["BigGAN"],
      resources: [.copy("Fixtures")]
    ),
  ]
)
