/// Everything a trainer holds besides its configuration and its networks'
/// weights: what a checkpoint saves so that a trainer built from it
/// (`Trainer.init(..., restoring:)`) takes the very steps the saved one
/// would have.
public struct TrainerState: Sendable {
  /// G steps taken.
  public var step: Int
  /// The four state words of the stream that draws latents and classes.
  public var latentRandom: [UInt64]
  /// Where the data order stands.
  public var data: DataPosition
  public var generatorOptimizer: Adam.State
  public var discriminatorOptimizer: Adam.State

  public init(step: Int, latentRandom: [UInt64], data: DataPosition, generatorOptimizer: Adam.State, discriminatorOptimizer: Adam.State) {
    self.step = step
    self.latentRandom = latentRandom
    self.data = data
    self.generatorOptimizer = generatorOptimizer
    self.discriminatorOptimizer = discriminatorOptimizer
  }
}
