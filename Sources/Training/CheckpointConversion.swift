import COCO
import Detection
import Detectors
import Foundation
import Torch
import TorchNN

/// What `CheckpointConversion.convert` did: the architecture it built, the tensors it placed, and the
/// tensors of the source the model has no place for (reported, not fatal: an official training
/// checkpoint may carry heads the inference model lacks).
public struct ConversionReport: Sendable {
  public var family: ModelKind
  /// The preset, the config file, or "transformers config" the architecture came from.
  public var architecture: String
  public var loaded: Int
  public var unused: [String]
  public var categories: CategoryMap
  public var layout: String
  /// What the user should know about choices the conversion made (score fusion, batch-norm ε, category ids).
  public var notes: [String] = []
}

/// Turns the checkpoints users have into swift-detr checkpoint folders, with no Python: `.pth` files of
/// the official repositories (read by `PyTorchFile`, nothing executed) and transformers folders. The
/// result is an ordinary swift-detr folder (our keys, the full config, the category map), so loading it
/// needs no knowledge of where it came from.
///
/// Key layouts, each renamed by rules kept as data: the official DETR, Conditional DETR, Deformable
/// DETR and SMCA-DETR repositories and MMDetection (DSA-RetinaNet) use swift-detr's own keys; detrex's
/// DINO and Focus-DETR name their backbone detectron2's way and list their heads twice; torchvision's
/// RetinaNet has its own names. Categories: COCO's 91 ids (class index = category id) for the
/// DETR-family and torchvision checkpoints, COCO's 80 in id order for detrex and MMDetection, "class i"
/// for another class count (given with a config).
public enum CheckpointConversion {
  /// The RetinaNet classification outputs (anchors × classes) of torchvision's and MMDetection's layouts.
  static let retinaNetHeads = ["head.classification_head.cls_logits.weight", "bbox_head.retina_cls.weight"]
  /// The RetinaNet regression outputs (anchors × 4), in the same order.
  static let retinaNetRegressions = ["head.regression_head.bbox_reg.weight", "bbox_head.retina_reg.weight"]

