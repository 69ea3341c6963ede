import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// The data classifier: its gradients by finite differences, its training
/// (deterministic), its file (round trip, damaged files refused in one
/// line) and the metrics it gives a generator.
@Suite(.serialized)
struct ClassifierTests {
  static func file(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("classifier-\(getpid())-\(name)").path
  }

  /// A recipe of tiny sizes that trains in a moment.
  static var tinyRecipe: ClassifierRecipe {
    var r = ClassifierRecipe()
    r.steps = 6
    r.batch = 8
    r.widths = [4, 8, 8]
    r.heldOutImages = 20
    r.seed = 3
    return r
  }

  static func trained(resolution: Int = 16) throws -> TrainedClassifier {
    let recipe = tinyRecipe
    let data = ShapesDataset(resolution: resolution, count: 200)
    let split = try ClassifierSplit(count: data.count, recipe: recipe)
    let network = try ClassifierTraining.train(on: data, indices: split.training, recipe: recipe)
    let accuracy = try ClassifierTraining.accuracy(of: network, on: data, indices: split.heldOut)
    return TrainedClassifier(
      network: network,
      record: ClassifierRecord(classNames: data.classNames, resolution: resolution, data: "builtin", dataSeed: 0, recipe: recipe, heldOutAccuracy: accuracy))
  }

  @Test("softmax cross-entropy: log(classes) for equal logits, and its gradient by central differences")
  func crossEntropy() throws {
    let equal = try SoftmaxCrossEntropy.loss(logits: Tensor(shape: [2, 5]), labels: [0, 4])
    #expect(abs(Double(equal.loss) - log(5.0)) < 1e-6)
    var rng = SeededRandom(seed: 1)
    let logits = LayerGradientTests.random([3, 4], &rng, scale: 3)
    let labels = [2, 0, 3]
    let (_, gradient) = try SoftmaxCrossEntropy.loss(logits: logits, labels: labels)
    for i in 0..<logits.count {
      let h: Float = 1e-2
      var plus = logits, minus = logits
      plus.storage[i] += h
      minus.storage[i] -= h
      let numeric = (Double(try SoftmaxCrossEntropy.loss(logits: plus, labels: labels).loss) - Double(try SoftmaxCrossEntropy.loss(logits: minus, labels: labels).loss)) / Double(2 * h)
      #expect(abs(numeric - Double(gradient.storage[i])) <= 2e-3, "logit \(i): analytic \(gradient.storage[i]), numeric \(numeric)")
    }
    // Rows sum to zero: the softmax's shares less the one-hot label.
    for b in 0..<3 { #expect(abs((0..<4).map { gradient.storage[b * 4 + $0] }.reduce(0, +)) < 1e-6) }
    #expect(throws: KernelError.self) { try SoftmaxCrossEntropy.loss(logits: logits, labels: [0, 4, 1]) }
  }

  @Test("classifier forward and backward: input and every parameter's gradient by central differences")
  func classifierGradients() throws {
    let network = try DataClassifier(classes: 3, resolution: 8, widths: [3, 4], seed: 5)
    var rng = SeededRandom(seed: 6)
    try LayerGradientTests.check(LayerGradientTests.Subject(
      module: network, inputs: [LayerGradientTests.random([2, 8, 8, 3], &rng)],
      forward: { try network.forward($0[0], mode: .training).logits },
      backward: { [try network.backward($0)] }), "classifier", step: 1e-3)
    let (features, logits) = try network.forward(LayerGradientTests.random([2, 8, 8, 3], &rng), mode: .inference)
    #expect(features.shape == [2, 4] && logits.shape == [2, 3])
    #expect(throws: EvaluationError.self) { try DataClassifier(classes: 3, resolution: 12, widths: [3, 4, 5], seed: 0) }
  }

  @Test("training is deterministic, and the held-out split is disjoint from training")
  func training() throws {
    let a = try Self.trained(), b = try Self.trained()
    #expect(StateDict.tensors(of: a.network).map(\.tensor) == StateDict.tensors(of: b.network).map(\.tensor))
    let split = try ClassifierSplit(count: 200, recipe: Self.tinyRecipe)
    #expect(split.heldOut.count == 20 && Set(split.heldOut).isDisjoint(with: split.training) && split.training.count == 180)
  }

  @Test("file round trip: the same record, weights and outputs")
  func roundTrip() throws {
    let path = Self.file("round.safetensors")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let original = try Self.trained()
    try original.write(to: path)
    let loaded = try TrainedClassifier(contentsOf: path)
    #expect(loaded.record == original.record)
    #expect(StateDict.tensors(of: loaded.network).map(\.tensor) == StateDict.tensors(of: original.network).map(\.tensor))
    var rng = SeededRandom(seed: 2)
    let x = LayerGradientTests.random([3, 16, 16, 3], &rng)
    #expect(try loaded.network.forward(x, mode: .inference).logits == original.network.forward(x, mode: .inference).logits)
  }

  @Test("damaged and foreign classifier files: one line naming the file and the problem")
  func damagedFiles() throws {
    let good = try Self.trained()
    let json = String(decoding: try JSONEncoder().encode(good.record), as: UTF8.self)
    let tensors = StateDict.tensors(of: good.network)
    func write(_ name: String, _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) throws -> String {
      let path = Self.file(name)
      try SafeTensorsWriter.write(tensors, metadata: metadata, to: path)
      return path
    }
    var wrongShape = tensors
    wrongShape[wrongShape.count - 2].tensor = Tensor(shape: [10, 7])
    var notFinite = tensors
    notFinite[0].tensor.storage[0] = .nan
    var record = good.record
    record.classNames = ["a", "b"]
    let mismatched = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
    record = good.record
    record.recipe.widths = [4, 8, 8, 8, 8]
    let tooDeep = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
    let junk = Self.file("junk.safetensors")
    try Data("not a classifier".utf8).write(to: URL(fileURLWithPath: junk))
    let cases: [(String, String)] = [
      (junk, "junk.safetensors"),
      (Self.file("absent.safetensors"), "absent.safetensors"),
      (try write("plain.safetensors", tensors, metadata: [:]), "not a classifier file"),
      (try write("json.safetensors", tensors, metadata: ["classifier": "{\"classes\": 10"]), "not readable JSON"),
      (try write("names.safetensors", tensors, metadata: ["classifier": mismatched]), "names 2 classes but has 10"),
      (try write("deep.safetensors", tensors, metadata: ["classifier": tooDeep]), "resolution 16 px; expected a multiple of 32"),
      (try write("shape.safetensors", wrongShape, metadata: ["classifier": json]), "tensor 'linear.weight' has shape [10, 7]"),
      (try write("missing.safetensors", Array(tensors.dropLast()), metadata: ["classifier": json]), "no tensor 'linear.bias'"),
      (try write("extra.safetensors", tensors + [("extra", Tensor(shape: [1]))], metadata: ["classifier": json]), "tensor 'extra' does not belong"),
      (try write("nan.safetensors", notFinite, metadata: ["classifier": json]), "holds NaN"),
    ]
    for (path, fragment) in cases {
      defer { try? FileManager.default.removeItem(atPath: path) }
      do {
        _ = try TrainedClassifier(contentsOf: path)
        Issue.record("\(path) was accepted")
      } catch {
        let message = "\(error)"
        #expect(message.contains(fragment) && message.contains((path as NSString).lastPathComponent) && !message.contains("\n"), "\(message)")
      }
    }
  }

  @Test("a generator's report: every key, shares in [0, 1], and a refusal of a generator of other classes")
  func score() throws {
    let classifier = try Self.trained(resolution: 32)
    let model = BigGANConfiguration(
      resolution: 32, generatorChannels: 4, discriminatorChannels: 4, dimZ: 8, sharedDim: 4, classes: 10,
      generatorAttention: [], discriminatorAttention: [])
    let g = try Generator(model, seed: 1)
    var settings = GenerationSettings(count: 30)
    settings.batch = 7
    let real = ShapesDataset(resolution: 32, count: 200)
    let report = try classifier.score(generator: g, settings, real: real, metrics: ClassifierMetric.allCases)
    let keys = ["count", "classifier_held_out_accuracy", "sample_accuracy"] + ShapesDataset.names.map { "sample_accuracy/\($0)" }
      + ["frechet_classifier_distance", "classification_accuracy_score"]
    #expect(report.values.map(\.key) == keys)
    for (key, value) in report.values where key != "count" && key != "frechet_classifier_distance" {
      #expect((0...1).contains(value), "\(key) \(value)")
    }
    #expect(report["frechet_classifier_distance"]!.isFinite && report["frechet_classifier_distance"]! >= -1e-6)
    // The sample accuracy is the mean of the per-class ones (three images each).
    let perClass = ShapesDataset.names.map { report["sample_accuracy/\($0)"]! }.reduce(0, +) / 10
    #expect(abs(perClass - report["sample_accuracy"]!) < 1e-12)
    var other = model
    other.classes = 3
    #expect(throws: EvaluationError.self) {
      try classifier.score(generator: try Generator(other, seed: 1), settings, real: real, metrics: [.accuracy])
    }
  }
}

