/// A failure at run time (the data, a file's content, the machine), as opposed to bad usage: `detr`
/// exits 1 for it, and 64 for a `ValidationError` (a flag or its value).
struct CommandFailure: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
