import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// An exclusive lock on a run folder (`run.lock`, an advisory `flock`), held while a process trains
/// into it, so that two processes never write one run's checkpoints and metrics. The kernel drops
/// the lock when the process ends, however it ends: a killed run leaves no stale lock.
public final class RunLock {
  let descriptor: Int32
  public let file: URL

  /// Takes the lock, or throws naming the process that holds it.
  public init(folder: URL) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    file = folder.appendingPathComponent("run.lock")
    descriptor = open(file.path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw TrainingError("cannot open \(file.path) (\(String(cString: strerror(errno))))") }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      let holder = (try? String(contentsOf: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
      close(descriptor)
      throw TrainingError(
        "\(folder.path) is in use by another training process (pid \(holder)); wait for it to end, or train into another --output")
    }
    let pid = "\(getpid())\n"
    _ = ftruncate(descriptor, 0)
    _ = pid.withCString { write(descriptor, $0, strlen($0)) }
  }

  deinit {
    flock(descriptor, LOCK_UN)
    close(descriptor)
  }
}
