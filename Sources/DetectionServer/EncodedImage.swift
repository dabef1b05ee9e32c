import Foundation

/// What a request's body says about its image before it is decoded: the format and the pixel size
/// from the header, so that a huge image (a decompression bomb) is refused before any memory is spent
/// on its pixels.
enum EncodedImage {
  enum Format: String { case jpeg, png }

  /// The format and (width, height) from a JPEG's frame header or a PNG's IHDR chunk; nil when the
  /// bytes are neither, or their header is cut short.
  static func header(of data: [UInt8]) -> (format: Format, width: Int, height: Int)? {
    if data.count >= 24, data[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
      return (.png, bigEndian(data, 16, 4), bigEndian(data, 20, 4))
    }
    guard data.count >= 4, data[0] == 0xFF, data[1] == 0xD8 else { return nil }
    var offset = 2
    while offset + 4 <= data.count {
      guard data[offset] == 0xFF else { return nil }
      let marker = data[offset + 1]
      if marker == 0xFF {  // fill bytes before a marker
        offset += 1
        continue
      }
      if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) {  // markers without a length
        offset += 2
        continue
      }
      let length = bigEndian(data, offset + 2, 2)
      // SOF0–SOF15 carry the frame's size; C4 (Huffman tables), C8 and CC (arithmetic coding) do not.
      if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) {
        guard offset + 9 <= data.count else { return nil }
        return (.jpeg, bigEndian(data, offset + 7, 2), bigEndian(data, offset + 5, 2))
      }
      guard length >= 2 else { return nil }
      offset += 2 + length
    }
    return nil
  }

  private static func bigEndian(_ data: [UInt8], _ offset: Int, _ count: Int) -> Int {
    data[offset..<(offset + count)].reduce(0) { $0 << 8 | Int($1) }
  }
}

/// The image part of a `multipart/form-data` body: the part named `image`, or else the only part.
enum MultipartImage {
  /// The boundary of a `multipart/form-data; boundary=...` content type, or nil for any other type.
  static func boundary(ofContentType contentType: String) -> String? {
    let fields = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
    guard let type = fields.first, type.lowercased() == "multipart/form-data" else { return nil }
    for field in fields.dropFirst() where field.lowercased().hasPrefix("boundary=") {
      var value = String(field.dropFirst("boundary=".count))
      if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
      return value.isEmpty ? nil : value
    }
    return nil
  }

  /// The bytes of the image part; throws a 400 naming what is wrong with the body.
  static func image(in body: [UInt8], boundary: String) throws -> [UInt8] {
    let delimiter = Array(("--" + boundary).utf8)
    var parts: [(name: String?, bytes: ArraySlice<UInt8>)] = []
    var start = find(delimiter, in: body, from: 0)
    guard var current = start else { throw ServeError.badRequest("bad_multipart", "the multipart body holds no part with its boundary \(boundary)") }
    while true {
      let afterDelimiter = current + delimiter.count
      if body[afterDelimiter...].starts(with: Array("--".utf8)) { break }  // the closing delimiter
      guard let headersEnd = find(Array("\r\n\r\n".utf8), in: body, from: afterDelimiter) else {
        throw ServeError.badRequest("bad_multipart", "a multipart part has no end to its headers")
      }
      let headers = String(decoding: body[afterDelimiter..<headersEnd], as: UTF8.self)
      let contentStart = headersEnd + 4
      guard let next = find(Array("\r\n".utf8) + delimiter, in: body, from: contentStart) else {
        throw ServeError.badRequest("bad_multipart", "the multipart body ends before its closing boundary")
      }
      parts.append((name(in: headers), body[contentStart..<next]))
      current = next + 2
      start = current
    }
    if let named = parts.first(where: { $0.name == "image" }) { return Array(named.bytes) }
    guard parts.count == 1 else {
      throw ServeError.badRequest(
        "bad_multipart", "the multipart body has \(parts.count) parts and none named \"image\"; send the image as the part named image")
    }
    return Array(parts[0].bytes)
  }

  /// `name="..."` of a part's Content-Disposition header.
  private static func name(in headers: String) -> String? {
    for line in headers.split(separator: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
      for field in line.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where field.hasPrefix("name=") {
        return String(field.dropFirst("name=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
      }
    }
    return nil
  }

  private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
    guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
    var index = start
    while index <= haystack.count - needle.count {
      if haystack[index] == needle[0] && haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
      index += 1
    }
    return nil
  }
}
