import Foundation
import Testing

@testable import COCOEval

/// pycocotools' results on random problems (Scripts/goldens/make_cocoeval_goldens.py).
@Suite struct ParityTests {
  struct Expected: Decodable {
    var pycocotools: String
    var stats: [Double]
    var per_category: [String: Double]
    var summary: [String]
  }

  static func url(_ name: String) -> URL { Bundle.module.url(forResource: "Goldens/\(name)", withExtension: "json")! }

  @Test(arguments: ["main", "zero_id", "sparse"])
  func statsEqualPycocotools(problem: String) throws {
    let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.url("\(problem).expected")))
    let groundTruth = try GroundTruth.load(contentsOf: Self.url("\(problem).gt"))
    let detections = try DetectedBox.load(contentsOf: Self.url("\(problem).dt"), checkedAgainst: groundTruth)
    let result = COCOEvaluator().evaluate(groundTruth: groundTruth, detections: detections)
    for (index, (ours, theirs)) in zip(result.stats, expected.stats).enumerated() {
      #expect(abs(ours - theirs) <= 1e-6, "stat \(index): \(ours) vs pycocotools \(expected.pycocotools) \(theirs)")
    }
    let perCategory = result.averagePrecisionPerCategory
    #expect(perCategory.count == expected.per_category.count)
    for (id, theirs) in expected.per_category {
      let ours = try #require(perCategory[Int(id)!])
      #expect(abs(ours - theirs) <= 1e-6, "category \(id): \(ours) vs \(theirs)")
    }
    #expect(result.summaryText.split(separator: "\n").map(String.init) == expected.summary)
  }

  @Test func theProblemsCoverTheCasesThatChangeNumbers() throws {
    let groundTruth = try GroundTruth.load(contentsOf: Self.url("main.gt"))
    let detections = try DetectedBox.load(contentsOf: Self.url("main.dt"), checkedAgainst: groundTruth)
    let withTruth = Set(groundTruth.boxes.map(\.imageId))
    let withDetections = Set(detections.map(\.imageId))
    #expect(groundTruth.imageIds.count >= 300)
    #expect(groundTruth.categories.count >= 20)
    #expect(groundTruth.boxes.contains { $0.isCrowd })
    #expect(Set(groundTruth.imageIds).subtracting(withTruth).count > 5, "images without ground truth")
    #expect(Set(groundTruth.imageIds).subtracting(withDetections).count > 5, "images without detections")
    #expect(Set(detections.map(\.score)).count < detections.count - 100, "tied scores")
    let perImage = Dictionary(grouping: detections, by: \.imageId)
    #expect(perImage.values.contains { $0.count > 100 }, "more than 100 detections in an image")
    let areas = groundTruth.boxes.map(\.area)
    #expect(areas.contains { $0 < 1024 } && areas.contains { $0 > 1024 && $0 < 9216 } && areas.contains { $0 > 9216 })
  }
}
