import BigGAN
import Foundation
import Testing

/// `biggan-fast serve` over HTTP: every view's images equal `sample`'s with
/// the same settings, byte for byte; a client's newer request cancels its
/// older one; bad requests get one-line JSON errors; the run folder is
/// watched without being touched or locked.
@Suite(.serialized)
struct ServeCommandTests {
  /// A scratch folder with a 2-step run `r` (checkpoints, sheets and
  /// metrics at every step).
  static func trainedRun(_ name: String) throws -> String {
    let dir = try CommandLineTests.scratch(name)
    let train = try CommandLineTests.run(
      "biggan-fast",
      ["train", "--run", "r", "--steps", "2", "--batch", "4", "--log-every", "1", "--sample-every", "1", "--checkpoint-every", "1", "--threads", "2"],
      in: dir)
    #expect(train.status == 0, "\(train.output)")
    return dir
  }

  static func base64(_ line: [String: Any]) -> Data? { (line["png"] as? String).flatMap { Data(base64Encoded: $0) } }

  @Test("grid, interpolation and same-z images equal sample's files; downloads carry z, y and the command that reproduces them")
  func imagesEqualSample() throws {
    let dir = try Self.trainedRun("serve-images")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let server = try StudioServer(["--run", "r", "--threads", "2"], in: dir)
    defer { server.stop() }

    let info = try server.json("/api/info").object
    #expect(info["step"] as? Int == 2 && info["classes"] as? Int == 10 && info["watch"] as? Bool == true)
    #expect((info["classNames"] as? [String])?[3] == "ring" && info["classNameSource"] as? String == "run")
    let command = try #require(info["sampleCommand"] as? String)
    #expect(command == "biggan-fast sample --checkpoint runs/r/checkpoint/step-00000002")

    for (mode, truncation) in [("resample", "0.5"), ("scale", "0.3")] {
      let lines = try server.lines("/api/images?view=grid&classes=3,disc,9&count=2&seed=7&truncation=\(truncation)&mode=\(mode)")
      #expect(lines.first?["rows"] as? Int == 3 && lines.first?["columns"] as? Int == 2)
      #expect(lines.last?["done"] as? Bool == true, "\(lines.last ?? [:])")
      let images = lines.filter { $0["png"] != nil }
      #expect(images.map { $0["index"] as? Int } == Array(0..<6))
      let out = "grid-\(mode)"
      let sample = try CommandLineTests.run(
        "biggan-fast",
        ["sample", "--checkpoint", "runs/r/checkpoint/step-00000002", "--classes", "3,0,9", "--count", "2", "--seed", "7",
         "--truncation", truncation, "--truncation-mode", mode, "--output", out, "--threads", "1"], in: dir)
      #expect(sample.status == 0, "\(sample.output)")
      for line in images {
        let label = try #require(line["label"] as? Int), column = try #require(line["column"] as? Int)
        let file = FileManager.default.contents(atPath: String(format: "%@/%@/class%d_%04d.png", dir, out, label, column))
        #expect(file != nil && file == Self.base64(line), "\(mode) image \(line["index"] ?? "?")")
      }
    }

    // Interpolation and same-z cells against sample --z --y with the
    // downloaded latents and classes.
    for (view, extra, index) in [("interpolate", "&interp=both&count=2", 14), ("interpolate", "&interp=class&count=1", 5), ("same-z", "&classes=2,8&latent=3", 1)] {
      let spec = "view=\(view)\(extra)&seed=4&truncation=0.8"
      let lines = try server.lines("/api/images?\(spec)")
      let cell = try #require(lines.first { $0["index"] as? Int == index })
      let z = try server.get("/api/z.npy?\(spec)&image=\(index)"), y = try server.get("/api/y.npy?\(spec)&image=\(index)")
      #expect(z.status == 200 && y.status == 200)
      try z.body.write(to: URL(fileURLWithPath: "\(dir)/z.npy"))
      try y.body.write(to: URL(fileURLWithPath: "\(dir)/y.npy"))
      let recipe = try server.json("/api/recipe?\(spec)&image=\(index)").object
      let recipeCommand = try #require(recipe["command"] as? String)
      #expect(recipeCommand == "\(command) --z z.npy --y y.npy --truncation 0.8 --truncation-mode resample")
      let out = "zy-\(view)-\(index)"
      let arguments = Array(recipeCommand.split(separator: " ").dropFirst().map(String.init)) + ["--output", out, "--threads", "1"]
      let sample = try CommandLineTests.run("biggan-fast", arguments, in: dir)
      #expect(sample.status == 0, "\(sample.output)")
      let label = try #require(cell["label"] as? Int)
      let file = FileManager.default.contents(atPath: String(format: "%@/%@/class%d_0000.png", dir, out, label))
      #expect(file != nil && file == Self.base64(cell), "\(view) image \(index)")

      let download = try server.get("/api/image.png?\(spec)&image=\(index)")
      #expect(download.status == 200 && download.headers["content-disposition"]?.hasPrefix("attachment; filename=") == true)
      try download.body.write(to: URL(fileURLWithPath: "\(dir)/download.png"))
      let a = try PNG.read("\(dir)/download.png"), b = try PNG.read(String(format: "%@/%@/class%d_0000.png", dir, out, label))
      #expect(a == b)
      #expect(String(decoding: download.body, as: UTF8.self).contains("tEXtbiggan-fast\u{0}{\"checkpoint\":\"runs/r/checkpoint/step-00000002\""))
    }
  }

