import Foundation
import Synchronization

/// A new folder under the temporary directory, removed when the test process exits; for fixtures
/// that several tests of a process share (per-test folders are better removed by the test itself).
public func temporaryFolderRemovedAtExit(named prefix: String) -> URL {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID())")
  foldersToRemoveAtExit.withLock { folders in
    if folders.isEmpty { atexit { removeFoldersAtExit() } }
    folders.append(folder.path)
  }
  return folder
}

private let foldersToRemoveAtExit = Mutex<[String]>([])

private func removeFoldersAtExit() {
  for path in foldersToRemoveAtExit.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
}
