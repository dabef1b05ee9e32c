import Foundation

/// This process's memory, from /proc/self/status.
public enum ProcessMemory {
  /// Resident memory now (VmRSS), in MiB.
  public static var residentMiB: Double { value("VmRSS:") }
  /// Peak resident memory (VmHWM), in MiB.
  public static var peakResidentMiB: Double { value("VmHWM:") }

  private static func value(_ field: String) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
      let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) })
    else { return 0 }
    return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
  }
}
