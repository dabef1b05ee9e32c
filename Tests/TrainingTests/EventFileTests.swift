import Foundation
import Testing

@testable import Training

/// swift-detr's TensorBoard event files are byte for byte what the `tensorboard` package's own writer
/// makes of the same events (Scripts/goldens/make_tensorboard_goldens.py), whose reader finds every
/// scalar, the image and the restart in them (read_back.json).
@Suite struct EventFileTests {
  static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/tensorboard")

  @Test func eventsAreTheBytesTensorBoardWrites() throws {
    let events = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folder.appendingPathComponent("events.json"))) as? [[String: Any]])
    let png = [UInt8](try Data(contentsOf: Self.folder.appendingPathComponent("image.png")))
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("tfevents-\(UUID())")
    defer { if ProcessInfo.processInfo.environment["KEEP_TFEVENTS"] == nil { try? FileManager.default.removeItem(at: output) } }
    var file: EventFile?
    for event in events {
      let wallTime = event["wall_time"] as! Double
      switch event["kind"] as! String {
      case "version": file = try EventFile(folder: output, wallTime: wallTime, name: "ours.tfevents")
      case "scalar": try file!.scalar(event["tag"] as! String, event["value"] as! Double, step: event["step"] as! Int, wallTime: wallTime)
      case "image":
        try file!.image(
          event["tag"] as! String, png: png, width: event["width"] as! Int, height: event["height"] as! Int, step: event["step"] as! Int,
          wallTime: wallTime)
      default: try file!.restart(atStep: event["step"] as! Int, wallTime: wallTime)
      }
    }
    try file!.flush()
    let ours = try Data(contentsOf: output.appendingPathComponent("ours.tfevents"))
    let reference = try Data(contentsOf: Self.folder.appendingPathComponent("reference.tfevents"))
    #expect(ours.count == reference.count && ours == reference, "\(ours.count) vs \(reference.count) bytes")
    // What tensorboard read back from those bytes: every scalar with its step and value.
    let readBack = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folder.appendingPathComponent("read_back.json"))) as? [String: Any])
    let scalars = try #require(readBack["scalars"] as? [[String: Any]])
    let written = events.filter { $0["kind"] as? String == "scalar" }
    #expect(scalars.count == written.count)
    for (found, event) in zip(scalars, written) {
      #expect(found["tag"] as? String == event["tag"] as? String && found["step"] as? Int == event["step"] as? Int)
      #expect(Float(found["value"] as! Double) == Float(event["value"] as! Double))
    }
    #expect((readBack["images"] as? [[String: Any]])?.first?["png_bytes"] as? Int == png.count)
    #expect(readBack["restarts"] as? [Int] == [20])
  }

  @Test func checksumsAreCRC32CMasked() {
    // CRC-32C of "123456789" is 0xE3069283 (the standard check value).
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    let crc: UInt32 = 0xE306_9283
    #expect(CRC32C.masked(Array("123456789".utf8)) == ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8)
  }

  /// A file a killed process left with half a record is cut back to its whole records and continued.
  @Test func aContinuedFileDropsACutOffRecordAndReadsWhole() throws {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("tfevents-continue-\(UUID())")
    defer { try? FileManager.default.removeItem(at: output) }
    var file: EventFile? = try EventFile(folder: output, wallTime: 1, name: "run.tfevents")
    try file?.scalar("a", 1, step: 1, wallTime: 1)
    try file?.scalar("a", 2, step: 2, wallTime: 2)
    file = nil
    let url = output.appendingPathComponent("run.tfevents")
    let whole = try Data(contentsOf: url)
    let handle = try FileHandle(forWritingTo: url)
    try handle.seekToEnd()
    try handle.write(contentsOf: whole.suffix(20))  // a torn record
    try handle.close()
    #expect(throws: (any Error).self) { try EventFile.records(at: url) }
    file = try EventFile(continuing: url)
    try file?.restart(atStep: 2, wallTime: 3)
    try file?.scalar("a", 3, step: 2, wallTime: 3)
    file = nil
    let records = try EventFile.records(at: url)
    #expect(records.count == 5, "version, two scalars, the restart, the new scalar")
    #expect(try Data(contentsOf: url).prefix(whole.count) == whole)
  }
}
