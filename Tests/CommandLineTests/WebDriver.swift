import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A failure of the browser or of a WebDriver command, with the message
/// chromedriver gave so a failing test says what went wrong in the page.
enum WebDriverError: Error, CustomStringConvertible {
  /// chromedriver or chromium is not installed.
  case notInstalled
  /// chromedriver or the browser did not start; the text says why.
  case startFailed(String)
  /// A command failed: the request, then the W3C error code and message.
  case command(String, error: String, message: String)
  /// chromedriver answered something that is not a W3C response, or not the
  /// kind of value the command returns.
  case malformedResponse(String)
  /// No answer from chromedriver at all.
  case transport(String)
  /// A waited-for condition was still false at the deadline.
  case timedOut(String)

  var description: String {
    switch self {
    case .notInstalled:
      "headless Chromium needed: apt-get install chromium chromium-driver"
    case .startFailed(let why):
      "could not start chromedriver and chromium: \(why)"
    case .command(let request, let error, let message):
      // chromedriver's messages mostly begin with the error code already.
      message.hasPrefix(error) ? "\(request): \(message)" : "\(request): \(error): \(message)"
    case .malformedResponse(let what):
      "malformed WebDriver response: \(what)"
    case .transport(let what):
      "no answer from chromedriver: \(what)"
    case .timedOut(let what):
      "timed out: \(what)"
    }
  }
}

/// A headless Chromium driven through chromedriver with the W3C WebDriver
/// protocol (JSON over HTTP), for tests of a web page.
///
/// Every call blocks until chromedriver answers, so plain synchronous tests
/// can use it. Creating one starts chromedriver on a free port and opens a
/// browser session; `quit()`, or the end of the object, closes both.
///
/// Commands go over `LoopbackHTTP`, not URLSession: chromedriver writes its
/// headers without a space after the colon (`Content-Length:251`), valid
/// HTTP that FoundationNetworking rejects ("Failed writing header") until
/// swift-corelibs-foundation#5527.
final class WebDriver {
  /// Where Debian's chromium-driver and chromium packages install them.
  static let chromedriverPath = "/usr/bin/chromedriver"
  static let chromiumPath = "/usr/bin/chromium"

  /// Whether chromedriver and chromium are installed where Debian puts them.
  static var isInstalled: Bool {
    [chromedriverPath, chromiumPath].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
  }

  /// How the browser is started: headless, and with /dev/shm and the sandbox
  /// off because containers often have a tiny /dev/shm and no user
  /// namespaces. The window size fixes the viewport, so screenshots are
  /// 1280 px wide.
  private static var capabilities: [String: Any] {
    [
      "capabilities": [
        "alwaysMatch": [
          "browserName": "chrome",
          "goog:chromeOptions": [
            "binary": chromiumPath,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"],
          ] as [String: Any],
        ] as [String: Any]
      ]
    ]
  }

  /// The key under which WebDriver passes element references in JSON.
  fileprivate static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

  private let chromedriver: Process
  private let console: Console
  private let port: Int
  /// `/session/ID`, the prefix of every command's path.
  private let sessionPath: String
  /// The browser's process id, to end it should chromedriver fail to.
  private let browserProcess: pid_t?
  /// The TMPDIR of chromedriver and the browser, removed at the end: they
  /// leave the browser's profile (a few MB) and a socket folder there when
  /// chromedriver stops soon after the session.
  private let temporaryFolder: URL
  private var hasQuit = false

