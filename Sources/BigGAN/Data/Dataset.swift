import BGKernels
import Foundation

/// A class-conditional image data set: `count` images of
/// `resolution x resolution` RGB (uint8, row-major HWC) with labels in
/// `0..<classes`.
public protocol ImageDataset: Sendable {
  var count: Int { get }
  var classes: Int { get }
  var resolution: Int { get }
  /// The class names, index order.
  var classNames: [String] { get }
  /// Image `index` and its label, as drawn in `epoch` (random
  /// augmentation, such as flips, may depend on it).
  func sample(_ index: Int, epoch: Int) throws -> (pixels: [UInt8], label: Int)
}

/// Where a data order stands: the epoch and the position inside it. Saved in
/// checkpoints so a resumed run sees the same images in the same order.
public struct DataPosition: Codable, Equatable, Sendable {
  public var epoch: Int
  public var offset: Int

  public init(epoch: Int = 0, offset: Int = 0) {
    self.epoch = epoch
    self.offset = offset
  }
}

/// Batches in a seeded random order, one permutation per epoch, assembled
/// by a background thread into a bounded queue so loading and decoding
/// overlap the training computation. The order depends only on the seed
/// and the position, never on timing. The thread ends when the loader is
/// released (or `stop()` is called).
///
/// A replica of a data-parallel run walks the same global order and loads
/// only its slice of each batch, so which images a step sees does not
/// depend on the number of replicas.
public final class BatchLoader: @unchecked Sendable {
  public var dataset: any ImageDataset { queue.dataset }
  /// The global batch: the order advances by this much per batch.
  public var batch: Int { queue.batch }
  /// The images of each batch this loader returns.
  public var part: Range<Int> { queue.part }
  public var seed: UInt64 { queue.seed }
  /// What the thread and the loader share; the thread holds only this, so
  /// releasing the loader stops it.
  private let queue: BatchQueue
  /// The position of the next batch `next()` returns.
  public private(set) var position: DataPosition

  /// - Parameters:
  ///   - indices: the images to draw from (e.g. all but a held-out slice);
  ///     every image by default.
  ///   - part: the images of each batch to load (a replica's slice); the
  ///     whole batch by default.
  public init(
    dataset: any ImageDataset, batch: Int, seed: UInt64, indices: [Int]? = nil,
    position: DataPosition = DataPosition(), part: Range<Int>? = nil
  ) {
    let queue = BatchQueue(
      dataset: dataset, batch: batch, part: part ?? 0..<batch, seed: seed, indices: indices ?? Array(0..<dataset.count))
    self.queue = queue
    self.position = position
    let thread = Thread { queue.produce(from: position) }
    thread.stackSize = 1 << 20
    thread.start()
  }

  deinit { stop() }

  /// Ends the background thread.
  public func stop() { queue.stop() }

  /// The next batch (its `part`): images `[part.count, r, r, 3]` in
  /// [-1, 1] and labels.
  public func next() throws -> (images: Tensor, labels: [Int]) {
    let item = try queue.next()
    position = item.next
    return (item.images, item.labels)
  }
}

/// A `BatchLoader`'s bounded queue and the producer that fills it.
private final class BatchQueue: @unchecked Sendable {
  let dataset: any ImageDataset
  let batch: Int
  let part: Range<Int>
  let seed: UInt64
  private let indices: [Int]
  private let condition = NSCondition()
  private var items: [(images: Tensor, labels: [Int], next: DataPosition)] = []
  private var failure: Error?
  private var stopped = false
  private let capacity = 3

  init(dataset: any ImageDataset, batch: Int, part: Range<Int>, seed: UInt64, indices: [Int]) {
    self.dataset = dataset
    self.batch = batch
    self.part = part
    self.seed = seed
    self.indices = indices
  }

  func stop() {
    condition.lock()
    stopped = true
    condition.broadcast()
    condition.unlock()
  }

  /// The oldest batch and the position after it; waits for the producer.
  func next() throws -> (images: Tensor, labels: [Int], next: DataPosition) {
    condition.lock()
    defer { condition.unlock() }
    while items.isEmpty && failure == nil { condition.wait() }
    if items.isEmpty, let failure { throw failure }
    let item = items.removeFirst()
    condition.broadcast()
    return item
  }

  private func order(epoch: Int) -> [Int] {
    var rng = SeededRandom(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
    var o = indices
    o.shuffle(using: &rng)
    return o
  }

  /// The thread's body: batches from `start` on until stopped or a sample
  /// fails.
  func produce(from start: DataPosition) {
    var pos = start
    var epochOrder = order(epoch: pos.epoch)
    let r = dataset.resolution
    while true {
      condition.lock()
      while items.count >= capacity && !stopped { condition.wait() }
      let done = stopped
      condition.unlock()
      if done { return }
      var images = Tensor(shape: [part.count, r, r, 3])
      var labels: [Int] = []
      do {
        for b in 0..<batch {
          if pos.offset >= epochOrder.count {
            pos = DataPosition(epoch: pos.epoch + 1, offset: 0)
            epochOrder = order(epoch: pos.epoch)
          }
          let index = epochOrder[pos.offset]
          pos.offset += 1
          guard part.contains(b) else { continue }
          let (pixels, label) = try dataset.sample(index, epoch: pos.epoch)
          let base = (b - part.lowerBound) * r * r * 3
          for i in 0..<(r * r * 3) { images.storage[base + i] = Float(pixels[i]) / 127.5 - 1 }
          labels.append(label)
        }
      } catch {
        condition.lock()
        failure = error
        condition.broadcast()
        condition.unlock()
        return
      }
      condition.lock()
      items.append((images, labels, pos))
      condition.broadcast()
      condition.unlock()
    }
  }
}
