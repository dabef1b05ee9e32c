import COCO
import Detectors
import Foundation
import Testing
import TorchTestSupport
import Training

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

@testable import DETRCommands

/// The real `detr serve` process on a loopback port, talked to over HTTP: its answers equal
/// `detr predict`'s, concurrent requests are batched without changing any answer, every bad input
/// gets its status and a message, overload gives 503s and no mixed-up answer, SIGTERM finishes what
/// is queued and exits 0.
@Suite(.serialized) struct ServeTests {
  /// A running server and the session that talks to it.
  final class Server: @unchecked Sendable {
    let process = Process()
    let port: Int
    let session: URLSession
    private let output = Pipe()

    init(weights: URL, _ arguments: [String]) throws {
      process.executableURL = KillAndResumeTests.detr
      process.arguments = ["serve", "--weights", weights.path, "--port", "0"] + arguments
      process.standardOutput = output
      process.standardError = output
      try process.run()
      var printed = ""
      let deadline = Date().addingTimeInterval(60)
      while Date() < deadline, !printed.contains("\n") {
        let data = output.fileHandleForReading.availableData
        if data.isEmpty { break }
        printed += String(decoding: data, as: UTF8.self)
      }
      guard let range = printed.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
        let port = Int(printed[range].split(separator: ":").last!)
      else {
        process.terminate()
        throw TestFailure("detr serve printed no address: \(printed)")
      }
      self.port = port
      let configuration = URLSessionConfiguration.ephemeral
      configuration.httpMaximumConnectionsPerHost = 64
      configuration.timeoutIntervalForRequest = 60
      session = URLSession(configuration: configuration)
    }

    deinit {
      if process.isRunning {
        process.terminate()
        process.waitUntilExit()
      }
    }

    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    func get(_ path: String) async throws -> (status: Int, body: Data, headers: [AnyHashable: Any]) {
      let (body, response) = try await session.data(from: url(path))
      let http = response as! HTTPURLResponse
      return (http.statusCode, body, http.allHeaderFields)
    }

    func post(_ path: String, body: Data, contentType: String = "image/jpeg") async throws -> (
      status: Int, body: Data, headers: [AnyHashable: Any]
    ) {
      var request = URLRequest(url: url(path))
      request.httpMethod = "POST"
      request.setValue(contentType, forHTTPHeaderField: "Content-Type")
      let (data, response) = try await session.upload(for: request, from: body)
      let http = response as! HTTPURLResponse
      return (http.statusCode, data, http.allHeaderFields)
    }

    /// Waits until `/readyz` answers 200 (the warm-up has run): each poll short, so that one slow answer
    /// on a loaded machine does not use up the wait, and three minutes in all (the whole suite may be
    /// running beside it on two cores).
    func waitUntilReady() async throws {
      let deadline = Date().addingTimeInterval(180)
      while Date() < deadline {
        var request = URLRequest(url: url("/readyz"))
        request.timeoutInterval = 5
        if let (_, response) = try? await session.data(for: request), (response as? HTTPURLResponse)?.statusCode == 200 { return }
        guard process.isRunning else { throw TestFailure("detr serve exited (status \(process.terminationStatus)) before it was ready") }
        try await Task.sleep(for: .milliseconds(50))
      }
      throw TestFailure("detr serve was not ready within three minutes")
    }
  }

  struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
  }

  /// One detection of an answer: category id, score, box (x0, y0, x1, y1).
  struct Found: Equatable {
    var categoryId: Int
    var score: Double
    var box: [Double]

    func isClose(to other: Found) -> Bool {
      categoryId == other.categoryId && Swift.abs(score - other.score) < 1e-4 && zip(box, other.box).allSatisfy { Swift.abs($0 - $1) < 1e-3 }
    }
  }

  static func detections(_ body: Data) throws -> (found: [Found], batchSize: Int) {
    let object = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
    let list = try #require(object["detections"] as? [[String: Any]])
    let timing = try #require(object["timing"] as? [String: Any])
    return (
      list.map { Found(categoryId: $0["category_id"] as! Int, score: ($0["score"] as! NSNumber).doubleValue, box: $0["box"] as! [Double]) },
      timing["batch_size"] as! Int
    )
  }

  static func allClose(_ a: [Found], _ b: [Found]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { $0.isClose(to: $1) } }

  /// 8 images of 96×96 and an untrained tiny DETR (as EvaluateCommandTests): every query scores, so
  /// with threshold 0 each answer holds 10 detections that differ from image to image.
  static func setUp() throws -> (root: URL, images: [URL], weights: URL) {
    let (root, _, images, weights) = try EvaluateCommandTests.setUp()
    let files = try FileManager.default.contentsOfDirectory(at: images, includingPropertiesForKeys: nil).filter { $0.pathExtension == "jpg" }
    return (root, files.sorted { $0.path < $1.path }, weights)
  }

  static let sizeFlags = ["--size", "96", "--max-size", "96", "--threshold", "0"]

  @Test func answersEqualPredictAndBatchingChangesNone() async throws {
    let (root, images, weights) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    // detr predict's COCO results, bbox [x, y, w, h].
    let results = root.appendingPathComponent("predicted.json")
    var predict = try DETRCommand.parseAsRoot(["predict", "--weights", weights.path, "--json", results.path] + Self.sizeFlags + images.map(\.path))
    try predict.run()
    let predicted = try JSONSerialization.jsonObject(with: Data(contentsOf: results)) as! [[String: Any]]
    let ids = PredictCommand.imageIds(images)
    func expected(_ index: Int) -> [Found] {
      predicted.filter { $0["image_id"] as! Int == ids[index] }.map {
        let bbox = $0["bbox"] as! [Double]
        return Found(
          categoryId: $0["category_id"] as! Int, score: ($0["score"] as! NSNumber).doubleValue, box: [bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]])
      }.sorted { $0.score > $1.score }
    }

    let server = try Server(weights: weights, Self.sizeFlags + ["--max-batch", "4", "--max-delay-ms", "300"])
    try await server.waitUntilReady()
    let bodies = try images.map { try Data(contentsOf: $0) }
    // One at a time.
    for (index, body) in bodies.enumerated() {
      let answer = try await server.post("/v1/detect", body: body)
      #expect(answer.status == 200)
      let (found, batchSize) = try Self.detections(answer.body)
      #expect(batchSize == 1)
      #expect(found.count == 10)
      #expect(Self.allClose(found, expected(index)), "image \(index): served \(found) predicted \(expected(index))")
    }
    // All at once: gathered into batches, each answer still its own image's.
    let answers = try await withThrowingTaskGroup(of: (Int, Int, Data).self) { group in
      for (index, body) in bodies.enumerated() {
        group.addTask {
          let answer = try await server.post("/v1/detect", body: body)
          return (index, answer.status, answer.body)
        }
      }
      return try await group.reduce(into: [(Int, Int, Data)]()) { $0.append($1) }
    }
    var largest = 0
    for (index, status, body) in answers {
      #expect(status == 200)
      let (found, batchSize) = try Self.detections(body)
      largest = Swift.max(largest, batchSize)
      #expect(Self.allClose(found, expected(index)), "image \(index) in a batch of \(batchSize)")
    }
    #expect(largest > 1, "8 concurrent requests with a 300 ms window ran in batches of at most \(largest)")
    let metrics = String(decoding: try await server.get("/metrics").body, as: UTF8.self)
    // The warm-up, 8 images alone, then 8 in fewer than 8 forward passes.
    let passes = metrics.split(separator: "\n").first { $0.hasPrefix("detr_batch_size_count ") }.flatMap { Int($0.split(separator: " ")[1]) }
    #expect(passes.map { $0 < 17 } == true, "forward passes: \(passes.map(String.init) ?? "none")")
    #expect(metrics.contains("detr_requests_total{route=\"v1/detect\",status=\"200\"} 16"), "\(metrics)")
    // Multipart, and the drawn picture.
    let boundary = "swift-detr-test-boundary"
    var multipart = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n".utf8)
    multipart += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
    multipart += bodies[0] + Data("\r\n--\(boundary)--\r\n".utf8)
    let viaMultipart = try await server.post("/v1/detect", body: multipart, contentType: "multipart/form-data; boundary=\(boundary)")
    #expect(viaMultipart.status == 200)
    #expect(Self.allClose(try Self.detections(viaMultipart.body).found, expected(0)))
    let drawn = try await server.post("/v1/detect?draw=true", body: bodies[0])
    #expect(drawn.status == 200)
    let picture = try Image(encoded: drawn.body)
    #expect(picture.width == 96 && picture.height == 96)
    // The model and the schema.
    let model = try JSONSerialization.jsonObject(with: try await server.get("/v1/model").body) as! [String: Any]
    #expect(model["family"] as? String == "detr")
    #expect(model["preset"] is NSNull, "the test's checkpoint is made from a config, not a preset")
    #expect((model["categories"] as? [[String: Any]])?.count == 6)
    let schema = try JSONSerialization.jsonObject(with: try await server.get("/openapi.json").body) as! [String: Any]
    let paths = (schema["paths"] as! [String: Any]).keys.sorted()
    #expect(paths == ["/healthz", "/metrics", "/openapi.json", "/readyz", "/v1/detect", "/v1/model"])
    for path in paths where path != "/v1/detect" { #expect(try await server.get(path).status == 200, "GET \(path)") }
  }

  @Test func badInputsGetTheirStatusAndAMessage() async throws {
    let (root, images, weights) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    let server = try Server(weights: weights, Self.sizeFlags + ["--max-body-mib", "1", "--max-megapixels", "0.02"])
    try await server.waitUntilReady()
    let jpeg = try Data(contentsOf: images[0])
    let big = Image(width: 200, height: 200, color: RGB(10, 20, 30))
    let cases: [(name: String, path: String, body: Data, contentType: String, status: Int, kind: String, says: String)] = [
      ("empty body", "/v1/detect", Data(), "image/jpeg", 400, "no_image", "the body is empty"),
      ("not an image", "/v1/detect", Data("hello world".utf8), "image/jpeg", 400, "unsupported_image", "not a JPEG or PNG"),
      ("cut JPEG", "/v1/detect", jpeg.prefix(jpeg.count / 2), "image/jpeg", 400, "corrupt_image", "request's image"),
      ("unknown field", "/v1/detect?colour=red", jpeg, "image/jpeg", 400, "unknown_field", "colour"),
      ("bad threshold", "/v1/detect?threshold=2", jpeg, "image/jpeg", 400, "invalid_field", "threshold=2"),
      ("bad size", "/v1/detect?size=9", jpeg, "image/jpeg", 400, "invalid_field", "size=9"),
      ("bad draw", "/v1/detect?draw=maybe", jpeg, "image/jpeg", 400, "invalid_field", "true or false"),
      ("body over the limit", "/v1/detect", Data(count: (1 << 20) + 10), "image/jpeg", 413, "too_large", "--max-body-mib"),
      ("too many pixels (PNG)", "/v1/detect", try big.pngData(), "image/png", 413, "too_large", "200×200"),
      ("too many pixels (JPEG)", "/v1/detect", try big.jpegData(), "image/jpeg", 413, "too_large", "200×200"),
      ("multipart without image", "/v1/detect", Data("--b\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ny\r\n--b--\r\n".utf8),
       "multipart/form-data; boundary=b", 400, "bad_multipart", "none named \"image\""),
      ("multipart cut short", "/v1/detect", Data("--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nxyz".utf8),
       "multipart/form-data; boundary=b", 400, "bad_multipart", "closing boundary"),
    ]
    for item in cases {
      let answer = try await server.post(item.path, body: item.body, contentType: item.contentType)
      #expect(answer.status == item.status, "\(item.name)")
      let object = try? JSONSerialization.jsonObject(with: answer.body) as? [String: Any]
      let error = object?["error"] as? [String: String]
      #expect(error?["kind"] == item.kind, "\(item.name): \(String(decoding: answer.body, as: UTF8.self))")
      #expect(error?["message"]?.contains(item.says) == true, "\(item.name): \(error?["message"] ?? "")")
    }
    // Still serving, and every refusal counted by kind.
    #expect(try await server.post("/v1/detect", body: jpeg).status == 200)
    let metrics = String(decoding: try await server.get("/metrics").body, as: UTF8.self)
    #expect(metrics.contains("detr_errors_total{kind=\"invalid_field\"} 3"), "\(metrics)")
    #expect(metrics.contains("detr_errors_total{kind=\"too_large\"} 3"))
  }

  @Test func overloadGives503sAndNoAnswerIsMixedUp() async throws {
    let (root, images, weights) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    let server = try Server(weights: weights, Self.sizeFlags + ["--max-batch", "1", "--max-queue", "2", "--max-delay-ms", "0"])
    try await server.waitUntilReady()
    let bodies = try images.map { try Data(contentsOf: $0) }
    var alone: [[Found]] = []
    for body in bodies { alone.append(try Self.detections(try await server.post("/v1/detect", body: body).body).found) }
    let answers = try await withThrowingTaskGroup(of: (Int, Int, Data, String?).self) { group in
      for _ in 0..<6 {
        for (index, body) in bodies.enumerated() {
          group.addTask {
            let answer = try await server.post("/v1/detect", body: body)
            return (index, answer.status, answer.body, answer.headers["Retry-After"] as? String)
          }
        }
      }
      return try await group.reduce(into: [(Int, Int, Data, String?)]()) { $0.append($1) }
    }
    let refused = answers.filter { $0.1 == 503 }
    let served = answers.filter { $0.1 == 200 }
    #expect(refused.count + served.count == answers.count, "statuses \(Set(answers.map(\.1)))")
    #expect(!refused.isEmpty, "48 concurrent requests against a queue of 2 were all served")
    #expect(!served.isEmpty)
    for answer in refused { #expect(answer.3 == "1") }
    for (index, _, body, _) in served { #expect(Self.allClose(try Self.detections(body).found, alone[index]), "image \(index)") }
    #expect(try await server.get("/healthz").status == 200)
  }

  @Test func aRequestPastItsTimeoutGets504() async throws {
    let (root, images, weights) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    // A lone image waits 2 s for a batch to fill; the timeout is 0.3 s.
    let server = try Server(weights: weights, Self.sizeFlags + ["--max-batch", "8", "--max-delay-ms", "2000", "--timeout", "0.3"])
    try await server.waitUntilReady()
    let started = Date()
    let answer = try await server.post("/v1/detect", body: try Data(contentsOf: images[0]))
    #expect(answer.status == 504)
    #expect(Date().timeIntervalSince(started) < 1.5)
    #expect(String(decoding: answer.body, as: UTF8.self).contains("\"kind\":\"timeout\""))
  }

  @Test func sigtermAnswersWhatIsQueuedAndExitsZero() async throws {
    let (root, images, weights) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    let server = try Server(weights: weights, Self.sizeFlags + ["--max-batch", "8", "--max-delay-ms", "1500"])
    try await server.waitUntilReady()
    let body = try Data(contentsOf: images[0])
    let process = server.process
    let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
      for _ in 0..<3 { group.addTask { try await server.post("/v1/detect", body: body).status } }
      // The three wait in the queue for the batch window; stop the server meanwhile.
      group.addTask {
        try await Task.sleep(for: .milliseconds(500))
        kill(process.processIdentifier, SIGTERM)
        return 0
      }
      return try await group.reduce(into: [Int]()) { $0.append($1) }
    }
    #expect(statuses.sorted() == [0, 200, 200, 200])
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    #expect(process.terminationReason == .exit)
  }
}