  /// Starts chromedriver and a headless Chromium session; `timeout` bounds
  /// each of the two starts.
  init(timeout: TimeInterval = 30) throws {
    guard Self.isInstalled else { throw WebDriverError.notInstalled }
    let console = Console()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Self.chromedriverPath)
    // Port 0: chromedriver picks a free port and prints it, which avoids the
    // race of probing for a free port and then binding it.
    process.arguments = ["--port=0"]
    let temporaryFolder = FileManager.default.temporaryDirectory.appendingPathComponent("webdriver-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: temporaryFolder, withIntermediateDirectories: true)
    process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": temporaryFolder.path]) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    console.drain(pipe.fileHandleForReading)
    do {
      try Self.runWithSignalsUnblocked(process)
    } catch {
      try? FileManager.default.removeItem(at: temporaryFolder)
      throw error
    }
    do {
      guard let port = console.waitForPort(timeout: timeout) else {
        throw WebDriverError.startFailed("chromedriver did not say which port it listens on")
      }
      try Self.waitUntilReady(port: port, timeout: timeout)
      let created = try Self.send("POST", port: port, path: "/session", body: Self.capabilities, timeout: timeout)
      guard let created = created as? [String: Any], let session = created["sessionId"] as? String else {
        throw WebDriverError.malformedResponse("new session: \(created)")
      }
      let capabilities = created["capabilities"] as? [String: Any]
      self.port = port
      sessionPath = "/session/" + session
      browserProcess = (capabilities?["goog:processID"] as? Int).map { pid_t($0) }
    } catch {
      process.terminate()
      process.waitUntilExit()
      try? FileManager.default.removeItem(at: temporaryFolder)
      throw WebDriverError.startFailed("\(error)\nchromedriver output:\n\(console.text)")
    }
    chromedriver = process
    self.console = console
    self.temporaryFolder = temporaryFolder
  }

  deinit {
    quit()
  }

  /// Starts `process` with no signal blocked.
  ///
  /// Foundation's Process passes the calling thread's signal mask on to the
  /// child (swift-corelibs-foundation#4772), and the Dispatch threads tests
  /// run on block SIGTERM and most other signals: chromedriver, and the
  /// browser it starts, would then ignore `terminate()`. Unblocking on this
  /// thread for the moment of the start is safe, as the main thread takes
  /// the same signals with the same handlers anyway.
  private static func runWithSignalsUnblocked(_ process: Process) throws {
    var none = sigset_t()
    var previous = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    do {
      try process.run()
    } catch {
      throw WebDriverError.startFailed("\(chromedriverPath): \(error)")
    }
  }

  /// Closes the browser and stops chromedriver; later calls do nothing.
  func quit() {
    guard !hasQuit else { return }
    hasQuit = true
    // Stopping chromedriver alone leaves the browser running, orphaned:
    // the session must be deleted first, and the browser ended by hand if
    // chromedriver cannot.
    if (try? command("DELETE", "")) == nil, let browserProcess {
      kill(browserProcess, SIGTERM)
    }
    chromedriver.terminate()
    chromedriver.waitUntilExit()
    try? FileManager.default.removeItem(at: temporaryFolder)
  }

  // MARK: - Pages and elements

  /// Loads `url` and returns once the page has loaded.
  func open(_ url: URL) throws {
    try command("POST", "/url", ["url": url.absoluteString])
  }

  /// The first element matching the CSS `selector`; throws "no such
  /// element" when there is none.
  func find(_ selector: String) throws -> WebElement {
    try element(from: command("POST", "/element", ["using": "css selector", "value": selector]))
  }

  /// Every element matching the CSS `selector`, in document order.
  func findAll(_ selector: String) throws -> [WebElement] {
    let found = try command("POST", "/elements", ["using": "css selector", "value": selector])
    guard let found = found as? [Any] else { throw WebDriverError.malformedResponse("elements: \(found)") }
    return try found.map(element(from:))
  }

  /// The element a W3C element reference in a response names.
  private func element(from value: Any) throws -> WebElement {
    guard let reference = value as? [String: Any], let id = reference[Self.elementKey] as? String else {
      throw WebDriverError.malformedResponse("not an element: \(value)")
    }
    return WebElement(driver: self, id: id)
  }

  // MARK: - Scripts

