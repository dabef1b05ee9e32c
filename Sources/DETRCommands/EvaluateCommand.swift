import ArgumentParser
import COCOEval
import Foundation

/// `detr evaluate`: COCO bbox metrics of a results file, equal to pycocotools.
struct EvaluateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "evaluate",
    abstract: "Evaluate COCO-format detections against ground truth (bbox AP/AR, equal to pycocotools).",
    discussion: """
      DETS.json is a COCO results list: [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...].
      Prints pycocotools' 12 summary lines and a per-category AP table. --json writes
      {"stats": [12 numbers], "per_category": {"<category id>": AP}} at full precision.
      """)

  @Option(name: .customLong("annotations"), help: ArgumentHelp("The ground truth: a COCO instances file.", valueName: "GT.json"))
  var annotationsPath: String

  @Option(name: .customLong("detections"), help: ArgumentHelp("The detections: a COCO results file.", valueName: "DETS.json"))
  var detectionsPath: String

  @Option(name: .customLong("json"), help: ArgumentHelp("Also write the numbers to this file.", valueName: "OUT.json"))
  var jsonPath: String?

  func run() throws {
    let groundTruth = try GroundTruth.load(contentsOf: URL(fileURLWithPath: annotationsPath))
    let detections = try DetectedBox.load(contentsOf: URL(fileURLWithPath: detectionsPath), checkedAgainst: groundTruth)
    let result = COCOEvaluator().evaluate(groundTruth: groundTruth, detections: detections)
    print(result.summaryText)
    print("")
    print(result.perCategoryTable)
    if let jsonPath {
      try EvaluationReport(result).write(to: URL(fileURLWithPath: jsonPath))
    }
  }
}

/// The machine-readable results of an evaluation.
struct EvaluationReport: Encodable {
  var stats: [Double]
  var perCategory: [String: Double]

  init(_ result: EvaluationResult) {
    stats = result.stats
    perCategory = Dictionary(uniqueKeysWithValues: result.averagePrecisionPerCategory.map { (String($0.key), $0.value) })
  }

  enum CodingKeys: String, CodingKey {
    case stats
    case perCategory = "per_category"
  }

  func write(to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    do {
      try encoder.encode(self).write(to: url, options: .atomic)
    } catch {
      throw ValidationError("cannot write \(url.path): \(error.localizedDescription)")
    }
  }
}
