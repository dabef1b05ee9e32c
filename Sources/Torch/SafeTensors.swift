import Foundation

/// Why a safetensors file could not be read or written.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let problem: String
  public var description: String { "\(path): \(problem)" }
}

/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each name to
/// its dtype, shape and byte range, then the raw little-endian data. Only data is ever read: no code runs on load.
public enum SafeTensors {
  /// The tensors of a file, by name, and its `__metadata__` strings.
  public struct Contents: Sendable {
    public var tensors: [String: Tensor]
    public var metadata: [String: String]
  }

  static let dtypeNames: [String: DType] = [
    "F32": .float32, "F64": .float64, "F16": .float16, "BF16": .bfloat16, "I64": .int64, "I32": .int32, "U8": .uint8,
    "BOOL": .bool, "I8": .int8, "I16": .int16,
  ]

  /// Reads a file through a memory map. Throws `SafeTensorsError` naming the problem for a malformed file.
  public static func load(contentsOf url: URL) throws -> Contents {
    let data: Data
    do {
      data = try Data(contentsOf: url, options: .alwaysMapped)
    } catch {
      throw SafeTensorsError(path: url.path, problem: "cannot be read (\(error.localizedDescription))")
    }
    return try decode(data, path: url.path)
  }

  /// Decodes the bytes of a safetensors file; `path` only names it in errors.
  public static func decode(_ data: Data, path: String = "<memory>") throws -> Contents {
    func fail(_ problem: String) -> SafeTensorsError { SafeTensorsError(path: path, problem: problem) }
    guard data.count >= 8 else {
      throw fail("is \(data.count) bytes long, too short for a safetensors header; the file is truncated or not safetensors")
    }
    let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    guard headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
      throw fail(
        "declares a \(headerLength)-byte header but holds \(data.count - 8) bytes after the length; the file is truncated or not safetensors"
      )
    }
    let dataStart = 8 + Int(headerLength)
    let headerBytes = data.subdata(in: data.startIndex + 8..<data.startIndex + dataStart)
    guard let header = (try? JSONSerialization.jsonObject(with: headerBytes)) as? [String: Any] else {
      throw fail("has a header that is not a JSON object; the file is corrupt or not safetensors")
    }
    let payloadSize = data.count - dataStart
    var tensors: [String: Tensor] = [:]
    var metadata: [String: String] = [:]
    var ranges: [(Int, Int, String)] = []
    for (name, value) in header {
      if name == "__metadata__" {
        guard let entries = value as? [String: Any] else { throw fail("has a __metadata__ entry that is not an object of strings") }
        for (key, entry) in entries {
          guard let text = entry as? String else { throw fail("has __metadata__.\(key) that is not a string") }
          metadata[key] = text
        }
        continue
      }
      guard let entry = value as? [String: Any] else { throw fail("tensor '\(name)' has a header entry that is not an object") }
      guard let dtypeName = entry["dtype"] as? String else { throw fail("tensor '\(name)' has no dtype") }
      guard let dtype = dtypeNames[dtypeName] else {
        throw fail(
          "tensor '\(name)' has dtype \(dtypeName), which is not supported (supported: \(dtypeNames.keys.sorted().joined(separator: ", ")))"
        )
      }
      guard let shapeValues = entry["shape"] as? [Any], let shape = integers(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
        throw fail("tensor '\(name)' has a shape that is not a list of non-negative integers")
      }
      guard let offsetValues = entry["data_offsets"] as? [Any], let offsets = integers(offsetValues), offsets.count == 2 else {
        throw fail("tensor '\(name)' has data_offsets that are not two integers")
      }
      let (begin, end) = (offsets[0], offsets[1])
      let (elements, overflow) = shape.reduce((1, false)) { partial, size in
        let product = partial.0.multipliedReportingOverflow(by: size)
        return (product.partialValue, partial.1 || product.overflow)
      }
      guard !overflow, begin >= 0, end >= begin, end <= payloadSize else {
        throw fail(
          "tensor '\(name)' has data_offsets [\(begin), \(end)] outside the \(payloadSize) bytes of data; the file is truncated or corrupt")
      }
      guard end - begin == elements * dtype.byteSize else {
        throw fail("tensor '\(name)' has \(end - begin) bytes of data but shape \(shape) \(dtype) needs \(elements * dtype.byteSize)")
      }
      if end > begin { ranges.append((begin, end, name)) }
      tensors[name] = data.withUnsafeBytes { raw in
        Tensor(bytes: UnsafeRawBufferPointer(rebasing: raw[(dataStart + begin)..<(dataStart + end)]), shape: shape, dtype: dtype)
      }
    }
    ranges.sort { $0.0 < $1.0 }
    for (previous, next) in zip(ranges, ranges.dropFirst()) where next.0 < previous.1 {
      throw fail("tensors '\(previous.2)' and '\(next.2)' overlap in the data; the file is corrupt")
    }
    return Contents(tensors: tensors, metadata: metadata)
  }

  /// Writes tensors (sorted by name) and metadata to `url`, atomically: a crash leaves the old file or the new one.
  public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
    let data = try encode(tensors, metadata: metadata)
    do {
      try data.write(to: url, options: .atomic)
    } catch {
      throw SafeTensorsError(path: url.path, problem: "cannot be written (\(error.localizedDescription))")
    }
  }

  /// The bytes of a safetensors file holding `tensors`.
  public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) throws -> Data {
    let names = tensors.keys.sorted()
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var offset = 0
    var payloads: [Tensor] = []
    for name in names {
      let tensor = tensors[name]!
      guard let dtypeName = dtypeNames.first(where: { $0.value == tensor.dtype })?.key else {
        throw SafeTensorsError(path: name, problem: "has dtype \(tensor.dtype), which safetensors cannot store")
      }
      let size = tensor.elementCount * tensor.dtype.byteSize
      header[name] = ["dtype": dtypeName, "shape": tensor.shape, "data_offsets": [offset, offset + size]] as [String: Any]
      offset += size
      payloads.append(tensor)
    }
    var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
    while headerData.count % 8 != 0 { headerData.append(0x20) }
    var result = Data(capacity: 8 + headerData.count + offset)
    withUnsafeBytes(of: UInt64(headerData.count).littleEndian) { result.append(contentsOf: $0) }
    result.append(headerData)
    for tensor in payloads {
      tensor.withUnsafeBytes { result.append(contentsOf: $0) }
    }
    return result
  }

  /// The values as integers, or nil if any is not a whole number.
  private static func integers(_ values: [Any]) -> [Int]? {
    var result: [Int] = []
    for value in values {
      guard let number = value as? NSNumber, number.doubleValue == Double(number.int64Value), Swift.abs(number.doubleValue) < 1e15 else {
        return nil
      }
      result.append(number.intValue)
    }
    return result
  }
}
