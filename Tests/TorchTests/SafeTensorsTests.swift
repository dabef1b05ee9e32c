import Foundation
import Testing
import Torch
import TorchTestSupport

@Suite struct SafeTensorsTests {
  let referenceFile = Bundle.module.url(forResource: "Goldens/dtypes", withExtension: "safetensors")!

  @Test func readsEveryDtypeWrittenByTheReferenceLibrary() throws {
    let contents = try SafeTensors.load(contentsOf: referenceFile)
    #expect(contents.metadata["script"] == "Scripts/goldens/make_torch_goldens.py")
    let t = contents.tensors
    #expect(t["float32"]!.asArray(Float.self) == [0, 1, 2, 3, 4, 5].map { Float($0) / 3 })
    #expect(t["float32"]!.shape == [2, 3])
    #expect(t["float64"]!.asArray(Double.self) == [0, 1, 2, 3].map { Double($0) / 7 })
    #expect(t["float16"]!.dtype == .float16)
    #expect(t["float16"]!.asArray(Float.self) == [0.5, -2.25, 0.0010004043579101562])
    #expect(t["bfloat16"]!.dtype == .bfloat16)
    #expect(t["bfloat16"]!.asArray(Float.self)[0...1] == [1.5, -3.0])
    #expect(t["int64"]!.asArray(Int.self) == [-(1 << 40), 0, 1 << 40])
    #expect(t["int32"]!.asArray(Int32.self) == [-7, 8])
    #expect(t["uint8"]!.asArray(UInt8.self) == [0, 255, 17])
    #expect(t["bool"]!.asArray(Bool.self) == [true, false, true])
    #expect(t["int8"]!.asArray(Int8.self) == [-128, 127])
    #expect(t["int16"]!.asArray(Int16.self) == [-300, 300])
    #expect(t["empty"]!.shape == [0, 3])
    #expect(t["scalar"]!.shape == [] && t["scalar"]!.item(Float.self) == 2.5)
  }

  @Test func roundTripsBitExactlyAndMatchesTheReferenceBytes() throws {
    let original = try SafeTensors.load(contentsOf: referenceFile)
    let encoded = try SafeTensors.encode(original.tensors, metadata: original.metadata)
    let decoded = try SafeTensors.decode(encoded)
    #expect(decoded.metadata == original.metadata)
    for (name, tensor) in original.tensors {
      let copy = try #require(decoded.tensors[name])
      #expect(copy.dtype == tensor.dtype && copy.shape == tensor.shape, "\(name)")
      let same = copy.withUnsafeBytes { a in tensor.withUnsafeBytes { b in Array(a) == Array(b) } }
      #expect(same, "\(name) bytes")
    }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("x.safetensors")
    try SafeTensors.save(original.tensors, metadata: original.metadata, to: file)
    #expect(try SafeTensors.load(contentsOf: file).tensors.count == original.tensors.count)
  }

  /// Malformed files give a thrown error that names the problem, never a crash.
  @Test(arguments: [
    ("empty file", Data()),
    ("length only", Data([16, 0, 0, 0, 0, 0, 0, 0])),
    ("huge header length", Data([255, 255, 255, 255, 255, 255, 255, 127]) + Data("{}".utf8)),
    ("not JSON", header("this is not json")),
    ("JSON array", header("[1, 2]")),
    ("unknown dtype", header(#"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, payload: 8)),
    ("missing dtype", header(#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, payload: 4)),
    ("bad shape", header(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, payload: 4)),
    ("fractional shape", header(#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, payload: 4)),
    ("offsets past the end", header(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, payload: 8)),
    ("size mismatch", header(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, payload: 8)),
    (
      "overlap",
      header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, payload: 12)
    ),
    ("metadata not strings", header(#"{"__metadata__":{"a":1}}"#)),
  ])
  func malformedFilesThrowClearErrors(name: String, bytes: Data) {
    do {
      _ = try SafeTensors.decode(bytes, path: "bad.safetensors")
      Issue.record("\(name): decoded without an error")
    } catch let error as SafeTensorsError {
      #expect(error.description.hasPrefix("bad.safetensors: "), "\(name): \(error)")
      #expect(error.problem.count > 20, "\(name): the message explains the problem: \(error)")
    } catch {
      Issue.record("\(name): unexpected error type \(error)")
    }
  }

  @Test func truncatedReferenceFileThrows() throws {
    let bytes = try Data(contentsOf: referenceFile)
    for length in stride(from: 0, to: bytes.count, by: 37) {
      #expect(throws: SafeTensorsError.self, "truncated to \(length) bytes") { try SafeTensors.decode(bytes.prefix(length)) }
    }
  }

  @Test func missingFileNamesThePath() {
    #expect { try SafeTensors.load(contentsOf: URL(fileURLWithPath: "/nonexistent/x.safetensors")) } throws: { error in
      "\(error)".contains("/nonexistent/x.safetensors")
    }
  }
}

/// A safetensors byte string with the given header text and `payload` zero bytes.
private func header(_ json: String, payload: Int = 0) -> Data {
  let text = Data(json.utf8)
  var data = Data()
  withUnsafeBytes(of: UInt64(text.count).littleEndian) { data.append(contentsOf: $0) }
  return data + text + Data(count: payload)
}
