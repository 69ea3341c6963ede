import ArgumentParser
import BGKernels
import BigGAN

/// `biggan-fast info`: the architecture, its parameter counts, and the
/// preset's recipe and schedule.
struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print a configuration's architecture, parameter counts, training recipe and schedule.")

  @OptionGroup var model: ModelOptions

  func run() throws {
    let c = try model.resolve(), named = try preset(named: model.config)
    try MemoryBudget.require(c.estimatedParameterBytes, for: model.flags, "the model's parameters")
    // Shapes only: counting needs no random initialisation.
    let g = try Generator(c, seed: 0, initialization: .zeros)
    let d = try Discriminator(c, seed: 0, initialization: .zeros)
    print("config:        \(model.config)")
    print("summary:       \(named.summary)")
    print("resolution:    \(c.resolution)")
    print("channels:      G ch \(c.generatorChannels), D ch \(c.discriminatorChannels)")
    print("latent:        dim_z \(c.dimZ)\(c.hierarchical ? " (hierarchical)" : " (stem only)"), \(describeEmbedding(c)), \(c.classes) classes")
    print("attention:     G at \(list(c.generatorAttention)), D at \(list(c.discriminatorAttention))")
    print("G parameters:  \(grouped(g.parameterCount))")
    print("D parameters:  \(grouped(d.parameterCount))")
    print("recipe:        \(named.recipe)")
    print("schedule:      \(named.schedule)")
    // What data-parallel ranks exchange per iteration of the preset's recipe.
    let dSteps = named.recipe.discriminatorSteps
    let summed = dSteps * d.parameterCount + g.parameterCount
    let norms = g.buffers.filter { $0.name.hasSuffix("stored_mean") }
    print("batch-norm:    G \(norms.count) layers, \(grouped(norms.reduce(0) { $0 + $1.value.count })) channels")
    print("ranks share:   \(grouped(summed)) gradient values per iteration (\(dSteps) x D + G)")
  }

  func list(_ r: [Int]) -> String { r.isEmpty ? "none" : r.map { "\($0) px" }.joined(separator: ", ") }

  func grouped(_ n: Int) -> String {
    var s = String(n), out = ""
    while s.count > 3 {
      out = "," + s.suffix(3) + out
      s = String(s.dropLast(3))
    }
    return s + out
  }
}
