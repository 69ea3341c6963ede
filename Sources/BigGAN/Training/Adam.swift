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

  /// What a checkpoint keeps of an optimizer: its update count and its
  /// moments by name.
  public struct State: Sendable {
    /// Updates applied (the bias-correction step).
    public var step: Int
    /// `m.<parameter>` and `v.<parameter>`, each of its parameter's shape,
    /// in parameter order.
    public var moments: [(name: String, value: Tensor)]

    public init(step: Int, moments: [(name: String, value: Tensor)]) {
      self.step = step
      self.moments = moments
    }
  }

  /// The update count and the moments (sharing storage with the optimizer's
  /// until either changes).
  public var state: State {
    State(step: step, moments: zip(parameters, zip(m, v)).flatMap { p, mv in [("m.\(p.name)", mv.0), ("v.\(p.name)", mv.1)] })
  }

  /// Continues from `state`: every parameter's two moments must be there,
  /// in its shape.
  func restore(_ state: State) throws(TrainingError) {
    var saved: [String: Tensor] = [:]
    for (name, value) in state.moments { saved[name] = value }
    for i in parameters.indices {
      for kind in ["m", "v"] {
        let name = "\(kind).\(parameters[i].name)", shape = parameters[i].value.shape
        guard let value = saved[name], value.shape == shape else {
          throw .invalid("optimizer state: moment \(name) \(saved[name].map { "has shape \($0.shape)" } ?? "is missing"); this model's is \(shape) (another configuration?)")
        }
        if kind == "m" { m[i] = value } else { v[i] = value }
      }
    }
    step = state.step
  }
}
