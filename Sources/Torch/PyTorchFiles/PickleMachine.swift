import Foundation

/// Why a PyTorch checkpoint file could not be read.
public struct PyTorchFileError: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let problem: String
  public var description: String { "\(path): \(problem)" }
}

/// A storage that pickled tensors point into: its key in the file, its element type and, for the
/// legacy format's storage views, the element range of the root storage it covers.
struct StorageReference {
  var key: String
  var dtype: DType
  var view: (offset: Int, count: Int)?
}

/// A tensor as the pickle describes it: a strided view of a storage, in elements.
struct StoredTensor {
  var storage: StorageReference
  var offset: Int
  var size: [Int]
  var stride: [Int]
}

/// A restricted pickle interpreter, the counterpart of `torch.load(weights_only=True)`: it knows the
/// opcodes of protocols 0-5 and a fixed list of globals (tensor and storage rebuilding, OrderedDict,
/// set, argparse.Namespace, bytes); any other global, and every opcode that builds an arbitrary
/// object, is refused with its name. Nothing from the file is ever called: the globals it accepts are
/// interpreted here as data.
///
/// libtorch's own unpickler (torch::jit::pickle_load) is not used for the pickle itself: it reads a
/// `collections.OrderedDict`, which every `state_dict()` is, as None.
struct PickleMachine {
  /// A value on the machine's stack. Lists, dictionaries and sets are boxes: the memo refers to them
  /// and later opcodes fill them in place.
  indirect enum Item {
    case mark
    case plain(PickleValue)
    case tuple([Item])
    case list(Box)
    case dict(DictionaryBox)
    case set(Box)
    case namespace(DictionaryBox)
    case global(module: String, name: String)
    case storage(StorageReference)
    case tensor(StoredTensor)
  }
  final class Box { var items: [Item] = [] }
  final class DictionaryBox { var entries: [(key: Item, value: Item)] = [] }

  static let storageTypes: [String: DType] = [
    "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
    "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8, "ByteStorage": .uint8,
    "BoolStorage": .bool, "UntypedStorage": .uint8,
  ]
  static let allowedGlobals: Set<String> = [
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2", "torch.Tensor",
    "torch.nn.parameter.Parameter", "collections.OrderedDict", "builtins.set", "builtins.frozenset", "argparse.Namespace",
    "_codecs.encode",
  ]

  let path: String
  /// Turns a persistent id (the tuple torch.save writes for each storage) into a storage reference.
  let persistentLoad: ([Item]) throws -> StorageReference

  private var stack: [Item] = []
  private var marks: [Int] = []
  private var memo: [Int: Item] = [:]

  init(path: String, persistentLoad: @escaping ([Item]) throws -> StorageReference) {
    self.path = path
    self.persistentLoad = persistentLoad
  }

  func fail(_ problem: String) -> PyTorchFileError { PyTorchFileError(path: path, problem: problem) }

