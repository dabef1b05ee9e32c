import CImageCodecs
import Foundation

/// An 8-bit RGB image in memory: `pixels` row-major, 3 bytes per pixel.
public struct Image: Sendable, Equatable {
  public var width: Int
  public var height: Int
  public var pixels: [UInt8]

  public init(width: Int, height: Int, pixels: [UInt8]) {
    precondition(pixels.count == width * height * 3, "Image: \(pixels.count) bytes for \(width)x\(height) RGB")
    self.width = width
    self.height = height
    self.pixels = pixels
  }

  /// A blank image of one colour.
  public init(width: Int, height: Int, color: RGB = RGB(0, 0, 0)) {
    self.width = width
    self.height = height
    pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { buffer, count in
      for index in 0..<(width * height) {
        buffer[3 * index] = color.red
        buffer[3 * index + 1] = color.green
        buffer[3 * index + 2] = color.blue
      }
      count = width * height * 3
    }
  }

  public subscript(x: Int, y: Int) -> RGB {
    get {
      let offset = 3 * (y * width + x)
      return RGB(pixels[offset], pixels[offset + 1], pixels[offset + 2])
    }
    set {
      let offset = 3 * (y * width + x)
      pixels[offset] = newValue.red
      pixels[offset + 1] = newValue.green
      pixels[offset + 2] = newValue.blue
    }
  }
}

/// An 8-bit colour.
public struct RGB: Sendable, Hashable {
  public var red: UInt8
  public var green: UInt8
  public var blue: UInt8
  public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) {
    self.red = red
    self.green = green
    self.blue = blue
  }
}

/// Why an image could not be read or written; names the file.
public struct ImageError: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let problem: String
  public var description: String { "\(path): \(problem)" }
}

extension Image {
  /// Decodes a JPEG or PNG file (by its contents, not its name) to RGB, applying EXIF orientation.
  public init(contentsOf url: URL) throws {
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw ImageError(path: url.path, problem: "cannot be read (\(error.localizedDescription))")
    }
    try self.init(encoded: data, path: url.path)
  }

  /// Decodes JPEG or PNG bytes; `path` names the source in errors.
  public init(encoded data: Data, path: String = "<memory>") throws {
    guard !data.isEmpty else { throw ImageError(path: path, problem: "is empty (0 bytes); it is not an image") }
    let isJPEG = data.starts(with: [0xFF, 0xD8, 0xFF])
    let isPNG = data.starts(with: [0x89, 0x50, 0x4E, 0x47])
    guard isJPEG || isPNG else {
      throw ImageError(
        path: path,
        problem:
          "is neither a JPEG nor a PNG file (its first bytes are \(data.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")))"
      )
    }
    var decoded = cic_image()
    var message = [CChar](repeating: 0, count: Int(CIC_ERROR_CAPACITY))
    let status = data.withUnsafeBytes { bytes in
      message.withUnsafeMutableBufferPointer { text in
        isJPEG
          ? cic_decode_jpeg(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, &decoded, text.baseAddress)
          : cic_decode_png(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, &decoded, text.baseAddress)
      }
    }
    guard status == 0, let pixels = decoded.pixels else {
      let reason = cString(message)
      throw ImageError(
        path: path, problem: "is a corrupt or truncated \(isJPEG ? "JPEG" : "PNG") file (\(reason.isEmpty ? "decoding failed" : reason))")
    }
    defer { cic_free(pixels) }
    guard decoded.width > 0 && decoded.height > 0 else { throw ImageError(path: path, problem: "has zero width or height") }
    let count = Int(decoded.width) * Int(decoded.height) * 3
    self.init(width: Int(decoded.width), height: Int(decoded.height), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
    self = oriented(exifOrientation: Int(decoded.orientation))
  }

  /// JPEG bytes at `quality` (1-100).
  public func jpegData(quality: Int = 90) throws -> Data {
    try encode { out, size, error in
      cic_encode_jpeg(pixels, Int32(width), Int32(height), Int32(Swift.max(1, Swift.min(100, quality))), out, size, error)
    }
  }

  public func pngData() throws -> Data {
    try encode { out, size, error in cic_encode_png(pixels, Int32(width), Int32(height), 3, out, size, error) }
  }

  /// Writes JPEG or PNG by the file's extension (`.jpg`, `.jpeg`, `.png`), atomically.
  public func write(to url: URL, jpegQuality: Int = 90) throws {
    let data: Data
    switch url.pathExtension.lowercased() {
    case "jpg", "jpeg": data = try jpegData(quality: jpegQuality)
    case "png": data = try pngData()
    default: throw ImageError(path: url.path, problem: "has extension '\(url.pathExtension)'; use .jpg, .jpeg or .png")
    }
    do {
      try data.write(to: url, options: .atomic)
    } catch {
      throw ImageError(path: url.path, problem: "cannot be written (\(error.localizedDescription))")
    }
  }

  private func encode(
    _ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>) -> Int32
  )
    throws -> Data
  {
    var out: UnsafeMutablePointer<UInt8>?
    var size = 0
    var message = [CChar](repeating: 0, count: Int(CIC_ERROR_CAPACITY))
    let status = message.withUnsafeMutableBufferPointer { body(&out, &size, $0.baseAddress!) }
    guard status == 0, let out else { throw ImageError(path: "<encoder>", problem: cString(message)) }
    defer { cic_free(out) }
    return Data(bytes: out, count: size)
  }
}

/// The text of a NUL-terminated C buffer.
func cString(_ buffer: [CChar]) -> String {
  String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
