/// Upper estimates, from the settings alone, of what a model needs: its
/// parameter counts and the bytes of a training step or a sampling batch.
/// They are computed in floating point, so absurd settings give huge numbers
/// instead of overflowing, and nothing is allocated to find them.
extension BigGANConfiguration {
  /// The generator's parameters (weights, biases, embeddings, batch-norm
  /// gains and biases) and batch-norm statistics.
  public var estimatedGeneratorParameters: Double {
    // Each batch-norm channel has a gain and a bias row of the condition
    // (and of its own class embeddings, without a shared one) and a mean
    // and a variance per statistics row.
    let cond = Double(conditionDim) + Double(normEmbeddingClasses ?? 0) + Double(statisticsRows)
    var n = sharedEmbedding ? Double(classes) * Double(sharedDim) : 0
    n += Double(width(of: stemInput)) * Double(stemChannels) * 16
    for b in generatorBlocks {
      let i = Double(b.in), o = Double(b.out)
      switch architecture {
      case .biggan:
        n += 9 * i * o + 9 * o * o + i * o + 2 * cond * (i + o)
      case .deep:
        let h = i / 4
        n += i * h + 18 * h * h + h * o + 2 * cond * (i + 3 * h)
      }
      if b.attention != nil { n += 1.25 * o * o }
    }
    let last = Double(generatorBlocks.last?.out ?? 0)
    return n + 2 * Double(statisticsRows) * last + 27 * last
  }

  /// The discriminator's parameters.
  public var estimatedDiscriminatorParameters: Double {
    var n = architecture == .deep ? 27 * Double(discriminatorBlocks.first?.in ?? 0) : 0
    for b in discriminatorBlocks {
      let i = Double(b.in), o = Double(b.out)
      switch architecture {
      case .biggan:
        n += 9 * i * o + 9 * o * o + i * o
      case .deep:
        let h = o / 4
        n += i * h + 18 * h * h + h * o + i * max(o - i, 0)
      }
      if b.attention != nil { n += 1.25 * o * o }
    }
    let last = Double(discriminatorBlocks.last?.out ?? 0)
    return n + last + Double(classes) * last
  }

  /// Floats of the activations one image leaves in the generator's blocks
  /// (each block's output, at its resolution and width).
  var generatorActivationsPerImage: Double {
    generatorBlocks.reduce(Double(stemChannels) * 16) { n, b in
      let r = Double(b.upsample ? b.resolution : b.resolution * 2)
      return n + r * r * (Double(b.in) + Double(b.out))
    }
  }

  /// Floats of the activations one image leaves in the discriminator's
  /// blocks.
  var discriminatorActivationsPerImage: Double {
    discriminatorBlocks.reduce(Double(resolution * resolution * 3)) { n, b in
      let input = Double(b.downsample ? b.resolution * 2 : b.resolution)
      return n + input * input * (Double(b.in) + Double(b.out))
    }
  }

  /// Floats of the largest Gram matrix `W W^T` that G's orthogonal
  /// regularisation forms: the stem linear's, whose `16 * stemChannels`
  /// rows outnumber every other weight's.
  var orthogonalGramFloats: Double {
    let rows = 16 * Double(stemChannels)
    return rows * rows
  }

  /// Bytes of one training step at `batch` images per accumulation: G's
  /// weights, gradients, Adam moments and moving average (a generator of
  /// its own, gradients included), D's weights, gradients and moments, the
  /// spectrally normalised weights of both (kept from each forward to its
  /// backward), the activations kept for the backward passes of G on
  /// `batch` images and of D on `2 * batch`, and the orthogonal
  /// regularisation's largest Gram matrix.
  public func estimatedTrainingBytes(batch: Int) -> Double {
    // A block keeps about this many tensors of its input and output widths
    // for the backward pass (inputs of its batch-norms, ReLUs and
    // convolutions, and the skip); measured peaks of cifar32 steps are well
    // below the estimate.
    let keptPerBlock = 4.5
    let weights = 7 * estimatedGeneratorParameters + 5 * estimatedDiscriminatorParameters
    let activations = Double(batch) * keptPerBlock
      * (generatorActivationsPerImage + 2 * discriminatorActivationsPerImage)
    // The Gram matrix comes after the backward passes have released the
    // activations, but the allocator keeps part of their pages: added, not
    // the larger of the two. At 128 px it is the step's peak.
    return 4 * (weights + activations + orthogonalGramFloats)
  }

  /// Bytes of sampling `batch` images with the generator in inference mode:
  /// its weights and the few activations alive at once.
  public func estimatedSamplingBytes(batch: Int) -> Double {
    let alive = 4 * generatorBlocks.reduce(0) { m, b in
      max(m, Double(b.resolution) * Double(b.resolution) * Double(max(b.in, b.out)))
    }
    return 4 * (estimatedGeneratorParameters + Double(batch) * (alive + Double(resolution * resolution * 3)))
  }

  /// Bytes of the generator's and discriminator's weights alone.
  public var estimatedParameterBytes: Double {
    4 * (estimatedGeneratorParameters + estimatedDiscriminatorParameters)
  }
}
