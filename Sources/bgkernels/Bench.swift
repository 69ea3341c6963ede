import ArgumentParser
import BGKernels
import Foundation

/// `bgkernels bench`: measured speed of every kernel against this
/// machine's own measured peaks (FMA for fp32, the bf16 dot product for
/// bf16).
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time GEMM, convolution and attention at BigGAN's shapes, and Inception-v3's convolutions.",
    discussion: """
      Measures the FMA and bf16 peaks of the active instruction set first
      (the bf16 one on AMX tiles, on vdpbf16ps, or on the FMAs that emulate
      it), then reports for every case the median time of repeated
      runs, GFLOP/s and the fraction of its precision's peak. Build with
      `swift build -c release`.
      """)

  enum Selection: String, ExpressibleByArgument, CaseIterable {
    case gemm, conv, attention, all
  }

  enum PrecisionChoice: String, ExpressibleByArgument, CaseIterable {
    case fp32, bf16, all
  }

  @Option(help: "Kernels to time: \(Selection.allCases.map(\.rawValue).joined(separator: ", ")).")
  var kernel: Selection = .all

  enum GroupChoice: String, ExpressibleByArgument, CaseIterable {
    case biggan, inception, all
  }

  @Option(help: "Network whose layer shapes to time: biggan, inception (forward convolutions) or all.")
  var group: GroupChoice = .all

  @Option(help: "Precision: fp32, bf16 or all.")
  var precision: PrecisionChoice = .all

  @Option(
    help: """
      Convolution algorithm for the conv cases: \(ConvolutionAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")). \
      GFLOP/s always count the direct convolution's operations.
      """)
  var convAlgorithm: ConvolutionAlgorithm = .auto

  @Option(parsing: .unconditional, help: "Threads (default: OMP_NUM_THREADS or one per core).")
  var threads: Int?

  @Option(parsing: .unconditional, help: "Timed runs per case (the median is reported).")
  var repeats: Int?

  @Option(name: .customLong("case"), help: "Run only the case with this id (repeatable); see --list.")
  var cases: [String] = []

  @Flag(help: "Fewer and smaller cases, fewer runs.")
  var quick = false

  @Flag(help: "Print one JSON document instead of a table.")
  var json = false

  @Flag(help: "List the case ids and exit.")
  var list = false

  @Flag(help: "Skip the peak measurements (peak fraction is then omitted).")
  var noPeak = false

  func validate() throws {
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    if let repeats, repeats < 1 { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
    let known = Set(BenchSuite.all(quick: false).map(\.id))
    for id in cases where !known.contains(id) {
      throw ValidationError("unknown case '\(id)'; run `bgkernels bench --list` for the ids")
    }
  }

  func selected() -> [BenchCase] {
    BenchSuite.all(quick: quick && cases.isEmpty).filter { c in
      if !cases.isEmpty { return cases.contains(c.id) }
      return (kernel == .all || c.kernel.rawValue == kernel.rawValue)
        && (group == .all || c.group.rawValue == group.rawValue)
        && (precision == .all || c.precision.rawValue == precision.rawValue)
    }
  }

  func run() throws {
    if list {
      for c in BenchSuite.all(quick: false) { print(c.id) }
      return
    }
    if let threads { Machine.threads = threads }
    Machine.convolutionAlgorithm = convAlgorithm
    let team = Machine.threads
    let peak = noPeak ? nil : measurePeak(threads: team, probe: Machine.fmaProbe(iterations:threads:))
    let bf16Peak = noPeak ? nil : measurePeak(threads: team, probe: Machine.bf16Probe(iterations:threads:))
    let runs = repeats ?? (quick ? 3 : 5)
    let chosen = selected()
    if !json {
      print("bgkernels bench: \(Machine.instructionSet.rawValue), \(team) threads, "
        + "\(convAlgorithm.rawValue) convolutions"
        + (peak.map { String(format: ", measured FMA peak %.1f GFLOP/s", $0) } ?? "")
        + (bf16Peak.map { String(format: ", bf16 peak %.1f GFLOP/s", $0) } ?? ""))
      print(pad("case", 44) + pad("median ms", 12) + pad("GFLOP/s", 10) + "% peak")
    }
    var results: [[String: Any]] = []
    for c in chosen {
      let call = c.prepare()
      call()  // warm-up: page in operands and workspaces
      var times: [Double] = []
      for _ in 0..<runs { times.append(seconds(call)) }
      let median = times.sorted()[times.count / 2]
      let gflops = c.flops / median / 1e9
      let casePeak = c.precision == .bf16 ? bf16Peak : peak
      if json {
        var r: [String: Any] = [
          "id": c.id, "kernel": c.kernel.rawValue, "precision": c.precision.rawValue,
          "pass": c.pass, "shape": c.spec, "flops": c.flops, "median_s": median,
          "times_s": times, "gflops": gflops,
        ]
        if let casePeak { r["peak_fraction"] = gflops / casePeak }
        results.append(r)
      } else {
        let share = casePeak.map { String(format: "%5.1f%%", 100 * gflops / $0) } ?? "-"
        print(pad(c.id, 44) + pad(String(format: "%9.3f", median * 1e3), 12)
          + pad(String(format: "%8.1f", gflops), 10) + share)
      }
    }
    if json {
      let cpu = Machine.features
      var doc: [String: Any] = [
        "cpu": cpu.brand, "isa": Machine.instructionSet.rawValue, "threads": team,
        "repeats": runs, "conv_algorithm": convAlgorithm.rawValue, "results": results,
      ]
      if let peak { doc["peak_gflops"] = peak }
      if let bf16Peak { doc["bf16_peak_gflops"] = bf16Peak }
      let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    }
  }

  /// A peak in GFLOP/s (`probe` is `Machine.fmaProbe` or
  /// `Machine.bf16Probe`): the best of several timed probes on all threads.
  func measurePeak(threads: Int, probe: (Int, Int) -> Double) -> Double {
    var iterations = 1 << 16
    while seconds({ _ = probe(iterations, threads) }) < 0.02 {
      iterations *= 2
    }
    var best = 0.0
    for _ in 0..<5 {
      var flops = 0.0
      let t = seconds { flops = probe(iterations, threads) }
      best = max(best, flops / t / 1e9)
    }
    return best
  }
}

/// Wall time of one call.
func seconds(_ body: () -> Void) -> Double {
  let start = ContinuousClock.now
  body()
  return (ContinuousClock.now - start).seconds
}

func pad(_ s: String, _ width: Int) -> String {
  s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}

extension ConvolutionAlgorithm: ExpressibleByArgument {}
