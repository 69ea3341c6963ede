import BGKernels

extension BatchStatisticsScope {
  /// The statistics a training-mode batch-norm normalises `x` (`[batch,
  /// ..., channels]`) with and `count`, the values per channel behind them;
  /// and those its running averages take in, with their count.
  func trainingStatistics(of x: Tensor) throws(KernelError) -> (
    mean: Tensor, variance: Tensor, count: Int, running: (mean: Tensor, variance: Tensor, count: Int)
  ) {
    switch self {
    case .local:
      let (m, v) = try batchStatistics(x)
      let count = x.count / x.shape[x.shape.count - 1]
      return (m, v, count, (m, v, count))
    case .allReplicas(let group):
      let (m, v, count) = try combinedStatistics(try batchMoments(x), group: group)
      return (m, v, count, (m, v, count))
    case .eachReplica(let group):
      let (m, v) = try batchStatistics(x)
      let count = x.count / x.shape[x.shape.count - 1], c = m.count
      let all = group.allGather(m.storage.map(Double.init) + v.storage.map(Double.init))
      var mean = Tensor(shape: [c]), variance = Tensor(shape: [c])
      for j in 0..<c {
        var sm = 0.0, sv = 0.0
        for r in 0..<group.count {
          sm += all[r * 2 * c + j]
          sv += all[r * 2 * c + c + j]
        }
        mean.storage[j] = Float(sm / Double(group.count))
        variance.storage[j] = Float(sv / Double(group.count))
      }
      return (m, v, count, (mean, variance, count))
    }
  }
}

/// Every replica's per-channel moments merged in rank order (Chan, Golub
/// and LeVeque's pairwise update, exact in exact arithmetic): the mean and
/// biased variance of the global batch, and its count per channel.
func combinedStatistics(
  _ local: (count: Int, mean: [Double], m2: [Double]), group: any ReplicaGroup
) throws(KernelError) -> (mean: Tensor, variance: Tensor, count: Int) {
  let c = local.mean.count, width = 1 + 2 * c
  let all = group.allGather([Double(local.count)] + local.mean + local.m2)
  var n = 0.0
  var mean = [Double](repeating: 0, count: c), m2 = mean
  for r in 0..<group.count {
    let base = r * width, nb = all[base]
    guard nb > 0 else { continue }
    let total = n + nb
    for j in 0..<c {
      let delta = all[base + 1 + j] - mean[j]
      mean[j] += delta * nb / total
      m2[j] += all[base + 1 + c + j] + delta * delta * n * nb / total
    }
    n = total
  }
  guard n > 0 else { throw .shape("cross-replica batch-norm: no values in any replica's batch") }
  return (
    try Tensor(shape: [c], storage: mean.map { Float($0) }),
    try Tensor(shape: [c], storage: m2.map { Float($0 / n) }), Int(n)
  )
}

/// `batchNormBackward` through statistics of every replica's batch: the
/// two per-channel gradient sums are added over the replicas before `dx`.
/// `count` is the global batch's values per channel.
func crossReplicaBatchNormBackward(
  _ x: Tensor, mean: Tensor, variance: Tensor, epsilon: Float, gain: Tensor?, bias: Tensor?,
  relu: Bool, outputGradient dy: Tensor, count: Int, group: any ReplicaGroup
) throws(KernelError) -> (input: Tensor, gain: Tensor, bias: Tensor) {
  let local = try batchNormGradientSums(
    x, mean: mean, variance: variance, epsilon: epsilon, gain: gain, bias: bias, relu: relu,
    outputGradient: dy)
  let c = local.sum.count
  let total = group.sum(local.sum + local.sumTimesNormalized)
  let meanSum = try Tensor(shape: [c], storage: total[0..<c].map { Float($0 / Double(count)) })
  let meanSumXhat = try Tensor(shape: [c], storage: total[c...].map { Float($0 / Double(count)) })
  let dx = try batchNormInputGradient(
    x, mean: mean, variance: variance, epsilon: epsilon, gain: gain, bias: bias, relu: relu,
    outputGradient: dy, meanSum: meanSum, meanSumTimesNormalized: meanSumXhat)
  return (dx, local.gain, local.bias)
}
