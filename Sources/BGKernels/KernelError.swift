/// A kernel call that cannot run as asked: the message names the argument
/// and what was expected.
public enum KernelError: Error, CustomStringConvertible, Equatable, Sendable {
  /// Shapes or sizes that do not fit together.
  case shape(String)
  /// A request this machine cannot serve.
  case unsupported(String)

  public var description: String {
    switch self {
    case .shape(let message), .unsupported(let message): return message
    }
  }
}
