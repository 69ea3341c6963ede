/// What a training run reads besides the trainer's recipe: how many steps
/// it takes and how often it logs metrics, draws sample sheets, writes
/// checkpoints and measures singular values, the share of the data it
/// holds out to watch D overfit, and when a value counts as a collapse.
public struct RunSchedule: Codable, Equatable, Sendable {
  /// Total training steps (G steps).
  public var steps = 100_000
  public var logEvery = 50
  public var sampleEvery = 1000
  public var checkpointEvery = 1000
  public var keepCheckpoints = 3
  /// Every this many steps, log the top singular values of every weight.
  public var singularValueEvery = 500
  /// Share of the real data held out to watch D overfit (0 disables).
  public var heldOut: Float = 0.02
  /// A loss or spectral norm above this many times its running average
  /// raises a collapse warning.
  public var collapseFactor: Float = 5

  public init() {}
}

extension RunSchedule: CustomStringConvertible {
  /// Every value on one line, e.g. `1500 steps; metrics every 10, ...`.
  public var description: String {
    "\(steps) steps; metrics every \(logEvery), samples every \(sampleEvery), checkpoints every \(checkpointEvery) "
      + "(newest \(keepCheckpoints) kept), singular values every \(singularValueEvery); "
      + "\(compact(heldOut * 100))% held out; collapse warnings past \(compact(collapseFactor))x"
  }
}

extension RunSchedule {
  /// Checks every value a run reads (a schedule from a hand-edited or
  /// damaged `state.json` included); the message names the field, under
  /// `recipe` where the files keep it, and its range.
  public func validate() throws(CheckpointError) {
    for (name, value) in [
      ("steps", steps), ("logEvery", logEvery), ("sampleEvery", sampleEvery), ("checkpointEvery", checkpointEvery),
      ("keepCheckpoints", keepCheckpoints), ("singularValueEvery", singularValueEvery),
    ] {
      try checkRecipe(value >= 1, "\(name) is \(value); expected at least 1")
    }
    try checkRecipe(heldOut >= 0 && heldOut < 1, "heldOut is \(heldOut); expected [0, 1)")
    try checkRecipe(collapseFactor > 1 && collapseFactor.isFinite, "collapseFactor is \(collapseFactor); expected above 1")
  }
}
