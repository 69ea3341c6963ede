import ArgumentParser
import BGKernels
import BigGAN

/// `biggan-fast info`: the architecture and its parameter counts.
struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print a configuration's architecture and parameter counts.")

  @OptionGroup var model: ModelOptions

  func run() throws {
    let c = try model.resolve()
    try MemoryBudget.require(c.estimatedParameterBytes, for: model.flags, "the model's parameters")
    // Shapes only: counting needs no random initialisation.
    let g = try Generator(c, seed: 0, initialization: .zeros)
    let d = try Discriminator(c, seed: 0, initialization: .zeros)
    print("config:        \(model.config)")
    print("resolution:    \(c.resolution)")
    print("channels:      G ch \(c.generatorChannels), D ch \(c.discriminatorChannels)")
    print("latent:        dim_z \(c.dimZ)\(c.hierarchical ? " (hierarchical)" : ""), shared embedding \(c.sharedDim), \(c.classes) classes")
    print("attention:     G at \(list(c.generatorAttention)), D at \(list(c.discriminatorAttention))")
    print("G parameters:  \(grouped(g.parameterCount))")
    print("D parameters:  \(grouped(d.parameterCount))")
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
