import BGKernels
import BigGAN
import Foundation

/// A generator, loaded, and what the page says about it. It is handed
/// once to the renderer's thread and used only there.
public struct StudioModel: @unchecked Sendable {
  public var generator: Generator
  public var description: ModelDescription

  public init(generator: Generator, description: ModelDescription) {
    self.generator = generator
    self.description = description
  }
}

/// What the page and the download recipes say about the loaded model.
public struct ModelDescription: Sendable {
  /// The checkpoint folder or weights file the generator came from.
  public var checkpoint: String
  /// The run folder it was trained in, when known (class names, watching).
  public var runFolder: String?
  /// The run's name, when loaded with `--run`.
  public var runName: String?
  /// `biggan-fast sample` with the options that pick the same generator.
  public var sampleCommand: String
  public var configuration: BigGANConfiguration
  public var precision: Precision

  /// Its training step, when its folder is named after it
  /// (`step-NNNNNNNN`).
  public var step: Int? { RunWatch.step(ofCheckpoint: checkpoint) }

  public init(
    checkpoint: String, runFolder: String?, runName: String?, sampleCommand: String,
    configuration: BigGANConfiguration, precision: Precision
  ) {
    self.checkpoint = checkpoint
    self.runFolder = runFolder
    self.runName = runName
    self.sampleCommand = sampleCommand
    self.configuration = configuration
    self.precision = precision
  }
}

/// What a render job reports, in order: images, then one end.
enum RenderEvent: Sendable {
  case image(index: Int, label: Int, png: [UInt8])
  case done(milliseconds: Double)
  /// A newer request of the same client took its place.
  case cancelled
  case failed(String)
}

/// Owns the generator on one thread of its own (the kernels use OpenMP
/// threads under it) and renders the images of every open request, one
/// image of each in turn, so many clients share it fairly and each sees its
/// first images soon. A client's newer request cancels its older ones.
final class Renderer: @unchecked Sendable {
  /// One request's images and where they go.
  final class Job: @unchecked Sendable {
    let client: String
    let seq: Int
    let inputs: SampleInputs
    let truncation: Double
    let blend: StatisticsBlend
    /// Render images with these indices (all, or one for a download).
    let indices: [Int]
    /// Text chunks every image's PNG carries (a download's recipe).
    let text: [(keyword: String, text: String)]
    let emit: @Sendable (RenderEvent) -> Void
    let start = ContinuousClock.now
    var position = 0
    var cancelled = false

    init(
      client: String, seq: Int, inputs: SampleInputs, truncation: Double, blend: StatisticsBlend, indices: [Int],
      text: [(keyword: String, text: String)], emit: @escaping @Sendable (RenderEvent) -> Void
    ) {
      self.client = client
      self.seq = seq
      self.inputs = inputs
      self.truncation = truncation
      self.blend = blend
      self.indices = indices
      self.text = text
      self.emit = emit
    }
  }

  /// Client ids remembered before those without open requests are dropped.
  static let maxClients = 4096

  private let condition = NSCondition()
  private var jobs: [Job] = []
  private var turn = 0
  private var newestSeq: [String: Int] = [:]
  private var reloads: [@Sendable (Result<ModelDescription, StudioError>) -> Void] = []
  private var current: ModelDescription
  private let load: () throws -> StudioModel
  private let maxJobs: Int

  /// Starts the thread with the model `load` gives (called again on
  /// `reload`), refusing more than `maxJobs` open requests.
  init(load: @escaping () throws -> StudioModel, maxJobs: Int) throws {
    let model = try load()
    self.load = load
    self.maxJobs = maxJobs
    current = model.description
    let thread = Thread { [unowned self] in self.run(model) }
    thread.name = "studio-renderer"
    thread.start()
  }

  /// The loaded model's description.
  var model: ModelDescription {
    condition.lock()
    defer { condition.unlock() }
    return current
  }

