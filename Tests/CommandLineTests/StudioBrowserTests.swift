import Foundation
import Testing

/// The studio's page in headless Chromium, driven as a user drives it: a
/// class clicked and the truncation slider moved give the images `sample`
/// writes with the same settings, bit for bit; the detail panel gives the
/// command that reproduces an image; the Watch view draws the run.
///
/// With `STUDIO_SCREENSHOTS=FOLDER` set it also saves `studio-explore.png`
/// and `studio-watch.png` there, of the run `STUDIO_RUN` names (a run
/// folder; default the test's own 2-step run).
@Suite(.serialized)
struct StudioBrowserTests {
  /// Sets a form control's value and sends the events a user's change sends.
  static let setValue = """
    arguments[0].value = arguments[1];
    arguments[0].dispatchEvent(new Event('input', {bubbles: true}));
    arguments[0].dispatchEvent(new Event('change', {bubbles: true}));
    """

  /// The images on the page, in index order: index, label and PNG bytes.
  static func images(_ browser: WebDriver) throws -> [(index: Int, label: Int, png: Data)] {
    let rows = try browser.execute(
      "return [...document.querySelectorAll('img.sample')].map(i => [Number(i.dataset.index), Number(i.dataset.label), i.src])",
      as: [[Any]].self)
    return rows.compactMap { row in
      guard row.count == 3, let index = row[0] as? Int, let label = row[1] as? Int, let src = row[2] as? String,
        let comma = src.firstIndex(of: ","), let png = Data(base64Encoded: String(src[src.index(after: comma)...]))
      else { return nil }
      return (index, label, png)
    }.sorted { $0.index < $1.index }
  }

  @Test("a class click and the truncation slider give sample's images bit for bit; the detail panel and the Watch view work")
  func exploreAndWatch() throws {
    guard WebDriver.isInstalled else {
      Issue.record("headless Chromium needed: apt-get install chromium chromium-driver")
      return
    }
    let dir = try ServeCommandTests.trainedRun("studio-browser")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let server = try StudioServer(["--run", "r", "--threads", "2"], in: dir)
    defer { server.stop() }
    let browser = try WebDriver()
    defer { browser.quit() }
    try browser.open(server.url)
    try browser.wait(until: "document.querySelectorAll('.class-item').length === 10", timeout: 30)
    try browser.wait(until: "document.querySelector('#status').dataset.state === 'done'", timeout: 60)

    try browser.find(".class-item[data-class=\"3\"]").click()
    try browser.execute(Self.setValue, try browser.find("#truncation"), "0.5")
    let settled = """
      document.querySelector('#status').dataset.state === 'done'
        && document.querySelectorAll('img.sample').length === 4
        && [...document.querySelectorAll('img.sample')].every(i => i.dataset.label === '3')
      """
    try browser.wait(until: settled, timeout: 60)
    #expect(try browser.find("#truncation-value").text() == "0.5")
    let sample = try CommandLineTests.run(
      "biggan-fast",
      ["sample", "--run", "r", "--classes", "ring", "--count", "4", "--truncation", "0.5", "--output", "expected", "--threads", "1"],
      in: dir)
    #expect(sample.status == 0, "\(sample.output)")
    let shown = try Self.images(browser)
    #expect(shown.map(\.index) == [0, 1, 2, 3])
    for image in shown {
      let file = FileManager.default.contents(atPath: String(format: "%@/expected/class3_%04d.png", dir, image.index))
      #expect(file != nil && file == image.png, "image \(image.index) differs from sample's")
    }

    // The other truncation mode, by the select.
    try browser.execute(Self.setValue, try browser.find("#mode"), "scale")
    try browser.wait(until: settled, timeout: 60)
    let scaled = try CommandLineTests.run(
      "biggan-fast",
      ["sample", "--run", "r", "--classes", "3", "--count", "4", "--truncation", "0.5", "--truncation-mode", "scale", "--output", "scaled", "--threads", "1"],
      in: dir)
    #expect(scaled.status == 0, "\(scaled.output)")
    let scaledShown = try Self.images(browser)
    #expect(scaledShown.count == 4)
    for image in scaledShown {
      let file = FileManager.default.contents(atPath: String(format: "%@/scaled/class3_%04d.png", dir, image.index))
      #expect(file != nil && file == image.png, "scaled image \(image.index) differs from sample's")
    }

    try browser.find("img.sample[data-index=\"2\"]").click()
    try browser.wait(until: "!document.querySelector('#detail').hidden && document.querySelector('#command').textContent.includes('--z z.npy')", timeout: 30)
    let command = try browser.find("#command").text()
    #expect(command.contains("biggan-fast sample --checkpoint runs/r/checkpoint/step-00000002 --z z.npy --y y.npy --truncation 0.5 --truncation-mode scale"), "\(command)")
    for link in ["#download-png", "#download-z", "#download-y"] {
      let href = try #require(try browser.find(link).attribute("href"))
      #expect(href.contains("image=2") && href.contains("truncation=0.5"), "\(link): \(href)")
    }

    try browser.find("#tab-watch").click()
    try browser.wait(
      until: """
        document.querySelector('#chart-loss svg path') !== null
          && document.querySelector('#sheet').naturalWidth > 0
          && document.querySelector('#sheet-label').textContent.includes('2')
        """, timeout: 30)
    #expect(try browser.find("#sheet-step").attribute("max") == "1")

    if let folder = ProcessInfo.processInfo.environment["STUDIO_SCREENSHOTS"] {
      try Self.screenshots(browser, into: folder, fallback: server)
    }
  }

  /// The README's two pictures, of `STUDIO_RUN` when set.
  static func screenshots(_ browser: WebDriver, into folder: String, fallback: StudioServer) throws {
    var server = fallback
    var other: StudioServer?
    if let run = ProcessInfo.processInfo.environment["STUDIO_RUN"] {
      let url = URL(fileURLWithPath: run).standardizedFileURL
      other = try StudioServer(
        ["--run", url.lastPathComponent, "--runs", url.deletingLastPathComponent().path, "--threads", "2"], in: NSTemporaryDirectory())
      server = other!
    }
    defer { other?.stop() }
    try browser.open(server.url)
    try browser.wait(until: "document.querySelector('#status').dataset.state === 'done'", timeout: 60)
    try browser.execute(Self.setValue, try browser.find("#truncation"), "0.6")
    try browser.wait(until: "document.querySelector('#status').dataset.state === 'done'", timeout: 60)
    try browser.find("img.sample[data-index=\"13\"]").click()
    try browser.wait(until: "document.querySelector('#command').textContent.includes('--z')", timeout: 30)
    try browser.saveScreenshot(to: URL(fileURLWithPath: folder).appendingPathComponent("studio-explore.png"))
    try browser.find("#tab-watch").click()
    try browser.wait(until: "document.querySelector('#chart-sv svg path') !== null && document.querySelector('#sheet').naturalWidth > 0", timeout: 30)
    try browser.saveScreenshot(to: URL(fileURLWithPath: folder).appendingPathComponent("studio-watch.png"))
  }
}
