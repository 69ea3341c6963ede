import BGKernels
import BigGAN
import Foundation
import Hummingbird
import Logging

/// Where and how the studio listens.
public struct StudioOptions: Sendable {
  public var host = "127.0.0.1"
  public var port = 8080
  /// Required on every request when set.
  public var token: String?
  public var limits = StudioLimits()

  public init() {}

  /// Whether `host` is this machine only (loopback).
  public var isLocal: Bool { Self.isLoopback(host) }

  /// Whether `host` names the loopback interface.
  static func isLoopback(_ host: String) -> Bool {
    host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
  }
}

/// `biggan-fast serve`: one page to explore a generator and watch the run
/// it comes from, over HTTP (Hummingbird), with the images rendered by one
/// `Renderer` thread shared fairly between every open request.
public final class Studio: Sendable {
  let options: StudioOptions
  let renderer: Renderer

  /// A studio for the generator `load` gives (called again on reload).
  public init(options: StudioOptions, load: @escaping () throws -> StudioModel) throws {
    self.options = options
    renderer = try Renderer(load: load, maxJobs: options.limits.maxJobs)
  }

  /// Serves until the process ends (the caller handles signals: the studio
  /// keeps no state worth a graceful stop); `started` gets the URL once the
  /// port is bound.
  public func run(started: @escaping @Sendable (String) -> Void) async throws {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: RequestGuard(options: options))
    addRoutes(to: router)
    var logger = Logger(label: "biggan-fast.serve")
    logger.logLevel = .error
    let host = options.host
    let app = Application(
      router: router,
      server: .http1(configuration: .init(idleTimeout: .seconds(30))),
      configuration: .init(
        address: .hostname(host, port: options.port), serverName: "biggan-fast",
        availableConnectionsDelegate: .maximum(options.limits.maxConnections, logger: logger)),
      onServerRunning: { channel in
        let port = channel.localAddress?.port ?? 0
        started("http://\(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host):\(port)/")
      },
      logger: logger)
    try await app.runService(gracefulShutdownSignals: [])
  }

  private func addRoutes(to router: Router<BasicRequestContext>) {
    router.get("/") { _, _ in Self.asset(PackageResources.index_html, type: "text/html; charset=utf-8") }
    router.get("/assets/studio.js") { _, _ in Self.asset(PackageResources.studio_js, type: "text/javascript; charset=utf-8") }
    router.get("/assets/studio.css") { _, _ in Self.asset(PackageResources.studio_css, type: "text/css; charset=utf-8") }
    router.get("/api/info") { _, _ in self.json(self.info(self.renderer.model)) }
    router.post("/api/reload") { _, _ in
      let model = try await withCheckedThrowingContinuation { continuation in
        self.renderer.reload { continuation.resume(with: $0) }
      }
      return self.json(self.info(model))
    }
    router.get("/api/images") { request, _ in try self.images(try Self.query(request)) }
    router.get("/api/image.png") { request, _ in try await self.download(try Self.query(request)) }
    router.get("/api/recipe") { request, _ in self.json(self.recipe(try self.image(try Self.query(request)))) }
    router.get("/api/z.npy") { request, _ in
      let image = try self.image(try Self.query(request))
      let z = NumPyArray(shape: [1, image.model.configuration.dimZ], floats: image.one.latents)
      return Self.file(NPY.encode(z), type: "application/octet-stream", name: "z.npy")
    }
    router.get("/api/y.npy") { request, _ in
      let array: NumPyArray
      switch try self.image(try Self.query(request)).one.classes {
      case .labels(let l): array = NumPyArray(shape: [1], doubles: [Double(l[0])])
      case .vectors(let v, let k): array = NumPyArray(shape: [1, k], floats: v)
      }
      return Self.file(NPY.encode(array), type: "application/octet-stream", name: "y.npy")
    }
    router.get("/api/run") { _, _ in
      let (watch, name) = try self.watch()
      return self.json(watch.summary(name: name))
    }
    router.get("/api/metrics") { request, _ in
      let query = try Self.query(request)
      let offset = try ImageRequest.integer(query, "offset", default: 0, in: 0...Int(Int64.max))
      let (watch, _) = try self.watch()
      let m = try watch.metrics(from: offset, maxLines: self.options.limits.maxMetricsLines)
      let body = "{\"offset\":\(m.offset),\"reset\":\(m.reset),\"skipped\":\(m.skipped),\"lines\":\(m.json)}"
      return Self.response(.ok, type: "application/json", bytes: Array(body.utf8))
    }
    router.get("/api/sheet/:file") { _, context in
      let (watch, _) = try self.watch()
      let name = context.parameters.get("file") ?? ""
      return Self.response(.ok, type: "image/png", bytes: [UInt8](try watch.sheet(name)))
    }
  }

  /// The run folder to watch, or 404 when the model has none.
  private func watch() throws(StudioError) -> (RunWatch, String) {
    let model = renderer.model
    guard let folder = model.runFolder else {
      throw .notFound("no run folder to watch: this generator was loaded from a checkpoint outside a run")
    }
    return (RunWatch(folder: folder), model.runName ?? (folder as NSString).lastPathComponent)
  }

  /// `/api/info`'s answer for `model`.
  private func info(_ model: ModelDescription) -> [String: Any] {
    let c = model.configuration
    let selection = ClassSelection(classes: c.classes, runFolder: model.runFolder)
    let (names, source) = (try? selection.displayNames()) ?? ((0..<c.classes).map(String.init), .index)
    return [
      "source": model.runName == nil ? "checkpoint" : "run", "run": model.runName ?? NSNull(),
      "checkpoint": model.checkpoint, "step": model.step ?? NSNull(), "resolution": c.resolution, "dimZ": c.dimZ,
      "classes": c.classes, "classNames": names, "classNameSource": source.rawValue, "imported": c.statisticsRows > 1,
      "precision": model.precision.rawValue, "maxImages": options.limits.maxImages, "maxCount": options.limits.maxCount,
      "watch": model.runFolder.map { FileManager.default.fileExists(atPath: $0) } ?? false,
      "sampleCommand": model.sampleCommand,
    ]
  }

  /// The request `query` describes, against the loaded model.
  private func request(_ query: [String: String], model: ModelDescription) throws(StudioError) -> ImageRequest {
    try ImageRequest(
      query: query, selection: ClassSelection(classes: model.configuration.classes, runFolder: model.runFolder), limits: options.limits)
  }

  /// One image of a request, for the one-image endpoints: the request, the
  /// model, every image's inputs and this one's.
  private struct ChosenImage {
    let spec: ImageRequest
    let index: Int
    let model: ModelDescription
    let inputs: SampleInputs
    let one: SampleInputs
  }

  /// The request in `query` and its `image`.
  private func image(_ query: [String: String]) throws(StudioError) -> ChosenImage {
    let model = renderer.model, c = model.configuration
    let spec = try request(query, model: model)
    let index = try spec.imageIndex(query)
    let inputs = spec.inputs(dimZ: c.dimZ, classCount: c.classes)
    return ChosenImage(spec: spec, index: index, model: model, inputs: inputs, one: inputs[index..<index + 1, dimZ: c.dimZ])
  }

  /// `/api/images`: the request's images streamed as NDJSON lines as the
  /// renderer makes them.
  private func images(_ query: [String: String]) throws -> Response {
    let model = renderer.model
    let spec = try request(query, model: model)
    let client = query["client"] ?? ""
    guard client.utf8.count <= 64 else { throw StudioError.badRequest("client id longer than 64 bytes") }
    let seq = try ImageRequest.integer(query, "seq", default: 0, in: 0...Int(Int32.max))
    let (rows, columns) = spec.shape
    let c = model.configuration
    let renderer = self.renderer
    let (job, stream) = try renderer.submit(
      client: client, seq: seq, inputs: spec.inputs(dimZ: c.dimZ, classCount: c.classes), truncation: spec.truncation,
      blend: spec.blend, indices: Array(0..<spec.imageCount))
    let header = Self.line([
      "count": spec.imageCount, "rows": rows, "columns": columns, "step": model.step ?? NSNull(),
    ])
    return Response(
      status: .ok, headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"],
      body: ResponseBody { writer in
        do {
          try await writer.write(ByteBuffer(bytes: header))
          for await event in stream {
            let object: [String: Any]
            switch event {
            case .image(let index, let label, let png):
              object = [
                "index": index, "row": index / columns, "column": index % columns, "label": label,
                "png": Data(png).base64EncodedString(),
              ]
            case .done(let ms): object = ["done": true, "ms": ms]
            case .cancelled: object = ["cancelled": true]
            case .failed(let message): object = ["error": message]
            }
            try await writer.write(ByteBuffer(bytes: Self.line(object)))
          }
          try await writer.finish(nil)
        } catch {
          renderer.cancel(job)
          throw error
        }
      })
  }

  /// `/api/image.png`: one image with its recipe in a `tEXt` chunk, as a
  /// download.
  private func download(_ query: [String: String]) async throws -> Response {
    let image = try image(query)
    let spec = image.spec
    let recipe = String(decoding: Self.asciiJSON(recipe(image)), as: UTF8.self)
    let (_, stream) = try renderer.submit(
      client: "", seq: 0, inputs: image.inputs, truncation: spec.truncation, blend: spec.blend, indices: [image.index],
      text: [("biggan-fast", recipe)])
    var png: [UInt8] = []
    for await event in stream {
      switch event {
      case .image(_, _, let bytes): png = bytes
      case .failed(let message): throw StudioError.failed(message)
      case .done, .cancelled: break
      }
    }
    guard !png.isEmpty else { throw StudioError.busy("the image was not made; try again") }
    let label = image.one.classes.labels[0]
    let name = "\(className(label, model: image.model))-seed\(spec.seed)-t\(spec.truncation)-\(image.index).png"
    return Self.file(png, type: "image/png", name: name)
  }

  /// What reproduces `image` with `biggan-fast sample`.
  private func recipe(_ image: ChosenImage) -> [String: Any] {
    let (spec, one, model) = (image.spec, image.one, image.model)
    let c = model.configuration
    let label = one.classes.labels[0]
    let y: Any
    switch one.classes {
    case .labels(let l): y = l[0]
    case .vectors(let v, _): y = v.map(Double.init)
    }
    var command = "\(model.sampleCommand) --z z.npy --y y.npy --truncation \(spec.truncation) --truncation-mode \(spec.mode.rawValue)"
    if c.statisticsRows > 1 { command += " --statistics-blend \(spec.blend.rawValue)" }
    return [
      "z": one.latents.map(Double.init), "y": y, "truncation": spec.truncation, "mode": spec.mode.rawValue, "seed": String(spec.seed),
      "view": spec.view.rawValue, "image": image.index, "label": label, "className": className(label, model: model),
      "step": model.step ?? NSNull(), "checkpoint": model.checkpoint, "command": command,
    ]
  }

  private func className(_ label: Int, model: ModelDescription) -> String {
    let names = try? ClassSelection(classes: model.configuration.classes, runFolder: model.runFolder).displayNames().names
    return names.map { $0[label] } ?? String(label)
  }

  /// The query parameters, each at most once.
  static func query(_ request: Request) throws(StudioError) -> [String: String] {
    var query: [String: String] = [:]
    for (key, value) in request.uri.queryParameters {
      guard query.updateValue(String(value), forKey: String(key)) == nil else {
        throw .badRequest("parameter '\(key.prefix(40))' is given more than once")
      }
    }
    return query
  }

  /// `object` as one NDJSON line.
  static func line(_ object: [String: Any]) -> [UInt8] { asciiJSON(object) + [UInt8(ascii: "\n")] }

  /// `object` as JSON with every non-ASCII character escaped, so it can go
  /// in a PNG text chunk too.
  static func asciiJSON(_ object: [String: Any]) -> [UInt8] {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    var out: [UInt8] = []
    for scalar in String(decoding: data, as: UTF8.self).unicodeScalars {
      if scalar.isASCII {
        out.append(UInt8(scalar.value))
      } else {
        for unit in String(scalar).utf16 { out += Array(String(format: "\\u%04x", unit).utf8) }
      }
    }
    return out
  }

  private func json(_ object: [String: Any]) -> Response {
    Self.response(.ok, type: "application/json", bytes: Self.asciiJSON(object))
  }

  static func asset(_ bytes: [UInt8], type: String) -> Response {
    response(.ok, type: type, bytes: bytes)
  }

  static func file(_ bytes: [UInt8], type: String, name: String) -> Response {
    var r = response(.ok, type: type, bytes: bytes)
    let safe = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) ? $0 : "_" })
    r.headers[.contentDisposition] = "attachment; filename=\"\(safe)\""
    return r
  }

  static func response(_ status: HTTPResponse.Status, type: String, bytes: [UInt8]) -> Response {
    Response(
      status: status, headers: [.contentType: type, .cacheControl: "no-store", .xContentTypeOptions: "nosniff"],
      body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
  }
}