  /// Queues `job`. A job older than its client's newest is cancelled at
  /// once, and a newer one cancels the client's older ones. Refused when
  /// too many are open.
  func submit(_ job: Job) throws(StudioError) {
    // Events go out with the lock released: a stream's end calls `cancel`.
    condition.lock()
    if !job.client.isEmpty {
      if let newest = newestSeq[job.client], newest > job.seq {
        condition.unlock()
        job.emit(.cancelled)
        return
      }
      // Clients come and go (a tab each): forget those with nothing open
      // rather than keep every id ever seen.
      if newestSeq.count >= Self.maxClients {
        let open = Set(jobs.map(\.client))
        newestSeq = newestSeq.filter { open.contains($0.key) }
      }
      newestSeq[job.client] = job.seq
      for old in jobs where old.client == job.client && old.seq < job.seq { old.cancelled = true }
    }
    guard jobs.count(where: { !$0.cancelled }) < maxJobs else {
      condition.unlock()
      throw .busy("\(maxJobs) image requests are open; try again when one finishes")
    }
    jobs.append(job)
    condition.signal()
    condition.unlock()
  }

  /// Queues the images `indices` of `inputs` as `submit(_:)` does, and
  /// returns the job and its events, which end with the job's end; a
  /// consumer that stops listening cancels the job.
  func submit(
    client: String, seq: Int, inputs: SampleInputs, truncation: Double, blend: StatisticsBlend, indices: [Int],
    text: [(keyword: String, text: String)] = []
  ) throws(StudioError) -> (job: Job, events: AsyncStream<RenderEvent>) {
    let (events, continuation) = AsyncStream<RenderEvent>.makeStream()
    let job = Job(
      client: client, seq: seq, inputs: inputs, truncation: truncation, blend: blend, indices: indices, text: text,
      emit: { event in
        continuation.yield(event)
        if case .image = event { return }
        continuation.finish()
      })
    continuation.onTermination = { [weak self] _ in self?.cancel(job) }
    try submit(job)
    return (job, events)
  }

  /// Cancels `job` (its client went away).
  func cancel(_ job: Job) {
    condition.lock()
    job.cancelled = true
    condition.unlock()
  }

  /// Loads the model again (a run's newest checkpoint) between two images.
  func reload(_ done: @escaping @Sendable (Result<ModelDescription, StudioError>) -> Void) {
    condition.lock()
    reloads.append(done)
    condition.signal()
    condition.unlock()
  }

  /// The thread's loop: reloads first, then one image of the next job.
  private func run(_ first: StudioModel) {
    var model = first
    while true {
      condition.lock()
      while jobs.isEmpty && reloads.isEmpty { condition.wait() }
      let pendingReloads = reloads
      reloads = []
      let cancelled = jobs.filter(\.cancelled)
      jobs.removeAll { $0.cancelled }
      let job = jobs.isEmpty ? nil : jobs[turn % jobs.count]
      turn &+= 1
      condition.unlock()
      for old in cancelled { old.emit(.cancelled) }

      if !pendingReloads.isEmpty {
        let result: Result<ModelDescription, StudioError>
        do {
          model = try load()
          result = .success(model.description)
          condition.lock()
          current = model.description
          condition.unlock()
        } catch {
          result = .failure(.failed("reload: \(error)"))
        }
        for done in pendingReloads { done(result) }
      }
      guard let job else { continue }
      render(next: job, with: model.generator)
    }
  }

  /// Renders `job`'s next image and emits it, and the end when it was the last.
  private func render(next job: Job, with g: Generator) {
    let index = job.indices[job.position]
    do {
      g.truncation = job.truncation
      g.statisticsBlend = job.blend
      let dim = g.configuration.dimZ
      let one = job.inputs[index..<index + 1, dimZ: dim]
      let images = try g.images(for: one)
      let r = g.configuration.resolution
      let png = try PNG.encode(PNG.Image(width: r, height: r, pixels: ImageGrid.pixels(images, index: 0)), text: job.text)
      job.emit(.image(index: index, label: one.classes.labels[0], png: png))
    } catch {
      finish(job, .failed("image \(index): \(error)"))
      return
    }
    job.position += 1
    if job.position == job.indices.count {
      finish(job, .done(milliseconds: (ContinuousClock.now - job.start).seconds * 1000))
    }
  }

  /// Emits `job`'s end and drops it from the queue.
  private func finish(_ job: Job, _ event: RenderEvent) {
    condition.lock()
    jobs.removeAll { $0 === job }
    condition.unlock()
    job.emit(event)
  }
}
