import CKernels

/// How the kernels run: the instruction-set path, the most threads a kernel
/// uses and how convolutions choose their algorithm.
///
/// Every kernel call reads them once, on the calling thread: the settings
/// of the innermost `Machine.with` scope open on that thread, else the
/// process default. Scopes on different threads never see each other's, so
/// tests running in parallel and replicas running as threads each keep
/// their own.
public struct KernelSettings: Equatable, Sendable {
  /// The instruction-set path; at most `Machine.bestInstructionSet`.
  public var instructionSet: InstructionSet
  /// The most threads a kernel uses; 0 for OpenMP's default
  /// (OMP_NUM_THREADS, else one per core). A build without OpenMP always
  /// uses 1.
  public var threads: Int
  /// How convolutions compute.
  public var convolutionAlgorithm: ConvolutionAlgorithm
  /// How many times its batch `.auto` counts each convolution as when it
  /// chooses an algorithm (at least 1). The n replicas of a data-parallel
  /// run, each with 1/n of the batch, set n: they choose as one process
  /// with the whole batch does, and compute what it computes.
  public var convolutionBatchScale: Int
  /// When above 0, `.auto` chooses as for a batch of this many images,
  /// however many a call holds (`convolutionBatchScale` then unused), so an
  /// image's bits do not depend on the batch it is computed in: sampling
  /// sets it. 0: the call's own batch decides.
  public var convolutionChoiceBatch: Int

  init(_ s: bk_settings) {
    instructionSet = InstructionSet(s.isa)
    threads = Int(s.threads)
    convolutionAlgorithm = ConvolutionAlgorithm(s.conv_algorithm)
    convolutionBatchScale = Int(s.conv_batch_scale)
    convolutionChoiceBatch = Int(s.conv_choice_batch)
  }

  var c: bk_settings {
    bk_settings(
      isa: instructionSet.c, threads: Int32(clamping: threads), conv_algorithm: convolutionAlgorithm.c,
      conv_batch_scale: Int32(clamping: convolutionBatchScale), conv_choice_batch: Int32(clamping: convolutionChoiceBatch))
  }
}

extension Machine {
  /// The settings of kernels called now from this thread, `threads`
  /// resolved to a count.
  public static var settings: KernelSettings { KernelSettings(bk_settings_current()) }

  /// Runs `body` with `settings` for every kernel it calls on this thread,
  /// then restores the settings this thread had, also when `body` throws.
  /// Scopes nest. Threads that `body` starts do not inherit the scope:
  /// hand them `Machine.settings` and let each open its own.
  /// - Precondition: `settings.instructionSet` is at most
  ///   `bestInstructionSet`, `settings.convolutionBatchScale` at least 1
  ///   and `settings.convolutionChoiceBatch` at least 0.
  public static func with<T>(_ settings: KernelSettings, _ body: () throws -> T) rethrows -> T {
    var previous = bk_settings()
    let hadOverride = bk_settings_get_override(&previous) != 0
    var wanted = settings.c
    guard bk_settings_set_override(&wanted) == 0 else {
      preconditionFailure(
        "kernel settings out of range: \(settings) (best instruction set: \(bestInstructionSet.rawValue))")
    }
    defer {
      if hadOverride { bk_settings_set_override(&previous) } else { bk_settings_set_override(nil) }
    }
    return try body()
  }

  /// `with(_:_:)` on this thread's current settings with the given fields
  /// replaced.
  public static func with<T>(
    instructionSet: InstructionSet? = nil, threads: Int? = nil, convolutionAlgorithm: ConvolutionAlgorithm? = nil,
    convolutionBatchScale: Int? = nil, convolutionChoiceBatch: Int? = nil, _ body: () throws -> T
  ) rethrows -> T {
    var s = settings
    if let instructionSet { s.instructionSet = instructionSet }
    if let threads { s.threads = threads }
    if let convolutionAlgorithm { s.convolutionAlgorithm = convolutionAlgorithm }
    if let convolutionBatchScale { s.convolutionBatchScale = convolutionBatchScale }
    if let convolutionChoiceBatch { s.convolutionChoiceBatch = convolutionChoiceBatch }
    return try with(s, body)
  }

  /// The path kernels called from this thread use.
  public static var instructionSet: InstructionSet { settings.instructionSet }

  /// Threads kernels called from this thread use. Setting it changes the
  /// process default (0: OpenMP's), which threads outside a `with` scope
  /// use: for a command-line tool at start-up.
  public static var threads: Int {
    get { settings.threads }
    set { updateDefault { $0.threads = Int32(clamping: newValue) } }
  }

  /// The convolution algorithm of kernels called from this thread. Setting
  /// it changes the process default, as `threads` does.
  public static var convolutionAlgorithm: ConvolutionAlgorithm {
    get { settings.convolutionAlgorithm }
    set { updateDefault { $0.conv_algorithm = newValue.c } }
  }

  private static func updateDefault(_ change: (inout bk_settings) -> Void) {
    var s = bk_settings_default()
    change(&s)
    bk_settings_set_default(&s)
  }
}
