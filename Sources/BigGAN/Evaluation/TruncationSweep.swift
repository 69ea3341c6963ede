/// One evaluation per truncation, for the IS-FID trade-off (the paper's
/// Figure 2(a)).
extension InceptionExtractor {
  /// Scores `generator`'s images at each of `truncations` in turn with
  /// `metrics`; every set is drawn as `settings` says (its seed too, so the
  /// sets differ by the truncation alone). `scored` sees each set's
  /// features and report as soon as they exist, for progress and files.
  public func truncationSweep(
    of generator: Generator, truncations: [Double], _ settings: GenerationSettings,
    reference: ReferenceStatistics?, metrics: [EvaluationMetric], metricSettings: MetricSettings = MetricSettings(),
    scored: (_ truncation: Double, _ features: InceptionFeatures, _ report: EvaluationReport) throws -> Void = { _, _, _ in }
  ) throws -> [(truncation: Double, report: EvaluationReport)] {
    var rows: [(truncation: Double, report: EvaluationReport)] = []
    for t in truncations {
      var each = settings
      each.truncation = t
      let extracted = try features(of: generator, each)
      let report = try evaluate(extracted, reference: reference, metrics: metrics, settings: metricSettings)
      try scored(t, extracted, report)
      rows.append((t, report))
    }
    return rows
  }
}
