import DETRCommands

#if canImport(Glibc)
  import Glibc
#endif

// Progress lines must reach a log file as they happen, not when a buffer fills.
setvbuf(stdout, nil, _IOLBF, 0)
DETRCommand.main()
