import Foundation
import Testing
import Torch

@Suite struct MemoryTests {
  /// A million small tensors created and dropped (in a process of its own): every handle is released
  /// and resident memory stays flat.
  @Test func aMillionSmallTensorsLeaveNothingBehind() throws {
    struct Report: Decodable {
      var rss_growth_mib: Double
      var live_handles_delta: Int
      var tensors: Int
    }
    let probe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("torch-memory-probe")
    let process = Process()
    process.executableURL = probe
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    let report = try JSONDecoder().decode(Report.self, from: data)
    #expect(report.tensors == 1_000_000)
    #expect(report.rss_growth_mib < 50, "resident memory grew by \(report.rss_growth_mib) MiB")
    #expect(report.live_handles_delta == 0, "\(report.live_handles_delta) tensor handles were not released")
  }
}
