import COCO
import Detection
import Foundation
import Hummingbird
import Logging
import NIOCore
import Torch
import Training

/// A loaded detector behind HTTP (`detr serve`): `POST /v1/detect`, `GET /v1/model`, `/healthz`,
/// `/readyz`, `/metrics` and `/openapi.json` (docs/serving.md has the API; `OpenAPIDocument` the schema).
///
/// Requests are decoded and resized on the server's event loops; their inputs go to one
/// `InferenceQueue`, which batches them and runs one forward pass at a time.
public final class DetectionService: Sendable {
  public let loaded: LoadedDetector
  public let settings: ServerSettings
  public let metrics = ServerMetrics()
  let queue: InferenceQueue
  private let readiness = Readiness()

  public init(loaded: LoadedDetector, settings: ServerSettings) {
    (self.loaded, self.settings) = (loaded, settings)
    let precision = settings.precision
    queue = InferenceQueue(maxBatch: settings.maxBatch, maxDelay: settings.maxDelay, capacity: settings.maxQueue, metrics: metrics) {
      [loaded] inputs in loaded.detections(inInputs: inputs, precision: precision)
    }
  }

  private final class Readiness: @unchecked Sendable {
    private let lock = NSLock()
    private var ready = false
    var isReady: Bool {
      get { lock.withLock { ready } }
      set { lock.withLock { ready = newValue } }
    }
  }

  /// Listens until SIGTERM or SIGINT, then stops accepting, answers what is queued and returns.
  /// `onListening` gets the bound port once the socket is open (before the warm-up ends: `/readyz`
  /// says when detections are served).
  public func run(logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
    queue.start()
    defer { queue.stop() }
    let app = Application(
      router: router(),
      configuration: ApplicationConfiguration(address: .hostname(settings.host, port: settings.port), serverName: "swift-detr"),
      onServerRunning: { [self] channel in
        onListening(channel.localAddress?.port ?? settings.port)
        Task.detached { await self.warmUp(logger: logger) }
      },
      logger: logger)
    try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
  }

  /// One detection on a blank image of the default size through the queue, so that the first request
  /// does not pay for libtorch's first-call costs; then `/readyz` answers 200.
  func warmUp(logger: Logger) async {
    let input = blankInput()
    do {
      _ = try await queue.submit(input, size: loaded.paddedSize(of: input), timeout: .seconds(600))
      readiness.isReady = true
      logger.info("ready: warmed up")
    } catch {
      logger.error("warm-up failed: \(error)")
    }
  }

