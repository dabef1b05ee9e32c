import COCO
import Detectors
import Foundation
import Testing
import Torch
import TorchTestSupport
import Training
import Detection

/// Adversarial values for flags and config fields, and mutated files for every reader, against the
/// real `detr` process: each run exits 0, or with one error message (no trap, no crash dump, no usage
/// text), and leaves every input file as it was. Bounded: a fixed, seeded set of cases.
@Suite struct FuzzTests {
  static let values = ["-1", "0", "nan", "inf", "-inf", "1e308", "abc", "", "99999999999999999999", "0.5", "3"]

  struct Fixture {
    let root: URL
    let images: URL
    let train: URL
    let val: URL
    let config: URL
    let weights: URL
    var inputs: [URL] { [train, val, config] + ((try? FileManager.default.contentsOfDirectory(at: images, includingPropertiesForKeys: nil)) ?? []) }
  }

  static func fixture() throws -> Fixture {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(UUID())")
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 8, size: 64, seed: 1)
    var config = DETRConfig()
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
    config.transformer = TransformerSettings(hiddenDim: 32, heads: 4, encoderLayers: 1, decoderLayers: 1, feedForwardDim: 32, dropout: 0, queries: 5)
    config.classCount = 6
    let configFile = root.appendingPathComponent("tiny.json")
    try JSONEncoder().encode(config).write(to: configFile)
    let dataset = try DetectionDataset(
      annotationsFile: root.appendingPathComponent("data/annotations/train.json"), imageDirectory: root.appendingPathComponent("data/images"))
    let weights = root.appendingPathComponent("weights")
    try DetectorCheckpoint.save(withSeededGenerator(0) { DETRModel(config: config) }, categories: dataset.categories, to: weights)
    return Fixture(
      root: root, images: root.appendingPathComponent("data/images"), train: root.appendingPathComponent("data/annotations/train.json"),
      val: root.appendingPathComponent("data/annotations/val.json"), config: configFile, weights: weights)
  }

  static func hashes(_ files: [URL]) -> [String: Data] {
    Dictionary(uniqueKeysWithValues: files.compactMap { file in (try? Data(contentsOf: file)).map { (file.path, $0) } })
  }

  /// Runs `detr` in `folder` with HOME there too, so that nothing a case writes by a relative path or
  /// into a cache lands outside the fixture.
  static func detr(_ arguments: [String], in folder: URL?) throws -> (status: Int32, output: String) {
    try ConvertCommandTests.detr(arguments, in: folder, environment: folder.map { ["HOME": $0.path] } ?? [:])
  }

  /// Runs one case and checks the outcome; returns whether it failed cleanly (for counting).
  @discardableResult
  static func check(_ arguments: [String], inputs: [URL], in folder: URL? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
    let before = hashes(inputs)
    let result = try detr(arguments, in: folder)
    for marker in ["Fatal error", "Program crashed", "Backtrac", "terminate called", "Usage:", "Exception raised from", "frame #"] {
      #expect(!result.output.contains(marker), "\(arguments): \(result.output.prefix(600))", sourceLocation: sourceLocation)
    }
    #expect([0, 1, 64].contains(result.status), "\(arguments) exited \(result.status)", sourceLocation: sourceLocation)
    if result.status != 0 {
      #expect(result.output.contains("error: "), "\(arguments): \(result.output.prefix(600))", sourceLocation: sourceLocation)
      let errorLines = result.output.split(separator: "\n").filter { $0.hasPrefix("error:") }
      #expect(errorLines.count == 1, "\(arguments): one error line, got \(errorLines)", sourceLocation: sourceLocation)
    }
    #expect(hashes(inputs) == before, "\(arguments) changed an input file", sourceLocation: sourceLocation)
    return result.status != 0
  }

  /// Every option of every command (read from the tool's own description, so none is missed when one
  /// is added), three seeded adversarial values each, on a base command line that does little work.
  @Test func adversarialValuesForEveryFlagOfEveryCommand() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    let pth = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/official_pth/detr/checkpoint.pth")
    let bases: [String: [String]] = [
      "train": [
        "train", "--model", "detr", "--config", f.config.path, "--data", f.images.path, "--train-annotations", f.train.path, "--image-scale",
        "0.08", "--epochs", "1", "--max-iterations", "1", "--batch-size", "2",
      ],
      "predict": ["predict", "--weights", f.weights.path, f.images.path, "--size", "64", "--max-size", "64"],
      "serve": ["serve", "--weights", f.weights.path, "--dry-run", "--size", "64", "--max-size", "64"],
      "evaluate": ["evaluate", "--annotations", f.val.path, "--weights", f.weights.path, "--images", f.images.path, "--image-scale", "0.08"],
      "benchmark": ["benchmark", "--config", f.config.path, "--model", "detr", "--image-size", "64", "--iterations", "1"],
      "data synthesize": ["data", "synthesize", "--images", "8", "--size", "64"],
      "data inspect": ["data", "inspect", "--annotations", f.val.path, "--images", f.images.path],
      "demo": ["demo", "--images", "16", "--size", "64", "--epochs", "1", "--show", "1"],
      "check": ["check", "--steps", "5"],
      "check-device": ["check-device", "--device", "cpu", "--models", "detr"],
      "convert": ["convert", pth.path, "--family", "detr", "--preset", "small"],
      "pretrain-backbone": [
        "pretrain-backbone", "--model", "detr", "--config", f.config.path, "--images", "10", "--image-size", "64", "--crop-size", "16",
        "--epochs", "1", "--batch-size", "4", "--output", f.root.appendingPathComponent("backbone.safetensors").path,
      ],
    ]
    // Commands that write somewhere get a fresh --output per case (unless the case is --output itself).
    let writes: Set<String> = ["train", "data synthesize", "demo", "convert"]
    let help = try JSONSerialization.jsonObject(with: Data(try Self.detr(["--experimental-dump-help"], in: nil).output.utf8)) as? [String: Any]
    var options: [(command: String, flag: String)] = []
    func walk(_ command: [String: Any], path: [String]) {
      for argument in command["arguments"] as? [[String: Any]] ?? [] where argument["kind"] as? String == "option" {
        for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
          options.append((path.joined(separator: " "), "--" + (name["name"] as? String ?? "")))
        }
      }
      for sub in command["subcommands"] as? [[String: Any]] ?? [] { walk(sub, path: path + [sub["commandName"] as? String ?? ""]) }
    }
    walk(try #require(help?["command"] as? [String: Any]), path: [])
    let covered = Set(options.map(\.command))
    #expect(covered == Set(bases.keys), "a base command line for every command with options: \(covered.symmetricDifference(bases.keys))")
    #expect(options.count >= 80, "\(options.count) options")

    var generator = SeededRandom(seed: 21, stream: 0, item: 0)
    var cases = 0
    for (command, flag) in options {
      let base = try #require(bases[command])
      for _ in 0..<3 {
        let value = Self.values[generator.integer(0, (Self.values.count - 1))]
        var arguments = base + [flag, value]
        if writes.contains(command) && flag != "--output" { arguments += ["--output", f.root.appendingPathComponent("out-\(cases)").path] }
        try Self.check(arguments, inputs: f.inputs + [pth], in: f.root)
        cases += 1
      }
    }
    print("flag fuzz: \(cases) cases over \(options.count) options of \(covered.count) commands")
  }

  @Test func adversarialConfigFields() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    let fields = [
      "transformer.hidden_dim", "transformer.heads", "transformer.encoder_layers", "transformer.decoder_layers", "transformer.feed_forward_dim",
      "transformer.dropout", "transformer.queries", "transformer.decoder_heads", "backbone.stem_channels", "backbone.stage_channels",
      "backbone.blocks_per_stage", "class_count", "no_object_weight", "loss.class_cost",
    ]
    var generator = SeededRandom(seed: 22, stream: 0, item: 0)
    var cases = 0
    for field in fields {
      for _ in 0..<2 {
        let value = (Self.values + ["[1,2]", "[-1,0,1,2]", "true", "{}"])[generator.integer(0, (Self.values.count + 3))]
        try Self.check(
          [
            "train", "--model", "detr", "--config", f.config.path, "--data", f.images.path, "--train-annotations", f.train.path,
            "--image-scale", "0.08", "--epochs", "1", "--max-iterations", "1", "--set", "\(field)=\(value)", "--output",
            f.root.appendingPathComponent("set-\(cases)").path,
          ], inputs: f.inputs)
        cases += 1
      }
    }
    #expect(cases == fields.count * 2)
  }

  @Test func mutatedFilesForEveryReader() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    var generator = SeededRandom(seed: 23, stream: 0, item: 0)
    func mutated(_ source: URL, into name: String) throws -> URL {
      var bytes = [UInt8](try Data(contentsOf: source))
      switch generator.integer(0, 2) {
      case 0: bytes = Array(bytes.prefix(generator.integer(0, (bytes.count - 1))))
      case 1: for _ in 0..<4 { bytes[generator.integer(0, (bytes.count - 1))] = UInt8(generator.integer(0, 255)) }
      default: bytes = (0..<64).map { _ in UInt8(generator.integer(0, 255)) }
      }
      let url = f.root.appendingPathComponent("mutated/\(name)")
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(bytes).write(to: url)
      return url
    }
    let anImage = try FileManager.default.contentsOfDirectory(at: f.images, includingPropertiesForKeys: nil).sorted { $0.path < $1.path }[0]
    let pth = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/official_pth/detr/checkpoint.pth")
    var cases = 0
    for round in 0..<4 {
      let annotations = try mutated(f.val, into: "val-\(round).json")
      try Self.check(["data", "inspect", "--annotations", annotations.path, "--images", f.images.path], inputs: f.inputs + [annotations])
      try Self.check(["evaluate", "--annotations", f.val.path, "--detections", annotations.path], inputs: f.inputs + [annotations])
      let image = try mutated(anImage, into: "image-\(round).jpg")
      try Self.check(["predict", "--weights", f.weights.path, image.path, "--size", "64", "--max-size", "64"], inputs: f.inputs + [image])
      let checkpoint = f.root.appendingPathComponent("mutated/checkpoint-\(round)")
      try? FileManager.default.removeItem(at: checkpoint)
      try FileManager.default.copyItem(at: f.weights, to: checkpoint)
      let part = round % 2 == 0 ? "config.json" : "model.safetensors"
      let broken = try mutated(checkpoint.appendingPathComponent(part), into: "part-\(round)")
      try FileManager.default.removeItem(at: checkpoint.appendingPathComponent(part))
      try FileManager.default.copyItem(at: broken, to: checkpoint.appendingPathComponent(part))
      try Self.check(["predict", "--weights", checkpoint.path, anImage.path, "--size", "64", "--max-size", "64"], inputs: f.inputs)
      let file = try mutated(pth, into: "checkpoint-\(round).pth")
      try Self.check(
        ["convert", file.path, "--family", "detr", "--output", f.root.appendingPathComponent("converted-\(round)").path], inputs: f.inputs + [file])
      cases += 5
    }
    #expect(cases == 20)
  }
}