  /// Runs `script`, the body of a JavaScript function, in the page, and
  /// returns what it returns as JSON (`NSNull` for null or nothing).
  ///
  /// The arguments are JSON values or `WebElement`s, and are `arguments[0]`,
  /// `arguments[1]`, … in the script.
  @discardableResult
  func execute(_ script: String, _ arguments: Any...) throws -> Any {
    try execute(script, arguments: arguments)
  }

  /// `execute(_:_:)` for a result of a known type, thrown as malformed when
  /// the script returns something else.
  func execute<Value>(_ script: String, _ arguments: Any..., as type: Value.Type) throws -> Value {
    let result = try execute(script, arguments: arguments)
    guard let value = result as? Value else {
      throw WebDriverError.malformedResponse("script returned \(result), not \(Value.self)")
    }
    return value
  }

  /// The one implementation of the variadic `execute` functions, which
  /// Swift cannot forward to one another.
  private func execute(_ script: String, arguments: [Any]) throws -> Any {
    try command("POST", "/execute/sync", ["script": script, "args": arguments.map(Self.json)])
  }

  /// Polls the JavaScript `condition`, an expression, until it is truthy;
  /// throws `timedOut` when it is still false after `timeout` seconds.
  ///
  /// A script error counts as false, because what the condition reads may
  /// not exist yet while the page loads; a timeout then reports the last
  /// error.
  func wait(until condition: String, _ arguments: Any..., timeout: TimeInterval = 10) throws {
    let deadline = Date().addingTimeInterval(timeout)
    var lastError: String?
    while true {
      do {
        if try execute("return !!(\(condition));", arguments: arguments) as? Bool == true { return }
        lastError = nil
      } catch WebDriverError.command(_, let error, let message) where error == "javascript error" {
        lastError = message
      }
      guard Date() < deadline else {
        throw WebDriverError.timedOut("\(condition) still false after \(timeout) s" + (lastError.map { "; last error: \($0)" } ?? ""))
      }
      Thread.sleep(forTimeInterval: 0.05)
    }
  }

  // MARK: - Screenshots

  /// A PNG of the viewport.
  func screenshot() throws -> Data {
    let encoded = try command("GET", "/screenshot")
    guard let encoded = encoded as? String, let png = Data(base64Encoded: encoded) else {
      throw WebDriverError.malformedResponse("screenshot is not base64")
    }
    return png
  }

  /// Writes a PNG of the viewport to `file`, for looking at after a test.
  func saveScreenshot(to file: URL) throws {
    try screenshot().write(to: file)
  }

  // MARK: - Protocol

  /// Sends one command of this session (`path` relative to the session) and
  /// returns the response's `value`.
  @discardableResult
  fileprivate func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) throws -> Any {
    // The W3C protocol wants a JSON body on every POST, even an empty one.
    try Self.send(method, port: port, path: sessionPath + path, body: method == "POST" ? (body ?? [:]) : nil)
  }

  /// Sends a request to chromedriver and returns the response's `value`, or
  /// throws the W3C error it carries.
  private static func send(
    _ method: String, port: Int, path: String, body: [String: Any]?, timeout: TimeInterval = 60
  ) throws -> Any {
    // Messages name the command without the session id, which only
    // lengthens them: "POST /element", not "POST /session/5f0e…/element".
    let parts = path.split(separator: "/", maxSplits: 2)
    let request = "\(method) " + (parts.count == 3 && parts[0] == "session" ? "/" + parts[2] : path)
    let json = try body.map { try JSONSerialization.data(withJSONObject: $0) }
    let (status, data) = try LoopbackHTTP.exchange(method, port: port, path: path, json: json, timeout: timeout)
    guard let object = try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) as? [String: Any],
      let value = object["value"]
    else {
      throw WebDriverError.malformedResponse("\(request): HTTP \(status) \(String(decoding: data, as: UTF8.self).prefix(500))")
    }
    if status >= 400 || (value as? [String: Any])?["error"] != nil {
      let failure = value as? [String: Any]
      throw WebDriverError.command(
        request, error: failure?["error"] as? String ?? "HTTP \(status)", message: failure?["message"] as? String ?? "\(value)")
    }
    return value
  }

  /// Polls `GET /status` until chromedriver says it is ready for a session.
  private static func waitUntilReady(port: Int, timeout: TimeInterval) throws {
    let deadline = Date().addingTimeInterval(timeout)
    var lastError: Error?
    while true {
      do {
        let status = try send("GET", port: port, path: "/status", body: nil, timeout: 5)
        if (status as? [String: Any])?["ready"] as? Bool == true { return }
      } catch {
        lastError = error
      }
      guard Date() < deadline else {
        throw WebDriverError.timedOut("chromedriver not ready after \(timeout) s" + (lastError.map { "; \($0)" } ?? ""))
      }
      Thread.sleep(forTimeInterval: 0.05)
    }
  }

  /// An argument as JSON, with elements as WebDriver element references.
  private static func json(_ argument: Any) -> Any {
    switch argument {
    case let element as WebElement: [elementKey: element.id]
    case let array as [Any]: array.map(json)
    default: argument
    }
  }
}

