import Foundation
import Testing
import Torch
import TorchTestSupport

/// PyTorch checkpoint files written by torch itself (Scripts/goldens/make_pytorch_file_goldens.py):
/// every element type, strided and shared storages, both torch.save formats, and files to refuse.
@Suite struct PyTorchFileTests {
  static let folder = Bundle.module.url(forResource: "Goldens/pytorch_files", withExtension: nil)!
  static func file(_ name: String) -> URL { folder.appendingPathComponent(name) }
  let expected = try! SafeTensors.load(contentsOf: Self.file("expected.safetensors"))

  func expectTensors(_ tensors: [String: Tensor], equal prefix: String) {
    let wanted = expected.tensors.filter { $0.key.hasPrefix(prefix + ".") }
    #expect(tensors.count == wanted.count, "\(prefix): \(tensors.keys.sorted())")
    for (key, value) in wanted {
      let name = String(key.dropFirst(prefix.count + 1))
      guard let tensor = tensors[name] else {
        Issue.record("\(prefix): \(name) missing")
        continue
      }
      #expect(tensor.dtype == value.dtype && tensor.shape == value.shape, "\(name): \(tensor.dtype) \(tensor.shape)")
      let same = tensor.withUnsafeBytes { a in value.withUnsafeBytes { b in Array(a) == Array(b) } }
      #expect(same, "\(name) bytes")
    }
  }

  @Test(arguments: ["state_dict.pth", "state_dict_legacy.pth"])
  func readsEveryElementTypeAndLayoutBitExactly(name: String) throws {
    #expect(expected.metadata["script"] == "Scripts/goldens/make_pytorch_file_goldens.py")
    let value = try PyTorchFile.load(contentsOf: Self.file(name))
    expectTensors(try PyTorchFile.stateDict(of: value, path: name), equal: "state_dict")
  }

  @Test(arguments: ["training.pth", "training_legacy.pth"])
  func readsATrainingCheckpointWithArgsAndOptimizerState(name: String) throws {
    let value = try PyTorchFile.load(contentsOf: Self.file(name))
    expectTensors(try PyTorchFile.stateDict(of: value, path: name), equal: "training")
    #expect(value["epoch"]?.integer == 3 && value["negative"]?.integer == -5)
    let args = try #require(value["args"])
    guard case .namespace = args else {
      Issue.record("args is \(args.summary)")
      return
    }
    #expect(args["backbone"]?.string == "resnet50" && args["num_queries"]?.integer == 100)
    if case .float(let rate) = args["lr"] ?? .none { #expect(rate == 1e-4) } else { Issue.record("lr") }
    if case .bool(let dilation) = args["dilation"] ?? .none { #expect(!dilation) } else { Issue.record("dilation") }
    if case .list(let nested) = args["nested"] ?? .none, case .tuple(let pair) = nested.last ?? .none {
      #expect(nested.first?.integer == 1 && pair.last?.string == "x")
    } else {
      Issue.record("nested")
    }
    // The optimizer's state is keyed by parameter index, its moments are tensors.
    if case .dict(let state) = value["optimizer"]?["state"] ?? .none {
      #expect(state.map(\.key.integer) == [0, 1])
      #expect(state[0].value["exp_avg"]?.tensor?.shape == [2, 3])
    } else {
      Issue.record("optimizer state")
    }
    #expect(value["parameter"]?.tensor?.asArray(Float.self) == [1, 1])
    if case .bytes(let bytes) = value["bytes"] ?? .none { #expect(bytes == [0, 255, 97, 98]) } else { Issue.record("bytes") }
    if case .bigInt(let digits) = value["big"] ?? .none { #expect(digits.count == 9 && digits[8] == 0x40) } else { Issue.record("big") }
  }

  @Test func aPickleThatWouldRunCodeIsRefusedAndNothingRuns() throws {
    let marker = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("swift-detr-pickle-executed")
    try? FileManager.default.removeItem(at: marker)
    #expect {
      try PyTorchFile.load(contentsOf: Self.file("runs_code.pth"))
    } throws: {
      "\($0)".contains("runs_code.pth") && ("\($0)".contains("'posix.system'") || "\($0)".contains("'os.system'")) && "\($0)".contains("refused")
    }
    #expect(!FileManager.default.fileExists(atPath: marker.path))
  }

  @Test func anObjectOfAnotherClassIsRefusedByName() throws {
    #expect {
      try PyTorchFile.load(contentsOf: Self.file("custom_object.pth"))
    } throws: {
      "\($0)".contains("custom_object.pth") && "\($0)".contains("__main__.Custom") && "\($0)".contains("refused")
    }
  }

  @Test(arguments: [
    ("not_a_checkpoint.pth", "is not a PyTorch checkpoint"), ("truncated.pth", "not a readable zip archive"),
    ("torchscript.pt", "TorchScript"), ("missing.pth", "does not exist"),
  ])
  func badFilesGetAnErrorNamingThem(name: String, message: String) throws {
    #expect {
      try PyTorchFile.load(contentsOf: Self.file(name))
    } throws: {
      "\($0)".contains(name) && "\($0)".contains(message)
    }
  }

  @Test func aValueThatIsNotAStateDictIsNamed() throws {
    let value = try PyTorchFile.load(contentsOf: Self.file("list.pth"))
    #expect {
      try PyTorchFile.stateDict(of: value, path: "list.pth")
    } throws: {
      "\($0)".contains("list.pth") && "\($0)".contains("list of 2") && "\($0)".contains("not a state dict")
    }
  }

  /// Random bytes and mutations of a real file: an error or a value, never a trap.
  @Test func mutatedFilesNeverTrap() throws {
    let original = try Data(contentsOf: Self.file("state_dict_legacy.pth"))
    let zip = try Data(contentsOf: Self.file("training.pth"))
    var generator = SplitMix(state: 20261127)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pth-fuzz-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    var errors = 0
    for index in 0..<300 {
      var bytes = [UInt8](index % 2 == 0 ? original : zip)
      switch index % 3 {
      case 0:
        for _ in 0..<(1 + index % 5) { bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
      case 1: bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator)))
      default: bytes = [0x80, 0x02] + (0..<200).map { _ in UInt8.random(in: 0...255, using: &generator) }
      }
      let url = folder.appendingPathComponent("case\(index).pth")
      try Data(bytes).write(to: url)
      do {
        let value = try PyTorchFile.load(contentsOf: url)
        _ = value.summary
      } catch let error as PyTorchFileError {
        #expect(error.description.contains("case\(index).pth"))
        errors += 1
      }
    }
    #expect(errors > 100)
  }
}

/// A fixed-seed generator, so that the mutations are the same on every run.
struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
