/// The processes of a data-parallel run: each holds the same model and
/// takes its own slice of every batch. Every rank must make the same
/// collective calls in the same order.
public protocol ReplicaGroup: AnyObject {
  /// This process's index, `0..<count`.
  var rank: Int { get }
  /// The number of processes.
  var count: Int { get }
  /// Seconds spent in collective calls so far (moving data and waiting for
  /// slower ranks).
  var communicationSeconds: Double { get }
  /// Every rank's `values` (each rank gives as many), concatenated in rank
  /// order.
  func allGather(_ values: [Double]) -> [Double]
  /// Replaces `values` by their element-wise sum over the ranks, added in
  /// rank order: every rank and every run get the same bits.
  func sum(_ values: inout [Float])
  /// Rank `root`'s `bytes`, on every rank.
  func broadcast(_ bytes: [UInt8], from root: Int) -> [UInt8]
}

extension ReplicaGroup {
  /// The element-wise sum over the ranks, in rank order.
  public func sum(_ values: [Double]) -> [Double] {
    let all = allGather(values), n = values.count
    var total = Array(all[0..<n])
    for r in 1..<max(count, 1) {
      for i in 0..<n { total[i] += all[r * n + i] }
    }
    return total
  }

  /// Whether any rank passed `true`.
  public func any(_ flag: Bool) -> Bool {
    allGather([flag ? 1 : 0]).contains(1)
  }

  /// The images of a global batch of `batch` this rank takes: the ranks
  /// split it into equal consecutive slices in rank order.
  public func slice(ofBatch batch: Int) -> Range<Int> {
    let part = batch / count
    return rank * part..<(rank + 1) * part
  }
}

/// Whose images a batch-norm's training statistics come from.
public enum BatchStatisticsScope {
  /// This process's batch.
  case local
  /// The batch of every replica together (cross-replica batch-norm): the
  /// statistics of the global batch, in the forward and the backward pass.
  case allReplicas(any ReplicaGroup)
  /// Each replica's own batch (per-replica batch-norm); the running averages
  /// take in the mean over replicas, so every rank keeps the same state.
  case eachReplica(any ReplicaGroup)
}
