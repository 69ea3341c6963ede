import Testing

@testable import BigGAN

/// What a training iteration reports, which `bench` turns into images/s.
struct StepReportTests {
  @Test("an iteration counts D steps x accumulation x (fake + real) batches plus the G step's accumulated batches")
  func images() throws {
    var recipe = TrainingTests.recipe
    recipe.batch = 2
    recipe.accumulate = 2
    recipe.discriminatorSteps = 3
    let t = try Trainer(model: TrainingTests.model, recipe: recipe, dataset: ShapesDataset(resolution: 32, count: 16, seed: 1))
    #expect(try t.trainStep().images == 3 * 2 * 2 * 2 + 2 * 2)
  }
}
