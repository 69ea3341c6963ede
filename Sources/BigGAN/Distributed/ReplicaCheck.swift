import BGKernels

extension Trainer {
  /// A hash of everything replicas must agree on: the weights and buffers
  /// of G, D and G_ema, both optimizers' moments and steps, the latent
  /// stream, the data position and the step.
  public var stateChecksum: UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    func mix(_ word: UInt64) { h = (h ^ word) &* 0x0000_0100_0000_01b3 }
    func mix(_ t: Tensor) { for v in t.storage { mix(UInt64(v.bitPattern)) } }
    for m in [generator, discriminator, average] as [any Module] {
      for p in m.parameters { mix(p.value) }
      for b in m.buffers { mix(b.value) }
    }
    let saved = state
    for o in [saved.generatorOptimizer, saved.discriminatorOptimizer] {
      mix(UInt64(o.step))
      for (_, t) in o.moments { mix(t) }
    }
    for w in saved.latentRandom { mix(w) }
    for v in [saved.data.epoch, saved.data.offset, saved.step] { mix(UInt64(bitPattern: Int64(v))) }
    return h
  }

  /// Throws unless every rank's `stateChecksum` is rank 0's; without
  /// replicas, does nothing.
  public func verifyReplicas() throws {
    guard let replicas else { return }
    let h = stateChecksum
    let all = replicas.allGather([Double(h >> 32), Double(h & 0xffff_ffff)])
    if let r = (1..<replicas.count).first(where: { all[2 * $0] != all[0] || all[2 * $0 + 1] != all[1] }) {
      throw TrainingError.diverged(step: step, rank: r)
    }
  }
}
