import DETRCommands

#if canImport(Glibc)
  import Glibc
#endif

// Progress lines must reach a log file as they happen, not when a buffer fills.
nonisolated(unsafe) let standardOutput = stdout
setvbuf(standardOutput, nil, _IOLBF, 0)
DETRCommand.main()
