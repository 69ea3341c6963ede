import ArgumentParser
import BGKernels
import BigGAN
import Dispatch
import Foundation
import Studio

/// `biggan-fast serve`: the local web studio.
struct Serve: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "A local web studio: explore a generator in the browser and watch its run while it trains.",
    discussion: """
      Open the printed address in a browser. Explore: pick classes by name or
      index, slide the truncation (both modes), change the seed, draw grids,
      latent and class interpolations and one latent as every class; each
      image downloads as a PNG carrying its latent, class and settings, or as
      z.npy / y.npy for `sample --z --y`, which reproduces it exactly. Watch
      (with --run, or a checkpoint inside a run folder): losses, D's outputs
      and train/held-out gap, singular values, evaluations and the sample
      sheets over time, updated as metrics.jsonl grows; the run folder is
      only read, so `train` can run beside it.
      The studio listens on 127.0.0.1 unless --host says otherwise; any other
      address needs --token, which every request must then carry.
      """)

  @OptionGroup var source: GeneratorSource
  @Option(help: "Address to listen on (loopback by default; anything else needs --token).") var host: String = "127.0.0.1"
  @Option(parsing: .unconditional, help: "Port (0: any free port; the address is printed).") var port: Int = 8080
  @Option(help: "A secret every request must carry (?token= or Authorization: Bearer); required off loopback.") var token: String?
  @Option(name: .customLong("max-images"), parsing: .unconditional, help: "Images one request may ask for.") var maxImages: Int = 256
  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    guard (source.runName == nil) != (source.checkpoint == nil) else {
      throw ValidationError("pass exactly one of --run and --checkpoint")
    }
    guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
    guard (1...4096).contains(maxImages) else { throw ValidationError("--max-images must be in 1...4096, got \(maxImages)") }
    if let token {
      guard token.count >= 8, token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.~".contains($0)) }) else {
        throw ValidationError("--token must be at least 8 characters of letters, digits, '-', '_', '.' or '~'")
      }
    }
    var options = StudioOptions()
    options.host = host
    guard options.isLocal || token != nil else {
      throw ValidationError("--host \(host) is reachable from other machines; pass --token SECRET so only those who know it get in")
    }
  }

  func run() throws {
    Machine.keepLargeAllocations()
    compute.applyThreads()
    var options = StudioOptions()
    options.host = host
    options.port = port
    options.token = token
    options.limits.maxImages = maxImages
    let studio = try Studio(options: options, load: loadModel)
    // Nothing is written, so a signal ends the process at once, whatever
    // requests are open.
    let stop = StopRequest { _exit(0) }
    let finished = DispatchSemaphore(value: 0)
    let outcome = Outcome()
    let token = self.token, host = self.host, port = self.port
    Task {
      do {
        try await studio.run { url in
          let line = "serving \(url)\(token.map { "?token=\($0)" } ?? "")\n"
          FileHandle.standardOutput.write(Data(line.utf8))
        }
      } catch {
        outcome.error = "cannot serve on \(host):\(port): \(error)"
      }
      finished.signal()
    }
    finished.wait()
    withExtendedLifetime(stop) {}
    if let message = outcome.error { throw ValidationError(message) }
  }

  /// The generator and what the page says about it, loaded anew (a run's
  /// newest checkpoint) each time the studio asks.
  func loadModel() throws -> StudioModel {
    let (file, folder, model) = try source.file()
    let g = try GeneratorSource.generator(file, model: model, precision: compute.precision, batch: 1)
    let checkpoint = folder ?? file.path
    // A folder's weights are G_ema's unless --raw; a file names its own.
    var command = "biggan-fast sample --checkpoint \(checkpoint)"
    if folder != nil && source.raw { command += " --raw" }
    if compute.precision != .fp32 { command += " --precision \(compute.precision.rawValue)" }
    return StudioModel(
      generator: g,
      description: ModelDescription(
        checkpoint: checkpoint, runFolder: source.trainingRunFolder, runName: source.runName,
        sampleCommand: command, configuration: model, precision: compute.precision))
  }
}

/// How the server ended, set by its task and read once it is done.
private final class Outcome: @unchecked Sendable {
  var error: String?
}