  @Test("a client's newer request cancels its older one; bad requests get a status and a one-line JSON error")
  func cancelsAndRefuses() throws {
    let dir = try Self.trainedRun("serve-refuse")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let server = try StudioServer(["--run", "r", "--threads", "1", "--max-images", "4000"], in: dir)
    defer { server.stop() }

    // The older request is still rendering when the newer one comes: its
    // first image is in, most are not.
    let older = try StudioServer.Connection(port: server.port)
    older.send(Array("GET /api/images?view=grid&classes=all&count=64&client=tab&seq=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
    let begun = older.receive(timeout: 60) { $0.contains("\"index\":0") }
    #expect(begun.hasPrefix("HTTP/1.1 200"), "\(begun.prefix(300))")
    let newer = try server.lines("/api/images?view=grid&classes=2&count=1&client=tab&seq=2")
    #expect(newer.last?["done"] as? Bool == true)
    let rest = older.receive(timeout: 60) { $0.hasSuffix("0\r\n\r\n") }
    #expect(rest.contains("{\"cancelled\":true}"), "\(rest.suffix(300))")
    #expect(rest.components(separatedBy: "\"png\"").count - 1 < 640)
    // A stale request of a client that already sent a newer one ends at once.
    #expect(try server.lines("/api/images?view=grid&classes=2&count=1&client=tab&seq=1").last?["cancelled"] as? Bool == true)

    let bad: [(String, Int, String)] = [
      ("/api/images", 400, "view is missing"),
      ("/api/images?view=mosaic", 400, "view 'mosaic' is not grid"),
      ("/api/images?view=grid&truncation=0", 400, "truncation '0' is not a number in (0, 1]"),
      ("/api/images?view=grid&truncation=nan", 400, "truncation 'nan'"),
      ("/api/images?view=grid&count=0", 400, "count '0' is not an integer in 1...64"),
      ("/api/images?view=grid&count=99999999999999999999", 400, "count '99999999999999999999'"),
      ("/api/images?view=grid&classes=rings", 400, "classes: 'rings' is not a class of this run"),
      ("/api/images?view=grid&classes=,", 400, "classes is empty"),
      ("/api/images?view=grid&seed=-1", 400, "seed '-1'"),
      ("/api/images?view=grid&mode=clip", 400, "mode 'clip' is not one of resample, scale"),
      ("/api/images?view=grid&view=grid", 400, "parameter 'view' is given more than once"),
      ("/api/z.npy?view=grid&classes=1&count=2&image=2", 400, "image '2' is not an integer in 0...1"),
      ("/api/z.npy?view=grid", 400, "image is missing"),
      ("/api/metrics?offset=-5", 400, "offset '-5'"),
      ("/api/sheet/..%2F..%2Fconfig.json", 404, "no sample sheet"),
      ("/api/sheet/step-0000000a.png", 404, "no sample sheet"),
      ("/api/sheet/step-00000099.png", 404, "no sample sheet step-00000099.png"),
      ("/etc/passwd", 404, "no such page"),
      ("/assets/../../etc/passwd", 404, "no such page"),
    ]
    for (path, status, fragment) in bad {
      let r = try server.json(path)
      #expect(r.status == status && (r.object["error"] as? String)?.contains(fragment) == true, "\(path): \(r.status) \(r.object)")
    }
    #expect(try server.get("/api/sheet/step-00000002.png").status == 200)
    #expect(try server.json("/api/info", method: "DELETE").status == 400)

    // What URLSession would not send.
    let evil = try server.raw(Array("GET /api/info HTTP/1.1\r\nHost: evil.example:\(server.port)\r\n\r\n".utf8))
    #expect(evil.hasPrefix("HTTP/1.1 403") && evil.contains("is not this machine's loopback address"), "\(evil.prefix(300))")
    let body = try server.raw(Array("POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello".utf8))
    #expect(body.hasPrefix("HTTP/1.1 400") && body.contains("request bodies are not accepted"), "\(body.prefix(300))")
    let long = try server.raw(Array("GET /api/info?\(String(repeating: "a", count: 20000)) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
    #expect(long.hasPrefix("HTTP/1.1 400") && long.contains("longer than 16384 bytes"), "\(long.prefix(300))")
    _ = try server.raw(Array("\u{0}\u{1}GARBAGE \r\n\r\n\r\n".utf8) + (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 37) }, timeout: 3)
    _ = try server.raw(Array("GET / HTTP/1.1\r\n".utf8) + Array(repeating: UInt8(ascii: "X"), count: 200_000), timeout: 3)
    #expect(try server.json("/api/info").status == 200, "the server still answers")
    #expect(server.process.isRunning)

    let reloaded = try server.json("/api/reload", method: "POST")
    #expect(reloaded.status == 200 && reloaded.object["step"] as? Int == 2)

    // Off loopback a token is required, and then checked on every request.
    CommandLineTests.expectError(
      try CommandLineTests.run("biggan-fast", ["serve", "--run", "r", "--host", "0.0.0.0"], in: dir), "pass --token SECRET")
    let guarded = try StudioServer(["--run", "r", "--token", "s3cret-token", "--threads", "1"], in: dir)
    defer { guarded.stop() }
    #expect(guarded.output.contains("?token=s3cret-token"))
    #expect(try guarded.json("/api/info").status == 401)
    #expect(try guarded.json("/?token=wrong-token-x").status == 401)
    #expect(try guarded.get("/assets/studio.js").status == 401)
    #expect(try guarded.json("/api/info?token=s3cret-token").status == 200)
    let tooMany = try guarded.json("/api/images?view=grid&classes=all&count=64&token=s3cret-token")
    #expect(tooMany.status == 400 && (tooMany.object["error"] as? String)?.contains("640 images asked for") == true, "\(tooMany.object)")
    #expect(try guarded.get("/api/info", headers: ["Authorization": "Bearer s3cret-token"]).status == 200)
  }

  @Test("watching a run reads whole metrics lines from an offset, follows a new run, and neither changes nor locks the folder")
  func watchesRunReadOnly() throws {
    let dir = try Self.trainedRun("serve-watch")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let server = try StudioServer(["--run", "r", "--threads", "1"], in: dir)
    defer { server.stop() }
    func listing() -> [String] {
      (FileManager.default.enumerator(atPath: "\(dir)/runs/r")?.allObjects as? [String] ?? []).sorted()
    }
    let before = listing()

    let run = try server.json("/api/run").object
    #expect(run["checkpoints"] as? [Int] == [1, 2])
    #expect((run["sheets"] as? [[String: Any]])?.compactMap { $0["file"] as? String } == ["step-00000001.png", "step-00000002.png"])
    let metricsPath = "\(dir)/runs/r/metrics.jsonl"
    let size = try #require(FileManager.default.attributesOfItem(atPath: metricsPath)[.size] as? Int)
    let first = try server.json("/api/metrics?offset=0").object
    #expect(first["offset"] as? Int == size && first["reset"] as? Bool == false)
    #expect((first["lines"] as? [[String: Any]])?.contains { $0["loss_g"] != nil } == true)

    // train --resume runs beside the server: the studio holds no lock.
    let resumed = try CommandLineTests.run(
      "biggan-fast",
      ["train", "--run", "r", "--steps", "3", "--batch", "4", "--log-every", "1", "--sample-every", "1", "--checkpoint-every", "1", "--resume", "--threads", "1"],
      in: dir)
    #expect(resumed.status == 0, "\(resumed.output)")
    let next = try server.json("/api/metrics?offset=\(size)").object
    #expect((next["lines"] as? [[String: Any]])?.contains { $0["step"] as? Int == 3 } == true)
    #expect(try server.json("/api/run").object["checkpoints"] as? [Int] == [1, 2, 3])
    #expect(try server.json("/api/reload", method: "POST").object["step"] as? Int == 3)

    // A torn last line is left for later; a shorter file is a new run.
    let grown = try #require(next["offset"] as? Int)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: metricsPath))
    try handle.seekToEnd()
    try handle.write(contentsOf: Data("{\"step\": 4, \"loss_g\"".utf8))
    let torn = try server.json("/api/metrics?offset=\(grown)").object
    #expect(torn["offset"] as? Int == grown && (torn["lines"] as? [Any])?.isEmpty == true)
    try handle.write(contentsOf: Data(": 1.5}\nnot json\n".utf8))
    try handle.close()
    let completed = try server.json("/api/metrics?offset=\(grown)").object
    #expect((completed["lines"] as? [[String: Any]])?.map { $0["loss_g"] as? Double } == [1.5])
    #expect(completed["skipped"] as? Int == 1)
    try Data("{\"step\": 1}\n".utf8).write(to: URL(fileURLWithPath: metricsPath))
    let restarted = try server.json("/api/metrics?offset=\(grown)").object
    #expect(restarted["reset"] as? Bool == true && restarted["offset"] as? Int == 12)

    let after = listing().filter { !$0.contains("step-00000003") }
    #expect(after == before, "the studio added or removed files in the run folder")

    // A checkpoint outside a run has nothing to watch.
    let lone = try StudioServer(["--checkpoint", "runs/r/checkpoint/step-00000001/G_ema.safetensors", "--threads", "1"], in: dir)
    defer { lone.stop() }
    #expect(try lone.json("/api/info").object["watch"] as? Bool == true)
    try FileManager.default.copyItem(atPath: "\(dir)/runs/r/checkpoint/step-00000001/G_ema.safetensors", toPath: "\(dir)/G_ema.safetensors")
    let outside = try StudioServer(["--checkpoint", "G_ema.safetensors", "--threads", "1"], in: dir)
    defer { outside.stop() }
    let info = try outside.json("/api/info").object
    #expect(info["watch"] as? Bool == false && info["classNameSource"] as? String == "index")
    #expect(try outside.json("/api/metrics").status == 404)
  }

  @Test("a 1000-class model without names of its own is explored by ImageNet names")
  func imageNetNames() throws {
    let dir = try CommandLineTests.scratch("serve-imagenet")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try CommandLineTests.writeImageNetModel(to: "\(dir)/G.safetensors")
    let server = try StudioServer(["--checkpoint", "G.safetensors", "--threads", "1"], in: dir)
    defer { server.stop() }
    let info = try server.json("/api/info").object
    #expect(info["classNameSource"] as? String == "imagenet" && (info["classNames"] as? [String])?[207] == "golden retriever")
    #expect(info["watch"] as? Bool == false && info["sampleCommand"] as? String == "biggan-fast sample --checkpoint G.safetensors")
    let lines = try server.lines("/api/images?view=grid&classes=golden%20retriever,Volcano&count=1&seed=3")
    let images = lines.filter { $0["png"] != nil }
    #expect(images.map { $0["label"] as? Int } == [207, 980])
    let sample = try CommandLineTests.run(
      "biggan-fast", ["sample", "--checkpoint", "G.safetensors", "--classes", "207,980", "--count", "1", "--seed", "3", "--output", "out"], in: dir)
    #expect(sample.status == 0, "\(sample.output)")
    for line in images {
      let label = try #require(line["label"] as? Int)
      #expect(FileManager.default.contents(atPath: String(format: "%@/out/class%d_0000.png", dir, label)) == Self.base64(line))
    }
    let ambiguous = try server.json("/api/images?view=grid&classes=crane")
    #expect(ambiguous.status == 400 && (ambiguous.object["error"] as? String)?.contains("ambiguous") == true, "\(ambiguous.object)")
  }
}