/// The classifier against PyTorch (`tools/classifier_fixture.py`): a
/// classifier file written by Python loads, and its features, logits,
/// cross-entropy and gradients agree.
struct ClassifierParityTests {
  @Test("features, logits, softmax cross-entropy, input and weight gradients as PyTorch computes them")
  func againstPyTorch() throws {
    let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent("classifier")
    let classifier = try TrainedClassifier(contentsOf: fixtures.appendingPathComponent("classifier.safetensors").path)
    #expect(classifier.record.classes == 5 && classifier.record.recipe.widths == [4, 6, 8])
    let expected = try SafeTensorsFile(contentsOf: fixtures.appendingPathComponent("expected.safetensors").path)
    let labels = try expected.int64s("labels").map { Int($0) }
    func close(_ ours: Tensor, _ name: String, tolerance: Float = 1e-4) throws {
      let theirs = try expected.tensor(name)
      #expect(ours.shape == theirs.shape, "\(name)")
      let scale = max(theirs.storage.map(abs).max() ?? 0, 1e-6)
      let error = zip(ours.storage, theirs.storage).map { abs($0 - $1) }.max() ?? 0
      #expect(error <= tolerance * scale, "\(name): largest difference \(error), largest value \(scale)")
    }
    let network = classifier.network
    let (features, logits) = try network.forward(try expected.tensor("input"), mode: .training)
    try close(features, "features")
    try close(logits, "logits")
    let (loss, gradient) = try SoftmaxCrossEntropy.loss(logits: logits, labels: labels)
    try close(try Tensor(shape: [1], storage: [loss]), "loss")
    network.zeroGradients()
    try close(try network.backward(gradient), "grad.input")
    for (name, ours) in StateDict.gradients(of: network) { try close(ours, "grad.\(name)") }
  }
}
