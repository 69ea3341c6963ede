import BGKernels

/// A trainable tensor with its gradient, shared by reference between the
/// layer that uses it and the optimizer that updates it.
public final class Parameter {
  /// The BigGAN-PyTorch state-dict name, e.g. `blocks.0.0.conv1.weight`.
  public let name: String
  public var value: Tensor { didSet { version &+= 1 } }
  /// Changes whenever `value` is assigned or mutated, so that what is
  /// derived from it (kernel plans) can tell when it is stale.
  public private(set) var version = 0
  /// Accumulates across backward passes until `zeroGradient()`.
  public var gradient: Tensor
  /// When false, backward passes skip this parameter's gradient (and the
  /// work of computing it), as PyTorch's `requires_grad = False` does.
  public var requiresGradient = true

  init(_ name: String, _ value: Tensor) {
    self.name = name
    self.value = value
    self.gradient = Tensor(shape: value.shape)
  }

  public func zeroGradient() { gradient = Tensor(shape: value.shape) }

  func accumulate(_ g: Tensor) throws(KernelError) {
    if requiresGradient { try gradient.add(g) }
  }
}

/// A state tensor that is saved with the model but not trained: running
/// batch-norm statistics, spectral-norm vectors.
public final class Buffer {
  public let name: String
  public var value: Tensor { didSet { version &+= 1 } }
  /// Changes whenever `value` is assigned or mutated (see `Parameter`).
  public private(set) var version = 0

  init(_ name: String, _ value: Tensor) {
    self.name = name
    self.value = value
  }
}

/// Anything that owns parameters and buffers, listed in state-dict order.
public protocol Module: AnyObject {
  var parameters: [Parameter] { get }
  var buffers: [Buffer] { get }
}

extension Module {
  /// Number of trainable scalars.
  public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

  public func zeroGradients() { parameters.forEach { $0.zeroGradient() } }

  /// Turns gradient computation for every parameter on or off (BigGAN-PyTorch's
  /// `toggle_grad`): the generator's step backpropagates through D for its
  /// input gradient only.
  public func requireGradients(_ flag: Bool) { parameters.forEach { $0.requiresGradient = flag } }
}

/// Whether a forward pass trains (batch statistics, spectral-norm vector
/// updates) or evaluates (running statistics, vectors left as they are).
public enum Mode: Sendable {
  case training
  /// Training's forward (batch statistics, spectral-norm and running
  /// updates) that keeps nothing for a backward pass: the fake images a D
  /// step only scores, the passes of standing statistics. Memory holds a
  /// few activations instead of all of them, as in `inference`.
  case trainingForwardOnly
  case evaluation
  /// Evaluation that keeps nothing for a backward pass (sampling): each
  /// activation is released once the next layer has read it, so memory
  /// holds a few activations instead of all of them.
  case inference

  /// Whether layers keep what their backward needs.
  var keepsActivations: Bool { self == .training || self == .evaluation }

  /// Whether the forward is training's: batch statistics, and updates of
  /// the spectral-norm vectors and running statistics.
  var isTraining: Bool { self == .training || self == .trainingForwardOnly }
}

/// Joins a prefix and a name with a dot, as PyTorch's module paths do.
func path(_ prefix: String, _ name: String) -> String {
  prefix.isEmpty ? name : "\(prefix).\(name)"
}
