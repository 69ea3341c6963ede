/// What every layer of one model shares: spectral normalisation (or none,
/// for imported weights with it folded in), the batch-norm epsilon and
/// statistics rows, and how fresh weights are drawn.
struct LayerSettings {
  /// The spectral norm's epsilon; nil: weights are used as stored.
  var snEps: Float?
  var bnEps: Float
  var statisticsRows = 1
  var initialization: Initialization
}

extension BigGANConfiguration {
  var layerSettings: LayerSettings {
    LayerSettings(
      snEps: spectralNorm ? snEps : nil, bnEps: bnEps, statisticsRows: statisticsRows,
      initialization: initialization)
  }
}