  /// Converts `source` into a checkpoint folder at `output` (which must not exist yet, or be an empty folder).
  /// `preset` or `configJSON` (a family config, or a run folder's config.json) gives the architecture of a
  /// `.pth`; without either, the family's first preset. A transformers folder carries its own.
  /// Categories, first found: `categories` (e.g. the training annotations' categories, matched by name
  /// when the checkpoint names its classes), a run folder's config.json given as `configJSON`, the
  /// class names an MMDetection checkpoint keeps (`meta.CLASSES`), COCO's for COCO's class count;
  /// else "class i" with id i.
  public static func convert(
    _ source: URL, family: ModelKind?, preset: String?, configJSON: Data?, configName: String? = nil, categories: [CategoryMap.Entry]? = nil,
    to output: URL
  ) throws -> ConversionReport {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isFolder) else {
      throw CheckpointError(path: source.path, problem: "does not exist; give a .pth file or a transformers folder")
    }
    if isFolder.boolValue {
      guard preset == nil, configJSON == nil else {
        throw CheckpointError(path: source.path, problem: "is a transformers folder, which carries its own architecture; leave out --preset and --config")
      }
      let loaded = try DetectorCheckpoint.loadTransformers(source)
      if let family, family != loaded.detector.kind {
        throw CheckpointError(path: source.path, problem: "is a \(loaded.detector.kind.rawValue) checkpoint, not \(family.rawValue); check --family")
      }
      try DetectorCheckpoint.save(loaded.detector, categories: loaded.categories, to: output)
      return ConversionReport(
        family: loaded.detector.kind, architecture: "transformers config", loaded: loaded.detector.stateDict().count, unused: [],
        categories: loaded.categories, layout: "transformers")
    }
    guard let family else {
      throw CheckpointError(path: source.path, problem: "is a .pth file: name its family with --family (\(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    let path = source.path
    let file = try PyTorchFile.load(contentsOf: source)
    var tensors = try PyTorchFile.stateDict(of: file, path: path).filter { !$0.key.hasSuffix("num_batches_tracked") }
    let layout = try officialLayout(of: tensors, family: family, path: path)
    let anchorsPerLocation = family.isRetinaNet ? try retinaNetAnchorsPerLocation(of: tensors, layout: layout, path: path) : 1
    let classes = try classCount(of: tensors, family: family, layout: layout, anchorsPerLocation: anchorsPerLocation, path: path)
    let cocoClasses = layout == "detrex" || layout == "mmdetection" ? 80 : 91
    var runCategories: [CategoryMap.Entry]?

    // The architecture, with the checkpoint's class count.
    var architecture: String
    var presetName: String?
    var configObject: [String: Any]
    if let configJSON {
      guard let object = (try? JSONSerialization.jsonObject(with: configJSON)) as? [String: Any] else {
        throw CheckpointError(path: configName ?? "--config", problem: "is not a JSON object")
      }
      // A run folder's or checkpoint's config.json holds the model config under "config", its categories beside it.
      configObject = (object["config"] as? [String: Any]) ?? object
      if object["config"] != nil, let list = object["categories"],
        let entries = try? JSONDecoder().decode([CategoryMap.Entry].self, from: JSONSerialization.data(withJSONObject: list))
      {
        runCategories = entries
      }
      architecture = configName ?? "config"
    } else {
      let name = preset ?? defaultPreset(family: family, layout: layout, tensors: tensors)
      presetName = name
      guard family.presets.contains(name) else {
        throw CheckpointError(path: name, problem: "is not a preset of \(family.rawValue); presets: \(family.presets.joined(separator: ", "))")
      }
      // torchvision's and MMDetection's RetinaNets share keys once renamed but not their conventions.
      if family == .retinaNet, (layout == "torchvision") != (name == "r50-torchvision") {
        throw CheckpointError(
          path: path, problem: "is in \(layout)'s layout; use --preset \(layout == "torchvision" ? "r50-torchvision" : "r50") (or --config)")
      }
      if name == "r50-confidence", tensors["bbox_head.retina_iou.weight"] == nil {
        throw CheckpointError(path: path, problem: "has no object-confidence output (bbox_head.retina_iou); use --preset r50")
      }
      if family.isRetinaNet, anchorsPerLocation != 9 {
        throw CheckpointError(
          path: path,
          problem: "has \(anchorsPerLocation) anchors per location, the preset 9 (3 scales × 3 ratios): give its architecture with --config (a \(family.rawValue) config whose anchors.scales × anchors.ratios make \(anchorsPerLocation))")
      }
      if classes != cocoClasses {
        throw CheckpointError(
          path: path, problem: "has \(classes) classes, not COCO's \(cocoClasses): give its architecture with --config (a \(family.rawValue) config, e.g. a run folder's config.json)")
      }
      configObject = try JSONSerialization.jsonObject(with: DetectorFactory.make(kind: family, preset: name).encodedConfig()) as! [String: Any]
      architecture = "preset \(name)"
    }
    configObject["class_count"] = classes
    if family.isRetinaNet, let anchors = configObject["anchors"] as? [String: Any], let scales = anchors["scales"] as? [Any],
      let ratios = anchors["ratios"] as? [Any], scales.count * ratios.count != anchorsPerLocation
    {
      throw CheckpointError(
        path: architecture,
        problem: "describes \(scales.count) anchor scales × \(ratios.count) ratios = \(scales.count * ratios.count) anchors per location, but \(source.lastPathComponent) has \(anchorsPerLocation); set anchors.scales and anchors.ratios to the checkpoint's")
    }
    let detector: any Detector
    do {
      detector = try DetectorFactory.make(kind: family, configJSON: JSONSerialization.data(withJSONObject: configObject))
    } catch {
      throw CheckpointError(path: architecture, problem: "is not a valid \(family.rawValue) config (\(error))")
    }

    tensors = try renamedToOurs(tensors, family: family, layout: layout, path: path)
    let report = try detector.load(stateDict: tensors, strict: false)
    guard report.missing.isEmpty && report.misshaped.isEmpty else {
      var partial = report
      partial.unexpected = []
      throw CheckpointError(
        path: path,
        problem: "does not fit \(family.rawValue) \(architecture):\n\(partial.summaryNaming(atMost: 8))\nGive the architecture it was trained with: --preset (\(family.presets.joined(separator: ", "))) or --config")
    }
    detector.eval()
    var notes = conventionNotes(detector)
    let categories = try categoryMap(
      classes: classes, cocoClasses: cocoClasses, given: categories, runCategories: runCategories, classNames: file["meta"]?["CLASSES"]?.strings,
      indexIsId: layout == "torchvision" || layout == "official", path: path, notes: &notes)
    try DetectorCheckpoint.save(detector, categories: categories, preset: presetName, to: output)
    return ConversionReport(
      family: family, architecture: architecture, loaded: report.loaded.count, unused: report.unexpected, categories: categories, layout: layout,
      notes: notes)
  }

  /// The category map of a converted checkpoint (see `convert`), checked against its class count.
  static func categoryMap(
    classes: Int, cocoClasses: Int, given: [CategoryMap.Entry]?, runCategories: [CategoryMap.Entry]?, classNames: [String]?, indexIsId: Bool,
    path: String, notes: inout [String]
  ) throws -> CategoryMap {
    let names = classNames.flatMap { $0.count == classes ? $0 : nil }
    if let given, indexIsId, names == nil {
      // torchvision's and the DETR repositories' convention: class index i is category id i.
      guard let outside = given.first(where: { !(0..<classes).contains($0.id) }).map(\.id) else {
        let byId = Dictionary(given.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return CategoryMap(entries: (0..<classes).map { byId[$0] ?? CategoryMap.Entry(id: $0, name: "class \($0)") })
      }
      throw CheckpointError(
        path: "--categories",
        problem: "has category id \(outside), but \(path)'s classes are the ids 0–\(classes - 1) (its index is the id, as torchvision and DETR train)")
    }
    if let given {
      guard let names else {
        guard given.count == classes else {
          throw CheckpointError(path: "--categories", problem: "lists \(given.count) categories, but \(path) has \(classes) classes")
        }
        return CategoryMap(entries: given.sorted { $0.id < $1.id })
      }
      // The checkpoint names its classes: each takes the id of the category of that name.
      let byName = Dictionary(given.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
      let missing = names.filter { byName[$0] == nil }
      guard missing.isEmpty else {
        throw CheckpointError(
          path: "--categories", problem: "has no category named \(missing.prefix(4).map { "'\($0)'" }.joined(separator: ", ")) of the checkpoint's classes")
      }
      return CategoryMap(entries: names.map { byName[$0]! })
    }
    if let runCategories, runCategories.count == classes { return CategoryMap(entries: runCategories) }
    if classes == 91, cocoClasses == 91 { return COCOCategories.byId }
    if classes == 80, cocoClasses == 80, names == nil || names == COCOCategories.inIdOrder.entries.map(\.name) {
      return COCOCategories.inIdOrder
    }
    if !indexIsId { notes.append(
      "category ids are the class indices 0–\(classes - 1)\(names == nil ? " and the names \"class i\"" : ""): the checkpoint does not record its dataset's ids; give --categories with its training annotations for them") }
    return CategoryMap(entries: (0..<classes).map { CategoryMap.Entry(id: $0, name: names?[$0] ?? "class \($0)") })
  }

  /// The conventions a converted detector follows that its state dict cannot tell, so that the user sees them.
  static func conventionNotes(_ detector: any Detector) -> [String] {
    guard let retinaNet = detector as? RetinaNetModel else { return [] }
    let config = retinaNet.config
    var notes: [String] = []
    if config.anchors.convention == .torchvision {
      notes.append(
        "frozen batch norm ε = \(config.batchNormEpsilon) (batch_norm_epsilon): 0 is right for torchvision's released COCO weights (COCO_V1) only; a RetinaNet trained or fine-tuned with torchvision has 1e-5: give --config with batch_norm_epsilon 1e-5")
    }
    if config.objectConfidence {
      notes.append(
        config.legacyScoreFusion
          ? "score fusion: the authors' code's (legacy_score_fusion true: the IoU factor only on levels with more than candidates_per_level anchors)"
          : "score fusion: p^(1−α)·σ(iou)^α on every level (legacy_score_fusion false); the authors' reported numbers need legacy_score_fusion true (--config)")
    }
    return notes
  }

  /// Which repository's key layout the state dict has, checked against the family: "official" (our
  /// keys), "detrex", "torchvision" or "mmdetection".
  static func officialLayout(of tensors: [String: Tensor], family: ModelKind, path: String) throws -> String {
    func mismatch() -> CheckpointError {
      CheckpointError(path: path, problem: "does not look like a \(family.rawValue) checkpoint (its keys are another family's); check --family")
    }
    switch family {
    case .retinaNet, .dsaRetinaNet:
      guard let head = retinaNetHeads.first(where: { tensors[$0] != nil }) else { throw mismatch() }
      guard (tensors["neck.fpn_selfatt.0.gamma"] != nil) == (family == .dsaRetinaNet) else { throw mismatch() }
      return head == retinaNetHeads[0] ? "torchvision" : "mmdetection"
    case .sdDETR:
      throw CheckpointError(
        path: path, problem: "is given as sd-detr, which has no official release to convert; swift-detr's own sd-detr checkpoints are folders that load directly")
    default:
      let multiHead = [.deformableDETR, .dino, .focusDETR].contains(family)
      let detrex = family == .dino || family == .focusDETR
      guard tensors[multiHead ? "class_embed.0.weight" : "class_embed.weight"] != nil,
        (tensors["label_enc.weight"] != nil) == detrex,
        tensors.keys.contains(where: { $0.hasPrefix("transformer.enc_mask_predictor.") }) == (family == .focusDETR),
        (tensors["transformer.decoder.layers.0.point1.layers.0.weight"] != nil) == (family == .smcaDETR)
      else { throw mismatch() }
      return detrex ? "detrex" : "official"
    }
  }

  /// A RetinaNet's anchors per location: its regression output's channels over 4.
  static func retinaNetAnchorsPerLocation(of tensors: [String: Tensor], layout: String, path: String) throws -> Int {
    let key = retinaNetRegressions[layout == "torchvision" ? 0 : 1]
    guard let regression = tensors[key], regression.shape[0] % 4 == 0, regression.shape[0] > 0 else {
      throw CheckpointError(path: path, problem: "has no box regression output \(key) of anchors × 4 channels; is it a complete RetinaNet?")
    }
    return regression.shape[0] / 4
  }

  static func classCount(of tensors: [String: Tensor], family: ModelKind, layout: String, anchorsPerLocation: Int, path: String) throws -> Int {
    switch family {
    case .retinaNet, .dsaRetinaNet:
      let head = tensors[retinaNetHeads[layout == "torchvision" ? 0 : 1]]!
      guard head.shape[0] % anchorsPerLocation == 0 else {
        throw CheckpointError(
          path: path, problem: "has a classification output of \(head.shape[0]) channels, not \(anchorsPerLocation) anchors (as its regression output) × classes")
      }
      return head.shape[0] / anchorsPerLocation
    case .detr, .smcaDETR: return tensors["class_embed.weight"]!.shape[0] - 1  // the last class is "no object"
    case .conditionalDETR: return tensors["class_embed.weight"]!.shape[0]
    default: return tensors["class_embed.0.weight"]!.shape[0]
    }
  }

  /// The preset a COCO checkpoint most likely is, from its keys: the family's first, except where the
  /// layout or the keys say otherwise.
  static func defaultPreset(family: ModelKind, layout: String, tensors: [String: Tensor]) -> String {
    switch family {
    case .retinaNet: layout == "torchvision" ? "r50-torchvision" : "r50"
    case .dsaRetinaNet: tensors["bbox_head.retina_iou.weight"] != nil ? "r50-confidence" : "r50"
    case .smcaDETR: tensors["input_proj_512.weight"] != nil ? "r50-multi-scale" : "r50"
    case .deformableDETR:
      if tensors["transformer.enc_output.weight"] != nil { "r50-two-stage" }
      else if tensors["transformer.decoder.bbox_embed.0.layers.0.weight"] != nil { "r50-box-refinement" }
      else if tensors["input_proj.1.0.weight"] == nil { "r50-single-scale" }
      else { "r50" }
    default: family.presets[0]
    }
  }

  /// The state dict in swift-detr's keys.
  static func renamedToOurs(_ tensors: [String: Tensor], family: ModelKind, layout: String, path: String) throws -> [String: Tensor] {
    switch layout {
    case "detrex": return try DINOModel.stateDict(fromDetrex: tensors, source: path)
    case "torchvision":
      // torchvision's RetinaNet keys (current or legacy names), renamed by rules kept as data.
      return RetinaNetModel.torchvisionKeys.rename(tensors.filter { !$0.key.hasSuffix("num_batches_tracked") })
    default: return tensors
    }
  }
}
