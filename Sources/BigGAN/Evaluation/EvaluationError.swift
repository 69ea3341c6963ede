/// Evaluation input that cannot be scored: one line naming the thing and
/// what was expected.
public struct EvaluationError: Error, CustomStringConvertible, Equatable {
  public let description: String

  public init(_ description: String) { self.description = description }
}
