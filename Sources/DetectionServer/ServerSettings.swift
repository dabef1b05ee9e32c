import COCO
import Foundation
import Torch
import Training

/// How `detr serve` runs: where it listens, how it batches, what it refuses, and the defaults of a
/// detection request.
public struct ServerSettings: Sendable {
  public var host = "127.0.0.1"
  /// 0 picks a free port (the one bound is printed and given to `onListening`).
  public var port = 8080
  /// At most this many images per forward pass.
  public var maxBatch = 4
  /// How long the first image of a batch waits for others to join it.
  public var maxDelay: Duration = .milliseconds(5)
  /// Images waiting or running at once; a request past it is answered 503 with Retry-After.
  public var maxQueue = 64
  /// Largest request body accepted (413 past it).
  public var maxBodyBytes = 16 << 20
  /// Largest decoded image accepted, in pixels (413 past it).
  public var maxPixels = 40_000_000
  /// A request not answered within this is answered 504 (its image is dropped if not yet run).
  public var requestTimeout: Duration = .seconds(30)
  /// Defaults of a request: the score threshold, the most detections, the shorter side the image is
  /// resized to and the longer side's limit (the checkpoint's own input size when it records one).
  public var threshold: Float = 0.5
  public var maxDetections = 100
  public var shorterSide = 800
  public var maxSize = 1333
  public var resizing = DETRTransform.Resizing.detr
  public var precision = Precision.fp32
  /// The shorter sides a request's `size` may ask for.
  public var allowedSizes = 32...2048

  public init() {}

  /// The default input of a request.
  public var input: DetectorInput { DetectorInput(shorterSide: shorterSide, maxSize: maxSize, resizing: resizing) }

}
