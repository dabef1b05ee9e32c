import Foundation
import Hummingbird

/// A request the server refuses or cannot answer: its HTTP status, a stable kind (the `kind` label of
/// `detr_errors_total`) and a message for a person, answered as
/// `{"error": {"kind": ..., "message": ...}}`.
public struct ServeError: Error, CustomStringConvertible, Sendable {
  public var status: HTTPResponse.Status
  public var kind: String
  public var message: String
  /// Seconds, for the Retry-After header of 503 answers.
  public var retryAfter: Int?

  public init(_ status: HTTPResponse.Status, kind: String, _ message: String, retryAfter: Int? = nil) {
    (self.status, self.kind, self.message, self.retryAfter) = (status, kind, message, retryAfter)
  }

  public var description: String { "\(status.code) \(kind): \(message)" }

  static func badRequest(_ kind: String, _ message: String) -> ServeError { ServeError(.badRequest, kind: kind, message) }
  static func tooLarge(_ message: String) -> ServeError { ServeError(.contentTooLarge, kind: "too_large", message) }
  static let overloaded = ServeError(
    .serviceUnavailable, kind: "overloaded", "the server's queue is full; retry after the time in Retry-After", retryAfter: 1)
  static let timedOut = ServeError(.gatewayTimeout, kind: "timeout", "the detection did not finish within the server's request timeout")
  static let stopping = ServeError(.serviceUnavailable, kind: "stopping", "the server is shutting down", retryAfter: 5)

  /// The JSON answer.
  func response() -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
    let body = (try? JSONSerialization.data(withJSONObject: ["error": ["kind": kind, "message": message]], options: [.sortedKeys])) ?? Data()
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
  }
}
