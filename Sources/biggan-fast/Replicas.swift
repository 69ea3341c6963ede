import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// Runs `body` as one rank of the MPI job mpirun or srun started (with the
/// job's ranks; `nil` without a job or with a single rank), then leaves
/// the job. Kernel threads: `threads`, else OMP_NUM_THREADS, else in a job
/// this machine's cores shared between its ranks.
///
/// An error of this rank alone ends every rank, since the others may be
/// waiting for it in a collective call; an `ExitCode`, which every rank
/// reaches together, ends this one normally.
func inJob(threads: Int?, _ body: (MPIReplicaGroup?) throws -> Void) throws {
  guard MPIReplicaGroup.isLaunched else {
    if let threads { Machine.threads = threads }
    return try body(nil)
  }
  let group = MPIReplicaGroup()
  if let threads {
    Machine.threads = threads
  } else if ProcessInfo.processInfo.environment["OMP_NUM_THREADS"] == nil {
    Machine.threads = max(1, Machine.threads / group.localCount)
  }
  do {
    try body(group.count > 1 ? group : nil)
  } catch let code as ExitCode {
    group.finalize()
    throw code
  } catch {
    StandardError.write("Error: rank \(group.rank) of \(group.count): \(error)\n")
    group.abort(code: 1)
  }
  group.finalize()
}