  func router() -> Router<BasicRequestContext> {
    let router = Router()
    router.get("healthz") { [self] _, _ in answered("healthz", json(["status": "ok"])) }
    router.get("readyz") { [self] _, _ in
      readiness.isReady
        ? answered("readyz", json(["status": "ready"]))
        : answered("readyz", ServeError(.serviceUnavailable, kind: "not_ready", "the model is warming up", retryAfter: 1).response())
    }
    router.get("v1/model") { [self] _, _ in answered("v1/model", json(modelDescription)) }
    router.get("metrics") { [self] _, _ in
      answered(
        "metrics",
        Response(
          status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render()))))
    }
    router.get("openapi.json") { [self] _, _ in
      answered("openapi.json", Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json))))
    }
    router.post("v1/detect") { [self] request, _ in
      let started = ContinuousClock.now
      let response: Response
      do {
        response = try await detect(request, started: started)
      } catch let error as ServeError {
        metrics.recordError(kind: error.kind)
        response = error.response()
      } catch {
        metrics.recordError(kind: "internal")
        response = ServeError(.internalServerError, kind: "internal", "\(error)").response()
      }
      metrics.recordRequest(route: "v1/detect", status: Int(response.status.code), seconds: InferenceQueue.seconds(ContinuousClock.now - started))
      return response
    }
    return router
  }

  private func answered(_ route: String, _ response: Response) -> Response {
    metrics.recordRequest(route: route, status: Int(response.status.code), seconds: nil)
    return response
  }

  /// `GET /v1/model`'s answer, as JSON.
  public func modelDescriptionJSON() -> Data {
    (try? JSONSerialization.data(withJSONObject: modelDescription, options: [.prettyPrinted, .sortedKeys])) ?? Data()
  }

  /// One detection on a blank image of the default size, outside the server: what `--dry-run` checks.
  public func detectBlank() -> ImageDetections {
    loaded.detections(inInputs: [blankInput()], precision: settings.precision)[0]
  }

  /// A plain grey square of the default size, resized as a request's image would be.
  func blankInput() -> TransformedSample {
    let blank = Image(width: settings.shorterSide, height: settings.shorterSide, color: RGB(124, 116, 104))
    return loaded.input(for: blank, shorterSide: settings.shorterSide, maxSize: settings.maxSize, resizing: settings.resizing)
  }

  /// `GET /v1/model`.
  var modelDescription: [String: Any] {
    [
      "family": loaded.detector.kind.rawValue,
      "preset": loaded.preset ?? NSNull(),
      "parameters": loaded.detector.parameters().reduce(0) { $0 + $1.elementCount },
      "categories": loaded.categories.entries.map { ["id": $0.id, "name": $0.name] },
      "input": [
        "shorter_side": settings.shorterSide, "max_size": settings.maxSize, "resizing": settings.resizing.rawValue,
        "size_divisor": loaded.detector.inputSizeDivisor, "allowed_sizes": [settings.allowedSizes.lowerBound, settings.allowedSizes.upperBound],
      ],
      "device": "\(loaded.detector.device)",
      "precision": settings.precision.rawValue,
      "batching": ["max_batch": settings.maxBatch, "max_delay_ms": Int(InferenceQueue.seconds(settings.maxDelay) * 1000), "max_queue": settings.maxQueue],
    ]
  }

  /// `POST /v1/detect`.
  func detect(_ request: Request, started: ContinuousClock.Instant) async throws -> Response {
    let options = try DetectOptions(query: Array(request.uri.queryParameters), settings: settings)
    guard readiness.isReady else { throw ServeError(.serviceUnavailable, kind: "not_ready", "the model is warming up", retryAfter: 1) }
    let bytes = try await imageBytes(of: request)
    let image = try decode(bytes)
    let resize = options.size.map { settings.input.withShorterSide($0) } ?? settings.input
    let input = loaded.input(for: image, shorterSide: resize.shorterSide, maxSize: resize.maxSize, resizing: resize.resizing)
    let answer = try await queue.submit(input, size: loaded.paddedSize(of: input), timeout: settings.requestTimeout)
    let found = answer.detections.filtered(threshold: options.threshold, limit: options.maxDetections)
    if options.draw {
      var drawn = image
      drawn.draw(
        zip(found.labels, zip(found.scores, found.boxes)).map { label, scored in
          DrawnBox(box: scored.1, classIndex: label, caption: "\(loaded.categories.name(ofIndex: label)) \(String(format: "%.2f", scored.0))")
        })
      let encoded = try drawn.pngData()
      return Response(status: .ok, headers: [.contentType: "image/png"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: encoded)))
    }
    let milliseconds = InferenceQueue.seconds(ContinuousClock.now - started) * 1000
    let answerBody = DetectAnswer(
      model: .init(family: loaded.detector.kind.rawValue), image: .init(width: image.width, height: image.height),
      input: .init(width: input.width, height: input.height),
      detections: zip(found.labels, zip(found.scores, found.boxes)).map { label, scored in
        DetectAnswer.Detection(
          categoryId: loaded.categories.categoryId(ofIndex: label), categoryName: loaded.categories.name(ofIndex: label), score: scored.0,
          box: scored.1)
      },
      timing: .init(totalMilliseconds: (milliseconds * 1000).rounded() / 1000, batchSize: answer.batchSize))
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return Response(
      status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(answerBody))))
  }

  /// The image's bytes: the body itself, or its `image` part when it is `multipart/form-data`.
  func imageBytes(of request: Request) async throws -> [UInt8] {
    if let length = request.headers[.contentLength].flatMap(Int.init), length > settings.maxBodyBytes {
      throw ServeError.tooLarge("the body has \(length) bytes, more than the server's limit of \(settings.maxBodyBytes) (--max-body-mib)")
    }
    var bytes: [UInt8] = []
    for try await buffer in request.body {
      guard bytes.count + buffer.readableBytes <= settings.maxBodyBytes else {
        throw ServeError.tooLarge("the body is larger than the server's limit of \(settings.maxBodyBytes) bytes (--max-body-mib)")
      }
      bytes += buffer.readableBytesView
    }
    guard !bytes.isEmpty else { throw ServeError.badRequest("no_image", "the body is empty; send a JPEG or PNG image as the body or as a multipart part named image") }
    if let contentType = request.headers[.contentType], let boundary = MultipartImage.boundary(ofContentType: contentType) {
      return try MultipartImage.image(in: bytes, boundary: boundary)
    }
    return bytes
  }

  /// The decoded image, after its header's size is checked against the pixel limit.
  func decode(_ bytes: [UInt8]) throws -> Image {
    guard let header = EncodedImage.header(of: bytes) else {
      throw ServeError.badRequest(
        "unsupported_image", "the body is not a JPEG or PNG image (its first bytes are \(bytes.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")))")
    }
    guard header.width > 0, header.height > 0 else { throw ServeError.badRequest("corrupt_image", "the \(header.format.rawValue) header gives a size of \(header.width)×\(header.height)") }
    guard header.width * header.height <= settings.maxPixels else {
      throw ServeError.tooLarge(
        "the image is \(header.width)×\(header.height) pixels, more than the server's limit of \(settings.maxPixels) (--max-megapixels)")
    }
    do {
      return try Image(encoded: Data(bytes), path: "the request's image")
    } catch {
      throw ServeError.badRequest("corrupt_image", "\(error)")
    }
  }

  func json(_ object: [String: Any]) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
  }
}

