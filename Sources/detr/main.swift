import DETRCommands
import Torch

// The tool runs one model at a time: keep freed tensor memory for reuse rather than faulting it in anew.
Torch.keepFreedMemory(true)
DETRCommand.main(DETRCommand.normalizedArguments(Array(CommandLine.arguments.dropFirst())))
