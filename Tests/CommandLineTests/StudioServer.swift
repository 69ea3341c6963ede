import Foundation

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// A `biggan-fast serve` process started for a test, on a free port, and
/// plain HTTP to it: whole answers through URLSession, raw bytes through a
/// socket for what URLSession will not send (another Host header, garbage).
/// Nothing changes after start, so threads may share it.
final class StudioServer: @unchecked Sendable {
  let process = Process()
  /// The printed address, e.g. `http://127.0.0.1:40123/`.
  let url: URL
  let port: Int
  private let log: String

  struct Failure: Error, CustomStringConvertible {
    let description: String
  }

  /// Starts `biggan-fast serve` with `arguments` (plus `--port 0`) in
  /// `folder` and waits for its address.
  init(_ arguments: [String], in folder: String) throws {
    log = "\(folder)/serve-\(UUID().uuidString).log"
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    process.executableURL = CommandLineTests.binary("biggan-fast")
    process.arguments = ["serve"] + arguments + ["--port", "0"]
    process.currentDirectoryURL = URL(fileURLWithPath: folder)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    let deadline = Date().addingTimeInterval(60)
    var found: URL?
    while found == nil && Date() < deadline && process.isRunning {
      let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
      if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("serving ") }) {
        found = URL(string: String(line.dropFirst("serving ".count)).components(separatedBy: "?")[0])
      } else {
        usleep(20_000)
      }
    }
    guard let found, let port = found.port else {
      if process.isRunning { process.terminate() }
      throw Failure(description: "serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }
    url = found
    self.port = port
  }

  /// Everything the server printed.
  var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

  /// Stops the server (SIGTERM) and waits for it.
  func stop() {
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
  }

  deinit { stop() }

  /// The answer to `path` (with query): status, headers and body.
  func get(_ path: String, method: String = "GET", headers: [String: String] = [:]) throws -> (status: Int, headers: [String: String], body: Data) {
    guard let target = URL(string: path, relativeTo: url) else { throw Failure(description: "bad path \(path)") }
    var request = URLRequest(url: target, timeoutInterval: 120)
    request.httpMethod = method
    for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<(Int, [String: String], Data), any Error> = .failure(Failure(description: "no answer"))
    URLSession.shared.dataTask(with: request) { data, response, error in
      if let error {
        result = .failure(error)
      } else if let http = response as? HTTPURLResponse {
        var fields: [String: String] = [:]
        for (k, v) in http.allHeaderFields { fields[String(describing: k).lowercased()] = String(describing: v) }
        result = .success((http.statusCode, fields, data ?? Data()))
      }
      done.signal()
    }.resume()
    done.wait()
    let (status, fields, body) = try result.get()
    return (status, fields, body)
  }

  /// The JSON object of `path`'s answer, with its status.
  func json(_ path: String, method: String = "GET") throws -> (status: Int, object: [String: Any]) {
    let r = try get(path, method: method)
    guard let object = try JSONSerialization.jsonObject(with: r.body) as? [String: Any] else {
      throw Failure(description: "\(path): not a JSON object: \(String(decoding: r.body.prefix(200), as: UTF8.self))")
    }
    return (r.status, object)
  }

  /// The NDJSON lines of `path`'s answer.
  func lines(_ path: String) throws -> [[String: Any]] {
    let r = try get(path)
    guard r.status == 200 else { throw Failure(description: "\(path): status \(r.status): \(String(decoding: r.body, as: UTF8.self))") }
    return try r.body.split(separator: UInt8(ascii: "\n")).map {
      guard let o = try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] else { throw Failure(description: "not an object") }
      return o
    }
  }

  /// Sends `bytes` as they are on a new connection and returns what comes
  /// back until one whole answer with a length is in, the server closes
  /// the connection, or `timeout` seconds pass.
  func raw(_ bytes: [UInt8], timeout: Double = 10) throws -> String {
    let connection = try Connection(port: port)
    connection.send(bytes)
    return connection.receive(timeout: timeout) { text in
      guard let split = text.range(of: "\r\n\r\n") else { return false }
      let length = text[..<split.lowerBound].split(separator: "\r\n")
        .first { $0.lowercased().hasPrefix("content-length:") }
        .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
      return length.map { text.utf8.count - text.utf8.distance(from: text.utf8.startIndex, to: split.upperBound) >= $0 } ?? false
    }
  }

  /// A TCP connection to the server, read as text.
  final class Connection {
    let fd: Int32
    private var received: [UInt8] = []

    init(port: Int) throws {
      fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      guard fd >= 0 else { throw Failure(description: "socket") }
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = in_port_t(UInt16(port).bigEndian)
      address.sin_addr.s_addr = inet_addr("127.0.0.1")
      let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
      }
      guard connected == 0 else {
        close(fd)
        throw Failure(description: "connect")
      }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
      _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything received so far once `done` says so, the server closes
    /// the connection, or `timeout` seconds pass.
    func receive(timeout: Double, until done: (String) -> Bool) -> String {
      let deadline = Date().addingTimeInterval(timeout)
      var buffer = [UInt8](repeating: 0, count: 65536)
      while !done(String(decoding: received, as: UTF8.self)) {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { break }
        var time = timeval(tv_sec: Int(left), tv_usec: Int((left - left.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        received += buffer[0..<n]
      }
      return String(decoding: received, as: UTF8.self)
    }
  }
}
