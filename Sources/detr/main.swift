import ArgumentParser
import DETRCommands
import Foundation
import Torch

// The tool runs one model at a time: keep freed tensor memory for reuse rather than faulting it in anew.
Torch.keepFreedMemory(true)

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
