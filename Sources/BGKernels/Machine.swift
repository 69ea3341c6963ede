import CKernels

/// The instruction-set paths the kernels can run on.
public enum InstructionSet: String, CaseIterable, Comparable, Sendable {
  case scalar
  case avx2
  case avx512
  /// AVX-512 with the bf16 products on the AVX512_BF16 dot instruction
  /// (the same bits as the emulating paths).
  case avx512bf16
  /// AVX-512 with the bf16 products on AMX-BF16 tiles (the same bits).
  case amx

  init(_ isa: bk_isa) {
    switch isa {
    case BK_ISA_AMX_BF16: self = .amx
    case BK_ISA_AVX512_BF16: self = .avx512bf16
    case BK_ISA_AVX512: self = .avx512
    case BK_ISA_AVX2: self = .avx2
    default: self = .scalar
    }
  }

  var c: bk_isa {
    switch self {
    case .scalar: return BK_ISA_SCALAR
    case .avx2: return BK_ISA_AVX2
    case .avx512: return BK_ISA_AVX512
    case .avx512bf16: return BK_ISA_AVX512_BF16
    case .amx: return BK_ISA_AMX_BF16
    }
  }

  public static func < (lhs: Self, rhs: Self) -> Bool {
    lhs.c.rawValue < rhs.c.rawValue
  }
}

/// The processor the kernels run on, and the settings of how they run on
/// it (`KernelSettings`).
public enum Machine {
  /// CPU features as reported by cpuid and xgetbv (only those the OS
  /// enables are listed), plus vendor and model strings.
  public static var features: (vendor: String, brand: String, flags: [String]) {
    var f = bk_cpu_features()
    bk_cpu_detect(&f)
    let vendor = withUnsafeBytes(of: f.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let brand = withUnsafeBytes(of: f.brand) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let named: [(String, Int32)] = [
      ("sse2", f.sse2), ("avx", f.avx), ("avx2", f.avx2), ("fma", f.fma), ("f16c", f.f16c),
      ("avx512f", f.avx512f), ("avx512dq", f.avx512dq), ("avx512bw", f.avx512bw),
      ("avx512vl", f.avx512vl), ("avx512_bf16", f.avx512_bf16), ("amx_bf16", f.amx_bf16),
    ]
    return (vendor, brand.trimmingCharacters(), named.filter { $0.1 != 0 }.map(\.0))
  }

  /// The best path this machine supports.
  public static var bestInstructionSet: InstructionSet { InstructionSet(bk_isa_best()) }

  /// Whether the kernels were built with OpenMP (without it, every kernel
  /// runs on one thread).
  public static var hasOpenMP: Bool { bk_openmp_enabled() != 0 }

  /// Runs independent FMA chains for `iterations` steps on `threads`
  /// threads and returns the floating-point operations performed; time the
  /// call to obtain the FMA peak of this thread's instruction set.
  public static func fmaProbe(iterations: Int, threads: Int) -> Double {
    bk_fma_probe(iterations, Int32(threads))
  }

  /// Runs independent bf16 dot-product chains (on a path without a bf16
  /// dot instruction, the FMA chains that emulate it) and returns the
  /// floating-point operations performed; time the call to obtain the bf16
  /// peak of this thread's instruction set.
  public static func bf16Probe(iterations: Int, threads: Int) -> Double {
    bk_bf16_probe(iterations, Int32(threads))
  }
}

extension String {
  func trimmingCharacters() -> String {
    var s = Substring(self)
    while s.first == " " { s = s.dropFirst() }
    while s.last == " " { s = s.dropLast() }
    return String(s)
  }
}

extension Machine {
  /// Keeps large allocations in the heap instead of fresh mappings, so the
  /// activations of one step reuse the pages of the previous one rather than
  /// paying a page fault per 4 KiB every time (glibc maps every block above
  /// its threshold afresh). Call once, before the work starts.
  public static func keepLargeAllocations() { bk_keep_large_allocations() }
}