/// An element of the page a `WebDriver` shows; it stays valid while the
/// element is in the document ("stale element reference" after), and keeps
/// its driver alive.
struct WebElement {
  fileprivate let driver: WebDriver
  fileprivate let id: String

  /// Clicks the element's centre, as a user would: it must be visible and
  /// not covered.
  func click() throws {
    try driver.command("POST", "/element/\(id)/click")
  }

  /// Types `text` into the element (an input, textarea or editable element).
  func sendKeys(_ text: String) throws {
    try driver.command("POST", "/element/\(id)/value", ["text": text])
  }

  /// Empties an input or textarea.
  func clear() throws {
    try driver.command("POST", "/element/\(id)/clear")
  }

  /// The HTML attribute `name` as written in the document, nil when absent.
  func attribute(_ name: String) throws -> String? {
    try driver.command("GET", "/element/\(id)/attribute/\(name)") as? String
  }

  /// The DOM property `name` (such as `value` or `checked`) as JSON: it
  /// follows what scripts and the user changed, unlike the attribute.
  func property(_ name: String) throws -> Any {
    try driver.command("GET", "/element/\(id)/property/\(name)")
  }

  /// The text the element shows (hidden text left out).
  func text() throws -> String {
    let text = try driver.command("GET", "/element/\(id)/text")
    guard let text = text as? String else { throw WebDriverError.malformedResponse("text: \(text)") }
    return text
  }
}

/// What chromedriver and the browser print. Read to the end of the pipe so
/// neither blocks on a full pipe; kept so a failed start can show it.
private final class Console: @unchecked Sendable {
  // @unchecked: every field is read and written under `lock`.
  private let lock = NSLock()
  private var output = ""
  private var port: Int?
  private let portKnown = DispatchSemaphore(value: 0)
  private var signalled = false

  /// Everything printed so far.
  var text: String { lock.withLock { output } }

  /// Starts reading `handle` on a background queue until its end.
  func drain(_ handle: FileHandle) {
    handle.readabilityHandler = { [self] handle in
      let data = handle.availableData
      if data.isEmpty { handle.readabilityHandler = nil }
      append(data)
    }
  }

  /// The port chromedriver announces, nil if it exits or is silent for
  /// `timeout` seconds first.
  func waitForPort(timeout: TimeInterval) -> Int? {
    _ = portKnown.wait(timeout: .now() + timeout)
    return lock.withLock { port }
  }

  /// Adds output; empty data is the end of it, which also ends the wait
  /// for a port.
  private func append(_ data: Data) {
    lock.withLock {
      output += String(decoding: data, as: UTF8.self)
      // chromedriver prints "ChromeDriver was started successfully on port 41235.";
      // wait for the line's end, as a read may stop inside the number.
      if port == nil, let range = output.range(of: "started successfully on port "),
        output[range.upperBound...].contains("\n")
      {
        port = Int(output[range.upperBound...].prefix { $0.isNumber })
      }
      // The browser logs to the same pipe for as long as it runs: the end
      // is what explains a failure.
      if output.utf8.count > 20_000 { output = String(output.suffix(10_000)) }
      if (port != nil || data.isEmpty) && !signalled {
        signalled = true
        portKnown.signal()
      }
    }
  }
}

