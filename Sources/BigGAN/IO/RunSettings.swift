/// The `recipe` object of `state.json` and `config.json`: the trainer's
/// recipe and the run's schedule side by side in one flat object, as those
/// files have always kept them, so checkpoints of every version resume.
public struct RunSettings: Codable, Equatable, Sendable {
  public var recipe: TrainingRecipe
  public var schedule: RunSchedule

  public init(recipe: TrainingRecipe, schedule: RunSchedule) {
    self.recipe = recipe
    self.schedule = schedule
  }

  /// Both read the one object, each its own keys.
  public init(from decoder: any Decoder) throws {
    recipe = try TrainingRecipe(from: decoder)
    schedule = try RunSchedule(from: decoder)
  }

  /// Both write into the one object; their keys do not overlap.
  public func encode(to encoder: any Encoder) throws {
    try recipe.encode(to: encoder)
    try schedule.encode(to: encoder)
  }
}
