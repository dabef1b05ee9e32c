import Foundation
import Testing
import Torch

/// Runs `torch-memory-probe` (a process of its own, so no other test's allocations interfere) and decodes its report.
private func probe<Report: Decodable>(_ arguments: [String] = [], as: Report.Type) throws -> Report {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("torch-memory-probe")
  process.arguments = arguments
  let output = Pipe()
  process.standardOutput = output
  try process.run()
  let data = output.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  #expect(process.terminationStatus == 0, "torch-memory-probe \(arguments) exited with \(process.terminationStatus)")
  return try JSONDecoder().decode(Report.self, from: data)
}

@Suite struct MemoryTests {
  /// A million small tensors created and dropped: every handle is released and resident memory stays flat.
  @Test func aMillionSmallTensorsLeaveNothingBehind() throws {
    struct Report: Decodable {
      var rss_growth_mib: Double
      var live_handles_delta: Int
      var tensors: Int
    }
    let report = try probe(as: Report.self)
    #expect(report.tensors == 1_000_000)
    #expect(report.rss_growth_mib < 50, "resident memory grew by \(report.rss_growth_mib) MiB")
    #expect(report.live_handles_delta == 0, "\(report.live_handles_delta) tensor handles were not released")
  }

  /// With `keepFreedMemory`, a tensor larger than glibc's largest mmap threshold reuses the memory of
  /// a freed one instead of faulting in fresh zeroed pages; without it, every page faults again.
  @Test func keptMemoryIsReusedWithoutPageFaults() throws {
    struct Report: Decodable {
      var pages: Int
      var faults_returned: Int
      var faults_kept: Int
    }
    let report = try probe(["reuse"], as: Report.self)
    #expect(report.faults_returned > report.pages / 2, "without keeping, \(report.faults_returned) faults for \(report.pages) pages")
    #expect(report.faults_kept < report.pages / 20, "kept memory still took \(report.faults_kept) faults for \(report.pages) pages")
  }
}