/// HTTP/1.1 requests to a server on 127.0.0.1, one connection each: all a
/// WebDriver client needs, over plain sockets.
private enum LoopbackHTTP {
  /// Sends one request with an optional JSON body and returns the status
  /// and body of the answer; `timeout` bounds each read and write.
  static func exchange(
    _ method: String, port: Int, path: String, json: Data?, timeout: TimeInterval
  ) throws -> (status: Int, body: Data) {
    let request = "\(method) \(path)"
    func failure(_ what: String) -> WebDriverError {
      .transport("\(request): \(what): \(String(cString: strerror(errno)))")
    }
    #if canImport(Glibc)
      let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
      let socket = Darwin.socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard socket >= 0 else { throw failure("socket") }
    defer { close(socket) }
    var limit = timeval(tv_sec: time_t(timeout), tv_usec: suseconds_t(timeout.truncatingRemainder(dividingBy: 1) * 1e6))
    setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    #if canImport(Darwin)
      // A write to a connection the server closed raises SIGPIPE, which
      // would end the test process: make it an error instead.
      var on: Int32 = 1
      setsockopt(socket, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
      let sendFlags: Int32 = 0
    #else
      let sendFlags = Int32(MSG_NOSIGNAL)
    #endif
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(port).bigEndian
    address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw failure("connect to port \(port)") }

    var message = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    message += "Content-Length: \(json?.count ?? 0)\r\n"
    if json != nil { message += "Content-Type: application/json; charset=utf-8\r\n" }
    let outgoing = Data((message + "\r\n").utf8) + (json ?? Data())
    try outgoing.withUnsafeBytes { bytes in
      guard let start = bytes.baseAddress else { return }
      var sent = 0
      while sent < bytes.count {
        let n = send(socket, start + sent, bytes.count - sent, sendFlags)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw failure("send") }
        sent += n
      }
    }

    var incoming = Data()
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      if let response = try parse(incoming, complete: false, request: request) { return response }
      let n = recv(socket, &buffer, buffer.count, 0)
      if n < 0 && errno == EINTR { continue }
      guard n >= 0 else { throw failure(errno == EAGAIN || errno == EWOULDBLOCK ? "no answer in \(timeout) s" : "recv") }
      if n == 0 { break }
      incoming.append(contentsOf: buffer[0..<n])
    }
    guard let response = try parse(incoming, complete: true, request: request) else {
      throw WebDriverError.transport("\(request): connection closed before the end of the answer")
    }
    return response
  }

  /// The status and body of `data`, or nil while the body is still short
  /// of its Content-Length; a `complete` answer without one ends at the
  /// connection's end.
  private static func parse(_ data: Data, complete: Bool, request: String) throws -> (status: Int, body: Data)? {
    guard let headerEnd = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
    let lines = String(decoding: data[data.startIndex..<headerEnd.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/"), let status = Int(statusParts[1]) else {
      throw WebDriverError.malformedResponse("\(request): status line \(lines[0])")
    }
    // Header names are case-insensitive and the space after the colon is
    // optional.
    let length = lines.dropFirst().lazy.compactMap { line -> Int? in
      let field = line.split(separator: ":", maxSplits: 1)
      guard field.count == 2, field[0].lowercased() == "content-length" else { return nil }
      return Int(field[1].trimmingCharacters(in: .whitespaces))
    }.first
    let body = data[headerEnd.upperBound...]
    if let length {
      return body.count >= length ? (status, Data(body.prefix(length))) : nil
    }
    return complete ? (status, Data(body)) : nil
  }
}
