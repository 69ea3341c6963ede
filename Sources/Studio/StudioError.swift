import Foundation

/// A request the studio refuses, with the HTTP status it answers and a
/// one-line reason (sent as `{"error": reason}`).
public enum StudioError: Error, CustomStringConvertible, Sendable, Equatable {
  /// Malformed or out-of-range parameters: 400.
  case badRequest(String)
  /// A missing or wrong token: 401.
  case unauthorized(String)
  /// A Host header that is not this server's: 403.
  case forbidden(String)
  /// Nothing there: 404.
  case notFound(String)
  /// Too many requests at once: 503.
  case busy(String)
  /// The model or a file could not be used: 500.
  case failed(String)

  public var description: String {
    switch self {
    case .badRequest(let m), .unauthorized(let m), .forbidden(let m), .notFound(let m), .busy(let m), .failed(let m): return m
    }
  }

  /// The HTTP status code.
  var status: Int {
    switch self {
    case .badRequest: return 400
    case .unauthorized: return 401
    case .forbidden: return 403
    case .notFound: return 404
    case .busy: return 503
    case .failed: return 500
    }
  }
}

/// The bounds the studio keeps every request within.
public struct StudioLimits: Sendable {
  /// Images one request may ask for.
  public var maxImages = 256
  /// The `count` parameter's largest value.
  public var maxCount = 64
  /// The `latent` parameter's largest value (latents drawn to reach it).
  public var maxLatent = 10_000
  /// Bytes of the `classes` parameter.
  public var maxClassesText = 8192
  /// Bytes of a request's target (path and query).
  public var maxTarget = 16_384
  /// Image requests rendering or waiting at once, over every client.
  public var maxJobs = 64
  /// Open connections.
  public var maxConnections = 256
  /// Lines of metrics.jsonl one `/api/metrics` answer carries.
  public var maxMetricsLines = 20_000

  public init() {}
}
