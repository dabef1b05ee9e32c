import Foundation

/// A TensorBoard event file (`events.out.tfevents.<time>.<host>`): TensorFlow's record format (each
/// record a little-endian 64-bit length, its masked CRC-32C, the data and the data's masked CRC-32C)
/// holding `Event` messages of TensorBoard's event.proto and summary.proto, so that
/// `tensorboard --logdir runs/` shows a run's scalars and images. Written by hand rather than with
/// generated protocol code: these few messages do not justify a dependency built on every CI run.
public final class EventFile {
  public let url: URL
  private let handle: FileHandle

  /// Creates a new event file in `folder` and writes the file-version event. `wallTime` and `name`
  /// are for tests; by default the current time and TensorFlow's naming.
  public init(folder: URL, wallTime: Double = Date().timeIntervalSince1970, name: String? = nil) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let host = ProcessInfo.processInfo.hostName
    url = folder.appendingPathComponent(name ?? "events.out.tfevents.\(Int(wallTime)).\(host).\(getpid())")
    guard FileManager.default.createFile(atPath: url.path, contents: nil), let handle = FileHandle(forWritingAtPath: url.path) else {
      throw TrainingError("cannot create the TensorBoard event file \(url.path)")
    }
    self.handle = handle
    var event = ProtobufMessage()
    event.double(1, wallTime)
    event.string(3, "brain.Event:2")
    try write(event)
  }

  /// Continues the event file at `url`: what a killed run left after its last whole record is cut
  /// off, and new records follow. A resumed run writes into its own file this way rather than piling up
  /// one file per restart (its restart event tells TensorBoard which steps to drop).
  public init(continuing url: URL) throws {
    self.url = url
    let bytes = [UInt8]((try? Data(contentsOf: url)) ?? Data())
    guard let handle = FileHandle(forUpdatingAtPath: url.path) else { throw TrainingError("cannot open the TensorBoard event file \(url.path)") }
    self.handle = handle
    do {
      try handle.truncate(atOffset: UInt64(Self.wholeRecordsLength(bytes)))
      try handle.seekToEnd()
    } catch {
      throw TrainingError("cannot continue the TensorBoard event file \(url.path): \(error.localizedDescription)")
    }
  }

  /// The length of the leading run of whole, checksum-valid records in `bytes`.
  static func wholeRecordsLength(_ bytes: [UInt8]) -> Int {
    func little<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
      bytes[offset..<offset + MemoryLayout<T>.size].reversed().reduce(T(0)) { $0 << 8 | T($1) }
    }
    var position = 0
    while bytes.count - position >= 16 {
      let length = little(UInt64.self, at: position)
      guard little(UInt32.self, at: position + 8) == CRC32C.masked(bytes[position..<position + 8]),
        length <= UInt64(bytes.count - position - 16)
      else { break }
      let end = position + 12 + Int(length)
      guard little(UInt32.self, at: end) == CRC32C.masked(bytes[(position + 12)..<end]) else { break }
      position = end + 4
    }
    return position
  }

  deinit { try? handle.close() }

  /// A scalar (`Summary.Value.simple_value`).
  public func scalar(_ tag: String, _ value: Double, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
    var entry = ProtobufMessage()
    entry.string(1, tag)
    entry.float(2, Float(value), inOneof: true)
    try write(summary: entry, step: step, wallTime: wallTime)
  }

  /// An image (`Summary.Image`, PNG bytes, 3 channels).
  public func image(_ tag: String, png: [UInt8], width: Int, height: Int, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
    var image = ProtobufMessage()
    image.integer(1, height)
    image.integer(2, width)
    image.integer(3, 3)
    image.bytes(4, png)
    var entry = ProtobufMessage()
    entry.string(1, tag)
    entry.message(4, image)
    try write(summary: entry, step: step, wallTime: wallTime)
  }

  /// A restart at `step` (`SessionLog` START): TensorBoard drops what earlier files logged at this
  /// step or later, so that the steps a killed run logged after its last checkpoint do not show twice.
  public func restart(atStep step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
    var log = ProtobufMessage()
    log.integer(1, 1)  // SessionStatus.START
    var event = ProtobufMessage()
    event.double(1, wallTime)
    event.integer(2, step)
    event.message(7, log)
    try write(event)
  }

  public func flush() throws { try handle.synchronize() }

  /// The records of an event file (each an encoded `Event`), their checksums verified.
  public static func records(at url: URL) throws -> [[UInt8]] {
    let bytes = [UInt8](try Data(contentsOf: url))
    var records: [[UInt8]] = []
    var position = 0
    func little<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
      bytes[offset..<offset + MemoryLayout<T>.size].reversed().reduce(T(0)) { $0 << 8 | T($1) }
    }
    while position < bytes.count {
      guard bytes.count - position >= 12 else { throw TrainingError("\(url.path): a record header is cut off at byte \(position)") }
      let length = Int(little(UInt64.self, at: position))
      guard little(UInt32.self, at: position + 8) == CRC32C.masked(bytes[position..<position + 8]) else {
        throw TrainingError("\(url.path): the length checksum at byte \(position) is wrong")
      }
      guard length >= 0, bytes.count - position - 16 >= length else { throw TrainingError("\(url.path): a record is cut off at byte \(position)") }
      let data = Array(bytes[position + 12..<position + 12 + length])
      guard little(UInt32.self, at: position + 12 + length) == CRC32C.masked(data) else {
        throw TrainingError("\(url.path): the data checksum of the record at byte \(position) is wrong")
      }
      records.append(data)
      position += 16 + length
    }
    return records
  }

  private func write(summary entry: ProtobufMessage, step: Int, wallTime: Double) throws {
    var summary = ProtobufMessage()
    summary.message(1, entry)
    var event = ProtobufMessage()
    event.double(1, wallTime)
    event.integer(2, step)
    event.message(5, summary)
    try write(event)
  }

  private func write(_ event: ProtobufMessage) throws {
    var length = [UInt8]()
    withUnsafeBytes(of: UInt64(event.bytes.count).littleEndian) { length.append(contentsOf: $0) }
    var record = length
    withUnsafeBytes(of: CRC32C.masked(length).littleEndian) { record.append(contentsOf: $0) }
    record += event.bytes
    withUnsafeBytes(of: CRC32C.masked(event.bytes).littleEndian) { record.append(contentsOf: $0) }
    do {
      try handle.write(contentsOf: record)
    } catch {
      throw TrainingError("cannot write the TensorBoard event file \(url.path): \(error.localizedDescription)")
    }
  }
}
