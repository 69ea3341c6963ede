extension Duration {
  /// The duration in seconds, its attoseconds included: the one conversion
  /// every timer (training steps, progress lines, benchmarks) uses.
  public var seconds: Double {
    Double(components.seconds) + Double(components.attoseconds) * 1e-18
  }
}