extension FuzzTests {
  /// The smallest image `benchmark` accepts (32 px) has fewer tokens than the two-stage families have
  /// queries: their proposals repeat the ranking instead of failing in top-k.
  @Test(arguments: [["deformable-detr", "--set", "two_stage=true", "--set", "box_refinement=true"], ["dino"], ["focus-detr"]])
  func twoStageFamiliesRunOnTheSmallestImages(model: [String]) throws {
    let result = try ConvertCommandTests.detr(["benchmark", "--model"] + model + ["--preset", "small", "--image-size", "32", "--iterations", "1"])
    #expect(result.status == 0 && result.output.contains("images/s"), "\(result.output.suffix(600))")
  }

  @Test func aShortRankingRepeats() {
    let scores = Tensor([0.1, 0.9, 0.5, 0.3, 0.2, 0.8] as [Float], shape: [2, 3])
    #expect(scores.topIndicesRepeatingRanking(2).asArray(Int.self) == [1, 2, 2, 0])
    #expect(scores.topIndicesRepeatingRanking(5).asArray(Int.self) == [1, 2, 0, 1, 2, 2, 0, 1, 2, 0])
  }
}

extension FuzzTests {
  /// A size that cannot fit (a 64-image batch of 20000-pixel images) is refused before any work, with
  /// the estimate's parts and the memory available.
  @Test func impossibleSizesAreRefusedWithTheEstimate() throws {
    let result = try ConvertCommandTests.detr([
      "benchmark", "--model", "detr", "--preset", "small", "--image-size", "20000", "--batch-size", "64", "--iterations", "1",
    ])
    #expect(result.status == 1, "\(result.output.suffix(400))")
    #expect(result.output.contains("error: batch 64 at 20000×20000 needs at least") && result.output.contains("encoder attention"))
    #expect(result.output.contains("this machine has available: lower --image-size or --batch-size"), "\(result.output.suffix(400))")
  }

