import Foundation

/// This process's memory, from /proc/self/status.
public enum ProcessMemory {
  /// Resident memory now (VmRSS), in MiB.
  public static var residentMiB: Double { value("VmRSS:") }
  /// Peak resident memory (VmHWM), in MiB.
  public static var peakResidentMiB: Double { value("VmHWM:") }

  /// Data memory now (VmData: the heap and private mappings, what RLIMIT_DATA limits), in MiB.
  public static var dataMiB: Double { value("VmData:") }

  /// Limits this process's data memory (RLIMIT_DATA) to what it uses now plus `share` of the memory the
  /// machine has available (MemAvailable + SwapFree), so that running out is an allocation failure,
  /// which libtorch reports with the size asked for, rather than a SIGKILL from the kernel's
  /// out-of-memory killer with no message. Returns the limit in MiB, or nil when it cannot be set.
  @discardableResult
  public static func limitToAvailable(share: Double = 1) -> Double? {
    guard let available = MemoryEstimate.availableBytes, share > 0 else { return nil }
    let limit = dataMiB * Double(1 << 20) + available * share
    var current = rlimit()
    guard getrlimit(Int32(RLIMIT_DATA.rawValue), &current) == 0 else { return nil }
    let wanted = rlim_t(limit)
    guard current.rlim_max == rlim_t.max || wanted < current.rlim_max else { return nil }
    var new = current
    new.rlim_cur = Swift.min(wanted, current.rlim_cur)
    guard setrlimit(Int32(RLIMIT_DATA.rawValue), &new) == 0 else { return nil }
    return Double(new.rlim_cur) / Double(1 << 20)
  }

  private static func value(_ field: String) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
      let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) })
    else { return 0 }
    // "VmHWM:\t  123456 kB": the number is the second field, whatever the whitespace.
    let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
    return fields.count >= 2 ? (Double(fields[1]).map { $0 / 1024 } ?? 0) : 0
  }
}
