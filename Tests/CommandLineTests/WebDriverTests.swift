import Foundation
import Testing

/// The WebDriver client against a static page opened from a file, so the
/// browser tests of `serve` can trust it: clicks, a slider moved by script,
/// waits, text, properties and attributes read back, errors thrown with
/// chromedriver's message, and a screenshot of the fixed window size.
struct WebDriverTests {
  /// A button that changes a message a little later (so reading it needs a
  /// wait), a range input reporting `input` and `change`, a text input and a
  /// list.
  static let page = """
    <!doctype html>
    <html><head><meta charset="utf-8"><title>WebDriver test</title></head>
    <body>
      <button id="go">Go</button>
      <p id="message">waiting</p>
      <input id="level" type="range" min="0" max="1" step="0.02" value="0.5">
      <span id="level-value">0.5</span>
      <span id="level-changes">0</span>
      <input id="name" type="text">
      <ul><li class="item">a</li><li class="item">b</li><li class="item">c</li></ul>
      <script>
        document.querySelector('#go').addEventListener('click', () => {
          setTimeout(() => { document.querySelector('#message').textContent = 'clicked'; }, 100);
        });
        const level = document.querySelector('#level');
        level.addEventListener('input', () => { document.querySelector('#level-value').textContent = level.value; });
        level.addEventListener('change', () => {
          const changes = document.querySelector('#level-changes');
          changes.textContent = String(Number(changes.textContent) + 1);
        });
      </script>
    </body></html>
    """

  @Test("clicks, moves a slider by script, waits, reads back, and takes a 1280 px wide PNG screenshot")
  func drivesStaticPage() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("webdriver-\(getpid())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("page.html")
    try Data(Self.page.utf8).write(to: file)

    let driver = try WebDriver()
    defer { driver.quit() }
    try driver.open(file)

    try driver.find("#go").click()
    try driver.wait(until: "document.querySelector('#message').textContent === 'clicked'", timeout: 5)
    #expect(try driver.find("#message").text() == "clicked")

    // A range input cannot be dragged to an exact value; the page sees the
    // same events a drag would send.
    let level = try driver.find("#level")
    try driver.execute(
      """
      arguments[0].value = arguments[1];
      arguments[0].dispatchEvent(new Event('input', {bubbles: true}));
      arguments[0].dispatchEvent(new Event('change', {bubbles: true}));
      """, level, "0.42")
    try driver.wait(until: "document.querySelector('#level-value').textContent === arguments[0]", "0.42")
    #expect(try driver.find("#level-value").text() == "0.42")
    #expect(try driver.find("#level-changes").text() == "1")
    #expect(try level.property("value") as? String == "0.42")
    #expect(try level.attribute("value") == "0.5")
    #expect(try level.attribute("data-missing") == nil)

    let name = try driver.find("#name")
    try name.sendKeys("disc")
    #expect(try name.property("value") as? String == "disc")
    try name.clear()
    #expect(try name.property("value") as? String == "")

    let items = try driver.findAll("li.item")
    #expect(try items.map { try $0.text() } == ["a", "b", "c"])
    #expect(try driver.execute("return arguments[0].length + arguments[1]", items, 4, as: Int.self) == 7)
    #expect(try driver.findAll(".none").isEmpty)

    #expect {
      try driver.find("#missing")
    } throws: { error in
      "\(error)".contains("no such element")
    }
    #expect {
      try driver.execute("return notDefined.x")
    } throws: { error in
      "\(error)".contains("javascript error") && "\(error)".contains("notDefined")
    }
    #expect {
      try driver.wait(until: "document.querySelector('#message').textContent === 'never'", timeout: 0.2)
    } throws: { error in
      "\(error)".contains("timed out")
    }

    let screenshot = folder.appendingPathComponent("page.png")
    try driver.saveScreenshot(to: screenshot)
    let png = [UInt8](try Data(contentsOf: screenshot))
    // Signature, then the IHDR chunk: length (4 bytes), "IHDR", width and
    // height as big-endian 32-bit integers.
    try #require(png.count > 24)
    #expect(png[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    #expect(String(decoding: png[12..<16], as: UTF8.self) == "IHDR")
    let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }
    let height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
    #expect(width == 1280 && height > 0, "screenshot \(width) x \(height)")
  }
}
