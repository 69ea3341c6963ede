import BGKernels

/// Adam over a fixed list of parameters (PyTorch's update rule), with the
/// moments kept per parameter so they can be checkpointed by name.
public final class Adam {
  public var learningRate: Float
  public let beta1: Float
  public let beta2: Float
  public let epsilon: Float
  /// Updates applied so far (the bias-correction step).
  public internal(set) var step = 0
  let parameters: [Parameter]
  var m: [Tensor]
  var v: [Tensor]

  public init(parameters: [Parameter], learningRate: Float, beta1: Float, beta2: Float, epsilon: Float) {
    self.parameters = parameters
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    m = parameters.map { Tensor(shape: $0.value.shape) }
    v = m
  }

  /// Applies one update from the parameters' current gradients.
  public func update() throws(KernelError) {
    step += 1
    for i in parameters.indices {
      try parameters[i].value.adamStep(
        gradient: parameters[i].gradient, m: &m[i], v: &v[i], learningRate: learningRate,
        beta1: beta1, beta2: beta2, epsilon: epsilon, step: step)
    }
  }

  /// The moments by name (`m.<parameter>`, `v.<parameter>`), for checkpoints.
  var state: [(String, Tensor)] {
    zip(parameters, zip(m, v)).flatMap { p, mv in [("m.\(p.name)", mv.0), ("v.\(p.name)", mv.1)] }
  }

  /// Restores moments saved by `state` from `file` under `prefix`.
  func load(from file: SafeTensorsFile, prefix: String, step: Int) throws(SafeTensorsError) {
    for i in parameters.indices {
      let shape = parameters[i].value.shape
      m[i] = try file.tensor("\(prefix)m.\(parameters[i].name)", shape: shape)
      v[i] = try file.tensor("\(prefix)v.\(parameters[i].name)", shape: shape)
    }
    self.step = step
  }
}
