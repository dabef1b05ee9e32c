import ArgumentParser
import COCO
import DetectionServer
import Foundation
import Logging
import Torch
import Training

/// `detr serve`: a checkpoint behind HTTP, with dynamic batching (docs/serving.md).
struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve a checkpoint over HTTP: POST an image to /v1/detect, get its detections as JSON or drawn.",
    discussion: """
      Routes: POST /v1/detect (the image as the body or as the multipart part named image; query threshold, max_detections, size, draw=true), GET /v1/model, /healthz, /readyz, /metrics (Prometheus), /openapi.json.
      Concurrent requests for images of the same resized size are run together, up to --max-batch, the first waiting at most --max-delay-ms for others; each answer equals the image's alone. One forward pass runs at a time.
      Past --max-queue waiting images a request gets 503 with Retry-After. SIGTERM or Ctrl-C stops accepting, answers what is queued and exits 0.
      """)

  @Option(help: ArgumentHelp("A swift-detr checkpoint folder or a transformers folder (config.json + model.safetensors).", valueName: "DIR"))
  var weights: String

  @Option(help: "Address to listen on (0.0.0.0 for every interface).")
  var host = "127.0.0.1"

  @Option(help: "Port to listen on (0 picks a free one; the one bound is printed).")
  var port = 8080

  @Option(name: .customLong("max-batch"), help: "At most this many images per forward pass (default: 4 on a GPU, 1 on the CPU, where batches were measured no faster).")
  var maxBatchOption: Int?

  /// On the CPU, batches of 4 gave 0.9–1.05× the throughput of single images (docs/serving.md).
  var maxBatch: Int { maxBatchOption ?? ((try? Device.resolve(inference.device))?.isCUDA == true ? 4 : 1) }

  @Option(name: .customLong("max-delay-ms"), help: "How long the first image of a batch waits for others, in milliseconds.")
  var maxDelayMilliseconds = 5

  @Option(name: .customLong("max-queue"), help: "Images waiting or running at once; past it requests get 503.")
  var maxQueue = 64

  @Option(name: .customLong("max-body-mib"), help: "Largest request body, in MiB (413 past it).")
  var maxBodyMiB = 16

  @Option(name: .customLong("max-megapixels"), help: "Largest image, in millions of pixels (413 past it).")
  var maxMegapixels = 40.0

  @Option(name: .customLong("timeout"), help: "Seconds a request may wait for its detections (504 past it).")
  var timeoutSeconds = 30.0

  @Option(help: "Default score threshold of a request (its `threshold` overrides it).")
  var threshold: Float = 0.5

  @Option(name: .customLong("max-detections"), help: "Default most detections per image.")
  var maxDetections = 100

  /// The input size (a request's `size` overrides the shorter side, scaling the longer side's limit), precision, device.
  @OptionGroup var inference: RunOptions

  @Flag(name: .customLong("dry-run"), help: "Load the checkpoint, run one detection, print what GET /v1/model would answer and exit, without listening.")
  var dryRun = false

  func validate() throws {
    guard (1...256).contains(maxBatch) else { throw ValidationError("--max-batch must be between 1 and 256, got \(maxBatch)") }
    guard (0...10_000).contains(maxDelayMilliseconds) else { throw ValidationError("--max-delay-ms must be between 0 and 10000, got \(maxDelayMilliseconds)") }
    guard maxQueue >= maxBatch else { throw ValidationError("--max-queue (\(maxQueue)) must be at least --max-batch (\(maxBatch))") }
    guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535, got \(port)") }
    guard (1...1024).contains(maxBodyMiB) else { throw ValidationError("--max-body-mib must be between 1 and 1024, got \(maxBodyMiB)") }
    guard maxMegapixels > 0 && maxMegapixels <= 1000 else { throw ValidationError("--max-megapixels must be above 0 and at most 1000, got \(maxMegapixels)") }
    guard timeoutSeconds > 0 && timeoutSeconds <= 3600 else { throw ValidationError("--timeout must be above 0 and at most 3600 seconds, got \(timeoutSeconds)") }
    guard (0...1).contains(threshold) else { throw ValidationError("--threshold must be between 0 and 1, got \(threshold)") }
    guard maxDetections > 0 else { throw ValidationError("--max-detections must be positive, got \(maxDetections)") }
  }

  func settings(input: DetectorInput) -> ServerSettings {
    var settings = ServerSettings()
    (settings.host, settings.port, settings.maxBatch, settings.maxQueue) = (host, port, maxBatch, maxQueue)
    settings.maxDelay = .milliseconds(maxDelayMilliseconds)
    settings.maxBodyBytes = maxBodyMiB << 20
    settings.maxPixels = Int(maxMegapixels * 1e6)
    settings.requestTimeout = .milliseconds(Int(timeoutSeconds * 1000))
    (settings.threshold, settings.maxDetections) = (threshold, maxDetections)
    (settings.shorterSide, settings.maxSize, settings.resizing, settings.precision) = (input.shorterSide, input.maxSize, input.resizing, inference.precision)
    settings.allowedSizes = 32...Swift.max(2048, input.shorterSide)
    return settings
  }

  func run() throws {
    let device = try Device.resolve(inference.device)
    let loaded = try CheckpointInput.load(weights)
    let input = inference.input(for: loaded)
    loaded.detector.to(device: device)
    if !device.isCUDA {
      try MemoryEstimate.lowerBound(for: loaded.detector, batch: maxBatch, height: input.shorterSide, width: input.maxSize, training: false).check(
        "a batch of \(maxBatch) images of \(input.shorterSide)×\(input.maxSize)", advice: "lower --max-batch or --size (and --max-size)")
    }
    let service = DetectionService(loaded: loaded, settings: settings(input: input))
    if dryRun {
      let found = service.detectBlank()
      print(String(decoding: service.modelDescriptionJSON(), as: UTF8.self))
      print("dry run: one detection on a blank image gave \(found.scores.count) candidates; not listening")
      return
    }
    var logger = Logger(label: "detr-serve")
    logger.logLevel = .warning
    let (host, family, maxBatch) = (host, loaded.detector.kind.rawValue, maxBatch)
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
      do {
        try await service.run(logger: logger) { port in
          print("serving \(family) on http://\(host):\(port) (batches of up to \(maxBatch); POST /v1/detect, GET /v1/model)")
          fflush(nil)
        }
      } catch {
        outcome.error = error
      }
      done.signal()
    }
    done.wait()
    if let error = outcome.error { throw CommandFailure("the server stopped: \(error)") }
    print("stopped")
  }

  /// How the server's task ended, read once it has.
  private final class Outcome: @unchecked Sendable {
    var error: (any Error)?
  }
}
