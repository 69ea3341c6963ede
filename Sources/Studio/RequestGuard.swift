import Foundation
import Hummingbird

/// Checks every request before it is routed, and turns every error into a
/// JSON `{"error": ...}` answer with its status: targets and bodies
/// bounded, the token when there is one, and (on a loopback address) a Host
/// header naming this machine, so a web page elsewhere cannot reach the
/// studio through a rebound DNS name.
struct RequestGuard: RouterMiddleware {
  typealias Context = BasicRequestContext
  let options: StudioOptions

  func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
    do {
      try check(request)
      return try await next(request, context)
    } catch let error as StudioError {
      return Self.error(error.status, error.description)
    } catch let error as HTTPError {
      let message = error.body ?? (error.status == .notFound ? "no such page: \(request.uri.path.prefix(200))" : error.status.reasonPhrase)
      return Self.error(error.status.code, message)
    } catch {
      return Self.error(500, "\(error)")
    }
  }

  func check(_ request: Request) throws(StudioError) {
    guard request.uri.string.utf8.count <= options.limits.maxTarget else {
      throw .badRequest("request target longer than \(options.limits.maxTarget) bytes")
    }
    guard [.get, .head, .post].contains(request.method) else { throw .badRequest("method \(request.method.rawValue) is not served") }
    if let length = request.headers[.contentLength], length != "0" {
      throw .badRequest("request bodies are not accepted")
    }
    if request.headers[.transferEncoding] != nil { throw .badRequest("request bodies are not accepted") }
    if options.isLocal {
      let host = request.head.authority ?? ""
      guard Self.isLoopbackAuthority(host) else {
        throw .forbidden("Host '\(host.prefix(100))' is not this machine's loopback address")
      }
    }
    if let token = options.token {
      let given = request.uri.queryParameters["token"].map(String.init)
        ?? request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
      guard let given, Self.equal(given, token) else {
        throw .unauthorized(given == nil ? "this studio needs its token: open it as /?token=..." : "wrong token")
      }
    }
  }

  /// Whether an authority (`host[:port]`) names loopback.
  static func isLoopbackAuthority(_ authority: String) -> Bool {
    var host = Substring(authority)
    if host.hasPrefix("[") {
      guard let end = host.firstIndex(of: "]") else { return false }
      host = host[host.index(after: host.startIndex)..<end]
    } else if let colon = host.lastIndex(of: ":") {
      host = host[..<colon]
    }
    return StudioOptions.isLoopback(String(host))
  }

  /// Compares in time independent of where they differ.
  static func equal(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var difference = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<min(x.count, y.count) { difference |= x[i] ^ y[i] }
    return difference == 0
  }

  static func error(_ status: Int, _ message: String) -> Response {
    Studio.response(HTTPResponse.Status(code: status), type: "application/json", bytes: Studio.asciiJSON(["error": message]))
  }
}
