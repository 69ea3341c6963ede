import BGKernels
import Foundation

@testable import BigGAN

/// Replicas as threads of one process, for checking replica arithmetic
/// without MPI: each collective call is an exchange of every rank's value.
final class LocalReplicas: @unchecked Sendable {
  let count: Int
  private let condition = NSCondition()
  private var slots: [Any?]
  private var published: [Any?] = []
  private var arrived = 0
  private var generation = 0

  init(count: Int) {
    self.count = count
    slots = Array(repeating: nil, count: count)
  }

  /// Every rank's `value`, in rank order, once all ranks have given theirs.
  func exchange<T>(_ value: T, rank: Int) -> [T] {
    condition.lock()
    defer { condition.unlock() }
    slots[rank] = value
    arrived += 1
    let mine = generation
    if arrived == count {
      published = slots
      arrived = 0
      generation += 1
      condition.broadcast()
    } else {
      while generation == mine { condition.wait() }
    }
    return published.map { $0 as! T }
  }

  /// Runs `body` once per rank, each on its own thread with the calling
  /// thread's kernel settings, and returns the results in rank order.
  func run<T>(_ body: @escaping @Sendable (LocalReplica) throws -> T) throws -> [T] {
    let results = Results<T>(count: count)
    let group = DispatchGroup()
    let settings = Machine.settings
    for r in 0..<count {
      let thread = Thread { [self] in
        defer { group.leave() }
        do {
          let value = try Machine.with(settings) { try body(LocalReplica(rank: r, shared: self)) }
          results.set(r, .success(value))
        } catch {
          results.set(r, .failure(error))
        }
      }
      thread.stackSize = 8 << 20
      group.enter()
      thread.start()
    }
    group.wait()
    return try results.values.map { try $0!.get() }
  }

  private final class Results<T>: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Result<T, any Error>?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, any Error>) {
      lock.lock()
      values[i] = r
      lock.unlock()
    }
  }
}

/// One rank of `LocalReplicas`.
final class LocalReplica: ReplicaGroup {
  let rank: Int
  let shared: LocalReplicas
  var count: Int { shared.count }
  var communicationSeconds: Double { 0 }

  init(rank: Int, shared: LocalReplicas) {
    self.rank = rank
    self.shared = shared
  }

  func allGather(_ values: [Double]) -> [Double] { shared.exchange(values, rank: rank).flatMap { $0 } }

  func sum(_ values: inout [Float]) {
    let all = shared.exchange(values, rank: rank)
    for i in values.indices {
      var s = all[0][i]
      for r in 1..<count { s += all[r][i] }
      values[i] = s
    }
  }

  func broadcast(_ bytes: [UInt8], from root: Int) -> [UInt8] { shared.exchange(bytes, rank: rank)[root] }
}
