import Foundation

/// Writes training progress to standard output: on a terminal the live line is redrawn in place
/// (carriage return, erase line) and a report first ends it; elsewhere every line is printed as is.
final class ProgressPrinter: @unchecked Sendable {
  private let terminal: Bool
  private let lock = NSLock()
  private var lineIsOpen = false

  init(terminal: Bool) { self.terminal = terminal }

  func print(_ text: String, kind: Trainer.ProgressKind) {
    lock.lock()
    defer { lock.unlock() }
    var output = ""
    switch (terminal, kind) {
    case (true, .live):
      output = "\r\u{1B}[K" + text
      lineIsOpen = true
    case (true, .report):
      output = (lineIsOpen ? "\n" : "") + text + "\n"
      lineIsOpen = false
    case (false, _):
      output = text + "\n"
    }
    // Through Swift's print (C's stdout), like the rest of the output, so that all keep their order.
    Swift.print(output, terminator: "")
    fflush(nil)
  }
}
