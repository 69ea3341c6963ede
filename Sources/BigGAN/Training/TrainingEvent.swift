/// What a `TrainingRun` reports as it goes, for a caller to print and log.
/// Only rank 0 of a data-parallel run reports.
public enum TrainingEvent {
  /// An iteration finished: its report, the steps per second since the
  /// run started (or resumed), and the reports since the last metrics line,
  /// this one included.
  case stepped(StepReport, stepsPerSecond: Double, window: [StepReport])
  /// A metrics line is due: the reports it averages, and D's verdicts on
  /// training and held-out images (`nil` with nothing held out).
  case metrics(window: [StepReport], verdicts: HeldOutVerdicts?)
  /// A watched value (D's loss, a top singular value) jumped past the
  /// schedule's collapse factor times its running average.
  case warning(step: Int, message: String)
  /// The top singular values of every weight, keyed `G/<name>`, `D/<name>`.
  case singularValues(step: Int, values: [String: [Float]])
  case checkpointSaved(path: String)
  case samplesSaved(path: String)
  case evaluated(EvaluationRecord)
  /// The evaluation just reported has the best FID of the run so far; its
  /// checkpoint is at `path`.
  case bestCheckpointSaved(path: String)
}

/// D's mean output and the share of images it calls real (scores above 0),
/// in evaluation mode, on a fixed batch of training images and one of
/// held-out images: the gap shows D memorising its training set.
public struct HeldOutVerdicts: Sendable {
  public var trainingMean: Float
  public var heldOutMean: Float
  public var trainingAccuracy: Float
  public var heldOutAccuracy: Float
}