  /// Runs one pickle starting at `start`; returns its value and the position after its STOP.
  mutating func run(_ bytes: UnsafeRawBufferPointer, from start: Int) throws -> (Item, end: Int) {
    (stack, marks, memo) = ([], [], [:])
    var position = start
    func take(_ count: Int) throws -> UnsafeRawBufferPointer {
      guard count >= 0, count <= bytes.count - position else {
        throw fail("ends inside a pickle (at byte \(position)); the file is truncated or corrupt")
      }
      defer { position += count }
      return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }
    func unsigned(_ count: Int) throws -> Int {
      let raw = try take(count)
      var value: UInt64 = 0
      for (index, byte) in raw.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
      guard value <= UInt64(Int.max) else { throw fail("has a length of \(value) bytes at byte \(position); the file is corrupt") }
      return Int(value)
    }
    func line() throws -> String {
      guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("ends inside a text opcode; the file is truncated") }
      let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self)
      position = end + 1
      return text
    }
    func text(_ count: Int) throws -> String {
      let raw = try take(count)
      guard let text = String(validating: raw, as: UTF8.self) else { throw fail("has a string that is not UTF-8 at byte \(position)") }
      return text
    }
    while true {
      let opcodePosition = position
      let opcode = try take(1)[0]
      switch opcode {
      case 0x80: _ = try take(1)  // PROTO
      case 0x95: _ = try take(8)  // FRAME
      case 0x2E:  // STOP
        guard let value = stack.popLast(), stack.isEmpty else { throw fail("has a pickle that ends with \(stack.count) values on its stack") }
        return (value, position)
      case 0x28: marks.append(stack.count)  // MARK
      case 0x30: _ = try pop()  // POP
      case 0x31: _ = try popMark()  // POP_MARK
      case 0x32: stack.append(try top())  // DUP
      case 0x4E: stack.append(.plain(.none))
      case 0x88: stack.append(.plain(.bool(true)))
      case 0x89: stack.append(.plain(.bool(false)))
      case 0x4B: stack.append(.plain(.int(try unsigned(1))))  // BININT1
      case 0x4D: stack.append(.plain(.int(try unsigned(2))))  // BININT2
      case 0x4A: stack.append(.plain(.int(Int(Int32(truncatingIfNeeded: try unsigned(4))))))  // BININT
      case 0x8A, 0x8B:  // LONG1, LONG4
        let count = try unsigned(opcode == 0x8A ? 1 : 4)
        stack.append(.plain(littleEndianInteger(Array(try take(count)))))
      case 0x49, 0x4C:  // INT, LONG (text)
        var digits = try line()
        if digits.hasSuffix("L") { digits.removeLast() }
        if opcode == 0x49 && (digits == "00" || digits == "01") {
          stack.append(.plain(.bool(digits == "01")))
        } else {
          guard let value = Int(digits) else { throw fail("has an integer '\(digits.prefix(30))' that is not a 64-bit number") }
          stack.append(.plain(.int(value)))
        }
      case 0x47:  // BINFLOAT, big-endian
        let raw = try take(8)
        stack.append(.plain(.float(Double(bitPattern: raw.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))))
      case 0x46:  // FLOAT (text)
        let digits = try line()
        guard let value = Double(digits) else { throw fail("has a float '\(digits.prefix(30))' that is not a number") }
        stack.append(.plain(.float(value)))
      case 0x58: stack.append(.plain(.string(try text(try unsigned(4)))))  // BINUNICODE
      case 0x8C: stack.append(.plain(.string(try text(try unsigned(1)))))  // SHORT_BINUNICODE
      case 0x8D: stack.append(.plain(.string(try text(try unsigned(8)))))  // BINUNICODE8
      case 0x56: stack.append(.plain(.string(try line())))  // UNICODE (raw-unicode-escape; plain text here)
      case 0x54: stack.append(.plain(.string(try text(try unsigned(4)))))  // BINSTRING
      case 0x55: stack.append(.plain(.string(try text(try unsigned(1)))))  // SHORT_BINSTRING
      case 0x53:  // STRING: a quoted repr
        var quoted = try line()
        if quoted.count >= 2, let first = quoted.first, first == quoted.last, first == "'" || first == "\"" {
          quoted = String(quoted.dropFirst().dropLast())
        }
        stack.append(.plain(.string(quoted)))
      case 0x42: stack.append(.plain(.bytes(Array(try take(try unsigned(4))))))  // BINBYTES
      case 0x43: stack.append(.plain(.bytes(Array(try take(try unsigned(1))))))  // SHORT_BINBYTES
      case 0x8E, 0x96: stack.append(.plain(.bytes(Array(try take(try unsigned(8))))))  // BINBYTES8, BYTEARRAY8
      case 0x29: stack.append(.tuple([]))  // EMPTY_TUPLE
      case 0x74: stack.append(.tuple(try popMark()))  // TUPLE
      case 0x85, 0x86, 0x87:  // TUPLE1-3
        let count = Int(opcode - 0x84)
        guard stack.count - (marks.last ?? 0) >= count else { throw fail("has a tuple opcode with too few values at byte \(opcodePosition)") }
        let items = Array(stack.suffix(count))
        stack.removeLast(count)
        stack.append(.tuple(items))
      case 0x5D: stack.append(.list(Box()))  // EMPTY_LIST
      case 0x6C:  // LIST
        let box = Box()
        box.items = try popMark()
        stack.append(.list(box))
      case 0x61:  // APPEND
        let item = try pop()
        try appendTarget().items.append(item)
      case 0x65:  // APPENDS
        let items = try popMark()
        try appendTarget().items.append(contentsOf: items)
      case 0x7D: stack.append(.dict(DictionaryBox()))  // EMPTY_DICT
      case 0x64:  // DICT
        let box = DictionaryBox()
        box.entries = try pairs(try popMark())
        stack.append(.dict(box))
      case 0x73:  // SETITEM
        let value = try pop()
        let key = try pop()
        try dictionaryTarget().entries.append((key, value))
      case 0x75:  // SETITEMS
        let items = try popMark()
        try dictionaryTarget().entries.append(contentsOf: try pairs(items))
      case 0x8F: stack.append(.set(Box()))  // EMPTY_SET
      case 0x90:  // ADDITEMS
        let items = try popMark()
        guard case .set(let box) = try top() else { throw fail("adds set items to a value that is not a set") }
        box.items.append(contentsOf: items)
      case 0x91:  // FROZENSET
        let box = Box()
        box.items = try popMark()
        stack.append(.set(box))
      case 0x71: memo[try unsigned(1)] = try top()  // BINPUT
      case 0x72: memo[try unsigned(4)] = try top()  // LONG_BINPUT
      case 0x70:  // PUT
        guard let index = Int(try line()) else { throw fail("has a PUT with no index") }
        memo[index] = try top()
      case 0x94: memo[memo.count] = try top()  // MEMOIZE
      case 0x68, 0x6A, 0x67:  // BINGET, LONG_BINGET, GET
        let index: Int
        if opcode == 0x67 {
          guard let parsed = Int(try line()) else { throw fail("has a GET with no index") }
          index = parsed
        } else {
          index = try unsigned(opcode == 0x68 ? 1 : 4)
        }
        guard let item = memo[index] else { throw fail("refers to memo entry \(index), which was never stored; the file is corrupt") }
        stack.append(item)
      case 0x63:  // GLOBAL
        let module = try line()
        let name = try line()
        stack.append(try global(module, name))
      case 0x93:  // STACK_GLOBAL
        let name = try pop()
        let module = try pop()
        guard case .plain(.string(let moduleName)) = module, case .plain(.string(let globalName)) = name else {
          throw fail("has a STACK_GLOBAL whose names are not strings")
        }
        stack.append(try global(moduleName, globalName))
      case 0x51:  // BINPERSID
        guard case .tuple(let id) = try pop() else { throw fail("has a persistent id that is not a tuple") }
        stack.append(.storage(try persistentLoad(id)))
      case 0x50: throw fail("has a text persistent id (PERSID), which torch.save never writes; the file is not a PyTorch checkpoint")
      case 0x52:  // REDUCE
        guard case .tuple(let arguments) = try pop() else { throw fail("calls a global with arguments that are not a tuple") }
        stack.append(try call(try pop(), arguments))
      case 0x81:  // NEWOBJ
        _ = try pop()
        stack.append(try construct(try pop()))
      case 0x92:  // NEWOBJ_EX
        _ = try pop()
        _ = try pop()
        stack.append(try construct(try pop()))
      case 0x62:  // BUILD
        let state = try pop()
        try build(try top(), state: state)
      case 0x69, 0x6F, 0x82, 0x83, 0x84, 0x97, 0x98:
        throw fail("has the pickle opcode 0x\(String(opcode, radix: 16)) (objects, extensions or buffers), which is refused: only tensors, containers, numbers and strings are read, and nothing in the file runs")
      default:
        throw fail("has an unknown pickle opcode 0x\(String(opcode, radix: 16)) at byte \(opcodePosition); the file is corrupt or not a PyTorch checkpoint")
      }
    }
  }

  private mutating func pop() throws -> Item {
    guard stack.count > (marks.last ?? 0), let item = stack.popLast() else { throw fail("pops an empty pickle stack; the file is corrupt") }
    return item
  }
  private func top() throws -> Item {
    guard let item = stack.last else { throw fail("reads an empty pickle stack; the file is corrupt") }
    return item
  }
  private mutating func popMark() throws -> [Item] {
    guard let mark = marks.popLast() else { throw fail("has a pickle opcode that needs a MARK where there is none; the file is corrupt") }
    let items = Array(stack[mark...])
    stack.removeSubrange(mark...)
    return items
  }
  private func appendTarget() throws -> Box {
    guard case .list(let box) = try top() else { throw fail("appends to a value that is not a list") }
    return box
  }
  private func dictionaryTarget() throws -> DictionaryBox {
    switch try top() {
    case .dict(let box), .namespace(let box): return box
    default: throw fail("sets an item on a value that is not a dict")
    }
  }
  private func pairs(_ items: [Item]) throws -> [(key: Item, value: Item)] {
    guard items.count % 2 == 0 else { throw fail("has dict items of odd count") }
    return stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }
  }

  private func littleEndianInteger(_ bytes: [UInt8]) -> PickleValue {
    if bytes.isEmpty { return .int(0) }
    guard bytes.count <= 8 else { return .bigInt(bytes) }
    var value: UInt64 = 0
    for (index, byte) in bytes.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
    if bytes.count < 8, bytes.last! & 0x80 != 0 { value |= ~0 << (8 * UInt64(bytes.count)) }  // sign-extend
    return .int(Int(Int64(bitPattern: value)))
  }

  private func global(_ rawModule: String, _ name: String) throws -> Item {
    // Protocol 2 writes Python 2's module names for builtins.
    let module = rawModule == "__builtin__" ? "builtins" : rawModule
    let qualified = "\(module).\(name)"
    if module == "torch", Self.storageTypes[name] != nil { return .global(module: module, name: name) }
    guard Self.allowedGlobals.contains(qualified) else {
      throw fail(
        "holds the Python object '\(qualified)', which is refused: only tensors, containers, numbers and strings are read, and nothing in the file runs. If you trust the file, load it with torch and save its state dict (model.state_dict()) alone")
    }
    return .global(module: module, name: name)
  }

  /// REDUCE: the accepted globals, interpreted as data.
  private func call(_ callable: Item, _ arguments: [Item]) throws -> Item {
    guard case .global(let module, let name) = callable else { throw fail("calls a value that is not an accepted global") }
    switch "\(module).\(name)" {
    case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
      guard arguments.count >= 4, case .storage(let storage) = arguments[0], case .plain(.int(let offset)) = arguments[1],
        let size = integers(arguments[2]), let stride = integers(arguments[3]), size.count == stride.count
      else { throw fail("has a tensor whose storage, offset, size or stride is malformed") }
      return .tensor(StoredTensor(storage: storage, offset: offset, size: size, stride: stride))
    case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
      guard let data = arguments.first, case .tensor = data else { throw fail("has a parameter that does not hold a tensor") }
      return data
    case "torch._tensor._rebuild_from_type_v2":
      guard arguments.count >= 3, case .global(let typeModule, let typeName) = arguments[1],
        ["torch.Tensor", "torch.nn.parameter.Parameter"].contains("\(typeModule).\(typeName)"), case .tuple(let inner) = arguments[2]
      else { throw fail("has a tensor of a type other than torch.Tensor or torch.nn.Parameter, which is refused") }
      return try call(arguments[0], inner)
    case "collections.OrderedDict":
      let box = DictionaryBox()
      if let first = arguments.first {
        guard case .list(let items) = first else { throw fail("builds an OrderedDict from something other than a list of pairs") }
        box.entries = try items.items.map {
          guard case .tuple(let pair) = $0, pair.count == 2 else { throw fail("builds an OrderedDict from an item that is not a pair") }
          return (pair[0], pair[1])
        }
      }
      return .dict(box)
    case "builtins.set", "builtins.frozenset":
      let box = Box()
      if let first = arguments.first {
        guard case .list(let items) = first else { throw fail("builds a set from something other than a list") }
        box.items = items.items
      }
      return .set(box)
    case "_codecs.encode":
      guard arguments.count == 2, case .plain(.string(let text)) = arguments[0], case .plain(.string(let encoding)) = arguments[1],
        encoding == "latin1"
      else { throw fail("encodes bytes in a way other than latin1, which torch.save never writes") }
      return .plain(.bytes(text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }))
    case let other:
      throw fail("calls '\(other)', which is refused: only tensors, containers, numbers and strings are read, and nothing in the file runs")
    }
  }

  /// NEWOBJ: only argparse.Namespace (the official scripts' `args`) and OrderedDict are built.
  private func construct(_ type: Item) throws -> Item {
    switch type {
    case .global("argparse", "Namespace"): return .namespace(DictionaryBox())
    case .global("collections", "OrderedDict"): return .dict(DictionaryBox())
    case .global(let module, let name): throw fail("builds an object of '\(module).\(name)', which is refused; nothing in the file runs")
    default: throw fail("builds an object from a value that is not a class")
    }
  }

  /// BUILD: a Namespace takes its attributes; an OrderedDict's attributes (a state dict's `_metadata`) are dropped.
  private func build(_ target: Item, state: Item) throws {
    switch target {
    case .namespace(let box):
      guard case .dict(let attributes) = state else { throw fail("gives a Namespace a state that is not a dict") }
      box.entries.append(contentsOf: attributes.entries)
    case .dict: break
    case .tensor: break  // a parameter's Python attributes
    default: throw fail("sets the state of a value that is not a Namespace or a dict, which is refused")
    }
  }

  func integers(_ item: Item) -> [Int]? {
    guard case .tuple(let items) = item else { return nil }
    var values: [Int] = []
    for item in items {
      guard case .plain(.int(let value)) = item else { return nil }
      values.append(value)
    }
    return values
  }

  /// The finished value: boxes read out (a box met twice is read twice; a box inside itself is refused),
  /// tensors made by `makeTensor`.
  func resolve(_ item: Item, makeTensor: (StoredTensor) throws -> Tensor) throws -> PickleValue {
    var open: Set<ObjectIdentifier> = []
    func visit(_ item: Item, depth: Int) throws -> PickleValue {
      guard depth < 500 else { throw fail("nests containers more than 500 deep; the file is corrupt") }
      func enter<T: AnyObject>(_ box: T, _ body: () throws -> PickleValue) throws -> PickleValue {
        guard open.insert(ObjectIdentifier(box)).inserted else { throw fail("has a container that holds itself, which is refused") }
        defer { open.remove(ObjectIdentifier(box)) }
        return try body()
      }
      switch item {
      case .plain(let value): return value
      case .tuple(let items): return .tuple(try items.map { try visit($0, depth: depth + 1) })
      case .list(let box): return try enter(box) { .list(try box.items.map { try visit($0, depth: depth + 1) }) }
      case .set(let box): return try enter(box) { .set(try box.items.map { try visit($0, depth: depth + 1) }) }
      case .dict(let box):
        return try enter(box) { .dict(try box.entries.map { (try visit($0.key, depth: depth + 1), try visit($0.value, depth: depth + 1)) }) }
      case .namespace(let box):
        return try enter(box) {
          .namespace(
            try box.entries.map {
              guard case .plain(.string(let name)) = $0.key else { throw fail("has a Namespace attribute whose name is not a string") }
              return (name, try visit($0.value, depth: depth + 1))
            })
        }
      case .tensor(let stored): return .tensor(try makeTensor(stored))
      case .storage: throw fail("holds a bare storage outside a tensor, which is not read")
      case .global(let module, let name): throw fail("holds the global '\(module).\(name)' as a value, which is refused")
      case .mark: throw fail("leaves a MARK as a value; the file is corrupt")
      }
    }
    return try visit(item, depth: 0)
  }
}