  /// The estimate is a lower bound: a real pass's peak resident memory (measured by `detr benchmark`,
  /// a process of its own) is above it, for global and deformable attention, inference and training.
  @Test(arguments: [["detr"], ["deformable-detr"], ["detr", "--train"], ["deformable-detr", "--train"]])
  func theEstimateIsBelowWhatAPassTakes(model: [String]) throws {
    let json = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID()).json")
    defer { try? FileManager.default.removeItem(at: json) }
    let result = try ConvertCommandTests.detr(
      ["benchmark", "--model"] + model + ["--preset", "small", "--image-size", "384", "--image-width", "512", "--batch-size", "2", "--iterations", "1", "--json", json.path])
    #expect(result.status == 0, "\(result.output.suffix(300))")
    let report = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any] ?? [:]
    let bound = try #require(report["memory_lower_bound_mib"] as? Double)
    let peak = try #require(report["peak_rss_mib"] as? Double)
    #expect(bound > 20 && bound <= peak, "\(model): bound \(bound) MiB, peak \(peak) MiB")
  }

  /// Past the estimate, running out of memory is an allocation failure (the data memory is limited to
  /// what is available; here a lower limit is set first) reported in one line with the size asked for,
  /// not a trap and not a SIGKILL from the kernel.
  @Test func outOfMemoryIsReportedWithTheSizeAskedFor() throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [
      "-c", "ulimit -d 1500000; exec \"$0\" benchmark --model detr --preset small --image-size 2000 --batch-size 4 --iterations 1",
      KillAndResumeTests.detr.path,
    ]
    let pipe = Pipe()
    (process.standardOutput, process.standardError) = (pipe, pipe)
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 1 && process.terminationReason == .exit, "\(output.suffix(400))")
    #expect(output.contains("error: out of memory in Torch.") && output.contains("MiB asked for"), "\(output.suffix(400))")
    #expect(!output.contains("Program crashed") && !output.contains("Fatal error"))
  }
}
