import ArgumentParser
import DETRCommands
import Foundation
import Torch
import Training

// The tool runs one model at a time: keep freed tensor memory for reuse rather than faulting it in anew.
Torch.keepFreedMemory(true)

// Running out of memory is an allocation failure reported with its size, not a SIGKILL from the kernel:
// the data memory is limited to what the machine has available (shared out among data-parallel workers).
ProcessMemory.limitToAvailable(share: 1 / Double(max(1, Int(ProcessInfo.processInfo.environment["LOCAL_WORLD_SIZE"] ?? "") ?? 1)))

// A failed libtorch op (a resource running out, or a bug) is reported in one line too, not as a trap.
Torch.opFailureHandler = { failure in
  FileHandle.standardError.write(Data("error: \(failure)\n".utf8))
  exit(1)
}

// Errors are one message on stderr, without the usage text (`--help` shows that): exit 64 for bad
// usage (a flag or its value), 1 for a failure at run time.
do {
  var command = try DETRCommand.parseAsRoot(DETRCommand.normalizedArguments(Array(CommandLine.arguments.dropFirst())))
  try command.run()
} catch {
  let code = DETRCommand.exitCode(for: error)
  if code == .success || error is CleanExit {
    DETRCommand.exit(withError: error)  // --help, --version
  }
  FileHandle.standardError.write(Data("error: \(DETRCommand.message(for: error))\n".utf8))
  exit(code.rawValue)
}
