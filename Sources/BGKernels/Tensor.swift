/// A dense tensor of `Float`: a shape and contiguous row-major storage.
///
/// Activations are NHWC (`[batch, height, width, channels]`), convolution
/// weights `[out, kernelHeight, kernelWidth, in]`, matrices `[rows, columns]`.
public struct Tensor: Equatable, Sendable {
  /// Extent of each dimension, outermost first.
  public private(set) var shape: [Int]
  /// The elements, last dimension fastest.
  public var storage: [Float]

  /// A tensor of `shape` with every element `value`.
  public init(shape: [Int], repeating value: Float = 0) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
    self.shape = shape
    self.storage = Array(repeating: value, count: shape.reduce(1, *))
  }

  /// A tensor of `shape` for a kernel that writes every element before
  /// anything reads one: skips the zero fill, which for large activations
  /// costs as much as a pass of the kernel itself.
  init(overwrittenShape shape: [Int]) {
    let count = shape.reduce(1, *)
    self.shape = shape
    self.storage = Array(unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
  }

  /// A tensor of `shape` holding `storage`.
  /// - Throws: `KernelError.shape` when the element count does not match.
  public init(shape: [Int], storage: [Float]) throws(KernelError) {
    guard shape.allSatisfy({ $0 >= 0 }) else {
      throw .shape("shape \(shape) has a negative extent")
    }
    let count = shape.reduce(1, *)
    guard count == storage.count else {
      throw .shape("shape \(shape) needs \(count) elements, got \(storage.count)")
    }
    self.shape = shape
    self.storage = storage
  }

  /// Number of elements.
  public var count: Int { storage.count }

  /// The same elements under another shape with the same count.
  public func reshaped(_ newShape: [Int]) throws(KernelError) -> Tensor {
    try Tensor(shape: newShape, storage: storage)
  }

  /// Checks that this tensor has exactly `expected` as its shape; `name`
  /// goes into the error message.
  public func expect(_ expected: [Int], _ name: String) throws(KernelError) {
    guard shape == expected else {
      throw .shape("\(name) has shape \(shape), expected \(expected)")
    }
  }

  /// Checks that the rank is `rank` and returns the shape; `name` goes into
  /// the error message.
  public func dims(_ rank: Int, _ name: String) throws(KernelError) -> [Int] {
    guard shape.count == rank else {
      throw .shape("\(name) has shape \(shape), expected rank \(rank)")
    }
    return shape
  }
}
