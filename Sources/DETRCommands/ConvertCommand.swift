import ArgumentParser
import COCO
import Detectors
import Foundation
import Training

/// `detr convert`: an official `.pth` checkpoint or a transformers folder → a swift-detr checkpoint
/// folder, with no Python. The `.pth` is read as data only (tensors, containers, numbers, strings).
struct ConvertCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "convert",
    abstract: "Convert an official PyTorch checkpoint (.pth) or a transformers folder into a swift-detr checkpoint folder.",
    discussion: """
      Official checkpoints: facebookresearch/detr, Atten4Vis/ConditionalDETR, fundamentalvision/Deformable-DETR, \
      gaopengcuhk/SMCA-DETR, detrex's DINO and Focus-DETR, torchvision's RetinaNet, MMDetection RetinaNets (the DSA \
      authors' included). The architecture is a preset (by default the one the checkpoint's keys suggest) or, for \
      another shape or class count, a config file (e.g. a run folder's config.json). Nothing in the .pth runs: an \
      object other than tensors and containers is refused.

        detr convert detr-r50-e632da11.pth --family detr --output weights/detr-r50
        detr convert deformable_detr.pth --family deformable-detr --output weights
        detr convert hf-deformable-detr/ --output weights/deformable-hf
      """)

  @Argument(help: "A .pth file, or a transformers folder (config.json + model.safetensors).")
  var source: String

  @Option(help: "The checkpoint's family (needed for a .pth): \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).")
  var family: ModelKind?

  @Option(help: "The architecture the checkpoint was trained with, a preset of the family.")
  var preset: String?

  @Option(help: "The architecture as a config JSON of the family (a run folder's config.json works).")
  var config: String?

  @Option(
    help: ArgumentHelp(
      "The categories the checkpoint was trained on: a COCO annotations file (or a JSON list of {id, name}); matched by name when the checkpoint names its classes (MMDetection), else in id order.",
      valueName: "FILE"))
  var categories: String?

  @Option(help: "The folder to write; must not exist yet, or be empty.")
  var output: String

  @Flag(help: "Replace an existing checkpoint folder at --output.")
  var overwrite = false

  func validate() throws {
    if preset != nil && config != nil { throw ValidationError("give either --preset or --config, not both") }
    if let preset, let family { try ModelChoice.checkPreset(preset, of: family) }
  }

  func run() throws {
    let sourceURL = URL(fileURLWithPath: source).standardizedFileURL
    let outputURL = URL(fileURLWithPath: output).standardizedFileURL
    if outputURL.path == sourceURL.path || sourceURL.path.hasPrefix(outputURL.path + "/") {
      throw ValidationError("--output \(output) would overwrite the source \(source); choose another folder")
    }
    let manager = FileManager.default
    var isFolder: ObjCBool = false
    if manager.fileExists(atPath: outputURL.path, isDirectory: &isFolder) {
      guard isFolder.boolValue else { throw ValidationError("--output \(output) is a file; give a folder to create") }
      let contents = (try? manager.contentsOfDirectory(atPath: outputURL.path)) ?? []
      let isCheckpoint = contents.contains("config.json") && contents.contains("model.safetensors")
      if !contents.isEmpty && !(overwrite && isCheckpoint) {
        throw ValidationError(
          "--output \(output) already holds files; give an empty or new folder" + (isCheckpoint ? ", or --overwrite to replace the checkpoint there" : ""))
      }
    }
    var configData: Data?
    if let config {
      do {
        configData = try Data(contentsOf: URL(fileURLWithPath: config))
      } catch {
        throw CommandFailure("--config \(config) cannot be read (\(error.localizedDescription))")
      }
    }
    let report = try CheckpointConversion.convert(
      sourceURL, family: family, preset: preset, configJSON: configData, configName: config, categories: try categories.map(Self.readCategories),
      to: outputURL)
    print("converted \(source) (\(report.layout) layout) → \(output): \(report.family.rawValue), \(report.architecture), \(report.loaded) tensors, \(report.categories.count) classes")
    for note in report.notes { print("note: \(note)") }
    if !report.unused.isEmpty {
      let shown = report.unused.prefix(10).joined(separator: ", ")
      print("not used by the model (\(report.unused.count)): \(shown)\(report.unused.count > 10 ? ", ..." : "")")
    }
  }

  /// The categories of a COCO annotations file (its `categories`) or of a JSON list of {id, name}.
  static func readCategories(_ path: String) throws -> [CategoryMap.Entry] {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw CommandFailure("--categories \(path) cannot be read (\(error.localizedDescription))")
    }
    let object = try? JSONSerialization.jsonObject(with: data)
    let list = (object as? [String: Any])?["categories"] ?? object
    guard let list = list as? [Any], !list.isEmpty,
      let entries = try? JSONDecoder().decode([CategoryMap.Entry].self, from: JSONSerialization.data(withJSONObject: list)),
      Set(entries.map(\.id)).count == entries.count
    else {
      throw CommandFailure(
        "--categories \(path) holds no categories: give a COCO annotations file (with \"categories\": [{\"id\", \"name\"}, ...], distinct ids) or such a list")
    }
    return entries
  }
}
