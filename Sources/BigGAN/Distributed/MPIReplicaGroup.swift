import CMPI
import Dispatch
import Foundation

/// The ranks of an Open MPI job (`mpirun`, or `srun` under SLURM) as a
/// replica group. Sums are reduce-scatters and all-gathers built from
/// `MPI_Alltoallv` and `MPI_Allgatherv`, which move bytes without
/// arithmetic, so the order of every addition is this type's: rank order,
/// whatever algorithm the library picks.
///
/// Communication errors abort the job (MPI's default handler): a rank that
/// dies ends every rank instead of leaving them waiting.
public final class MPIReplicaGroup: ReplicaGroup {
  public let rank: Int
  public let count: Int
  /// The ranks on this machine, this one included.
  public let localCount: Int
  /// Seconds spent in collective calls so far: moving data, and waiting
  /// for slower ranks.
  public private(set) var communicationSeconds = 0.0
  private let world = bg_mpi_world()

  /// Runs `body`, adding its time to `communicationSeconds`.
  private func timed<T>(_ body: () -> T) -> T {
    let start = DispatchTime.now().uptimeNanoseconds
    defer { communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }
    return body()
  }

  /// Whether this process was started by an MPI launcher.
  public static var isLaunched: Bool {
    let environment = ProcessInfo.processInfo.environment
    return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"].contains { environment[$0] != nil }
  }

  /// Joins the job; call once per process, before any other MPI use.
  public init() {
    var provided: Int32 = 0
    MPI_Init_thread(nil, nil, bg_mpi_thread_funneled(), &provided)
    var r: Int32 = 0, n: Int32 = 0
    MPI_Comm_rank(world, &r)
    MPI_Comm_size(world, &n)
    var node: MPI_Comm? = nil
    MPI_Comm_split_type(world, Int32(MPI_COMM_TYPE_SHARED), r, bg_mpi_info_null(), &node)
    var local: Int32 = 1
    MPI_Comm_size(node, &local)
    MPI_Comm_free(&node)
    (rank, count, localCount) = (Int(r), Int(n), Int(local))
  }

  /// Leaves the job; the last call of a process that finished normally.
  public func finalize() { MPI_Finalize() }

  /// Ends every rank of the job with `code`.
  public func abort(code: Int32) -> Never {
    MPI_Abort(world, code)
    exit(code)
  }

  public func allGather(_ values: [Double]) -> [Double] {
    timed { gather(values) }
  }

  private func gather(_ values: [Double]) -> [Double] {
    var all = [Double](repeating: 0, count: values.count * count)
    values.withUnsafeBufferPointer { send in
      all.withUnsafeMutableBufferPointer { receive in
        _ = MPI_Allgather(
          send.baseAddress, Int32(values.count), bg_mpi_double(), receive.baseAddress, Int32(values.count),
          bg_mpi_double(), world)
      }
    }
    return all
  }

  public func broadcast(_ bytes: [UInt8], from root: Int) -> [UInt8] {
    timed { send(bytes, from: root) }
  }

  private func send(_ bytes: [UInt8], from root: Int) -> [UInt8] {
    var length = Int64(bytes.count)
    MPI_Bcast(&length, 8, bg_mpi_byte(), Int32(root), world)
    var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length))
    out.withUnsafeMutableBytes { _ = MPI_Bcast($0.baseAddress, Int32(length), bg_mpi_byte(), Int32(root), world) }
    return out
  }

  /// Below this many values per rank, every rank gathers everything and
  /// adds it up itself: one message instead of two.
  private let gatherLimit = 16_384
  /// MPI counts are 32-bit: longer arrays go in pieces.
  private let pieceLimit = 1 << 28

  public func sum(_ values: inout [Float]) {
    guard count > 1 else { return }
    timed {
      values.withUnsafeMutableBufferPointer { buffer in
        var start = 0
        while start < buffer.count {
          let piece = UnsafeMutableBufferPointer(rebasing: buffer[start..<min(buffer.count, start + pieceLimit)])
          if piece.count <= gatherLimit { sumByGathering(piece) } else { sumByScattering(piece) }
          start += piece.count
        }
      }
    }
  }

  private func sumByGathering(_ values: UnsafeMutableBufferPointer<Float>) {
    let n = values.count
    var all = [Float](repeating: 0, count: n * count)
    all.withUnsafeMutableBufferPointer { receive in
      _ = MPI_Allgather(values.baseAddress, Int32(n), bg_mpi_float(), receive.baseAddress, Int32(n), bg_mpi_float(), world)
      for i in 0..<n {
        var s = receive[i]
        for r in 1..<count { s += receive[r * n + i] }
        values[i] = s
      }
    }
  }

  /// Rank j adds up chunk j of every rank's values, in rank order, then
  /// every rank gathers the added chunks.
  private func sumByScattering(_ values: UnsafeMutableBufferPointer<Float>) {
    let n = values.count
    let bounds = (0...count).map { n * $0 / count }
    let counts = (0..<count).map { Int32(bounds[$0 + 1] - bounds[$0]) }
    let offsets = (0..<count).map { Int32(bounds[$0]) }
    let mine = Int(counts[rank])
    var pieces = [Float](repeating: 0, count: mine * count)
    var chunk = [Float](repeating: 0, count: mine)
    pieces.withUnsafeMutableBufferPointer { receive in
      _ = MPI_Alltoallv(
        values.baseAddress, counts, offsets, bg_mpi_float(), receive.baseAddress,
        [Int32](repeating: Int32(mine), count: count), (0..<count).map { Int32($0 * mine) }, bg_mpi_float(), world)
      for i in 0..<mine {
        var s = receive[i]
        for r in 1..<count { s += receive[r * mine + i] }
        chunk[i] = s
      }
    }
    _ = MPI_Allgatherv(chunk, Int32(mine), bg_mpi_float(), values.baseAddress, counts, offsets, bg_mpi_float(), world)
  }
}