/// The query of `POST /v1/detect`: `threshold`, `max_detections`, `size`, `draw`; any other name is refused.
struct DetectOptions {
  var threshold: Float
  var maxDetections: Int
  var size: Int?
  var draw = false

  static let names: Set<String> = ["threshold", "max_detections", "size", "draw"]

  init(query: [(key: Substring, value: Substring)], settings: ServerSettings) throws {
    (threshold, maxDetections) = (settings.threshold, settings.maxDetections)
    for (key, value) in query {
      switch key {
      case "threshold":
        guard let parsed = Float(value), (0...1).contains(parsed) else { throw Self.invalid("threshold", value, "a number from 0 to 1") }
        threshold = parsed
      case "max_detections":
        guard let parsed = Int(value), (1...10_000).contains(parsed) else { throw Self.invalid("max_detections", value, "a whole number from 1 to 10000") }
        maxDetections = parsed
      case "size":
        guard let parsed = Int(value), settings.allowedSizes.contains(parsed) else {
          throw Self.invalid("size", value, "a whole number from \(settings.allowedSizes.lowerBound) to \(settings.allowedSizes.upperBound)")
        }
        size = parsed
      case "draw":
        guard let parsed = Bool(String(value).lowercased()) else { throw Self.invalid("draw", value, "true or false") }
        draw = parsed
      default:
        throw ServeError.badRequest(
          "unknown_field", "unknown query field \"\(key)\"; the fields are \(Self.names.sorted().joined(separator: ", "))")
      }
    }
  }

  static func invalid(_ name: String, _ value: Substring, _ expected: String) -> ServeError {
    ServeError.badRequest("invalid_field", "\(name)=\(value) is not valid: expected \(expected)")
  }
}

/// The JSON answer of `POST /v1/detect`.
struct DetectAnswer: Codable {
  struct Model: Codable { var family: String }
  struct Size: Codable {
    var width: Int
    var height: Int
  }
  struct Detection: Codable {
    var categoryId: Int
    var categoryName: String
    var score: Float
    /// (x0, y0, x1, y1) in pixels of the image as sent.
    var box: [Double]
    enum CodingKeys: String, CodingKey {
      case categoryId = "category_id", categoryName = "category_name", score, box
    }
  }
  struct Timing: Codable {
    var totalMilliseconds: Double
    var batchSize: Int
    enum CodingKeys: String, CodingKey { case totalMilliseconds = "total_ms", batchSize = "batch_size" }
  }
  var model: Model
  /// The image as sent, and the detector's input after resizing.
  var image: Size
  var input: Size
  var detections: [Detection]
  var timing: Timing
}
