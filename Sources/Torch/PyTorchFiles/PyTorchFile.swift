import CTorch
import Foundation

/// PyTorch checkpoint files as `torch.save` writes them: the zip format of torch 1.6 and later, read
/// through libtorch's archive reader, and the legacy format of older torch (DETR's released
/// checkpoints, for one). The pickle inside is decoded by `PickleMachine`, which reads tensors,
/// containers, numbers and strings and refuses everything else: nothing in the file runs.
public enum PyTorchFile {
  /// The value the file holds: for a checkpoint usually a dict (a state dict, or one under "model").
  public static func load(contentsOf url: URL) throws -> PickleValue {
    let path = url.path
    guard let handle = FileHandle(forReadingAtPath: path) else {
      var isFolder: ObjCBool = false
      let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
      throw PyTorchFileError(
        path: path, problem: !exists ? "does not exist" : isFolder.boolValue ? "is a folder, not a .pth file" : "cannot be read (permissions?)")
    }
    let head = (try? handle.read(upToCount: 4)) ?? nil
    try? handle.close()
    guard let head, head.count >= 2 else { throw PyTorchFileError(path: path, problem: "is empty or too short to be a PyTorch checkpoint") }
    if head.starts(with: [0x50, 0x4B]) { return try loadArchive(path) }
    if head.first == 0x80 { return try loadLegacy(url) }
    throw PyTorchFileError(
      path: path, problem: "is not a PyTorch checkpoint: torch.save writes a zip archive (or, before torch 1.6, a pickle), and this file is neither")
  }

  /// The state dict of a checkpoint: the tensors under "model" (the DETR family's training scripts),
  /// "state_dict" (MMDetection, Lightning) or "module", or the top level itself. Entries that are not
  /// tensors are named in the error.
  public static func stateDict(of value: PickleValue, path: String) throws -> [String: Tensor] {
    var candidate = value
    var place = "the top level"
    for key in ["model", "state_dict", "module"] {
      if let inner = value[key], case .dict = inner {
        (candidate, place) = (inner, "'\(key)'")
        break
      }
    }
    guard case .dict(let entries) = candidate else {
      throw PyTorchFileError(path: path, problem: "holds \(value.summary), not a state dict (a dict of tensors, or one under 'model' or 'state_dict')")
    }
    var tensors: [String: Tensor] = [:]
    for (key, entry) in entries {
      guard let name = key.string else { throw PyTorchFileError(path: path, problem: "has a key \(key.summary) in \(place) that is not a string") }
      guard let tensor = entry.tensor else {
        throw PyTorchFileError(path: path, problem: "has '\(name)' in \(place) holding \(entry.summary), not a tensor; is this a state dict?")
      }
      tensors[name] = tensor
    }
    guard !tensors.isEmpty else { throw PyTorchFileError(path: path, problem: "has an empty state dict at \(place)") }
    return tensors
  }

  // MARK: - The zip format

  static func loadArchive(_ path: String) throws -> PickleValue {
    var archive: ctorch_archive?
    guard ctorch_archive_open(path, &archive) == CTORCH_OK, let archive else {
      let message = String(cString: ctorch_last_error()).split(separator: ".").first.map(String.init) ?? ""
      throw PyTorchFileError(path: path, problem: "is not a readable zip archive (\(message)); the file is truncated or corrupt")
    }
    defer { ctorch_archive_free(archive) }
    final class Names { var list: [String] = [] }
    let names = Names()
    _ = ctorch_archive_records(archive, { context, name in
      Unmanaged<Names>.fromOpaque(context!).takeUnretainedValue().list.append(String(cString: name!))
    }, Unmanaged.passUnretained(names).toOpaque())
    let records = Set(names.list)
    func read(_ name: String) throws -> Tensor {
      var out: ctorch_tensor?
      guard ctorch_archive_read(archive, name, &out) == CTORCH_OK, let out else {
        throw PyTorchFileError(path: path, problem: "has a record '\(name)' that cannot be read (\(String(cString: ctorch_last_error())))")
      }
      return Tensor(handle: out)
    }
    if records.contains("constants.pkl") || records.contains(where: { $0.hasPrefix("code/") }) {
      throw PyTorchFileError(path: path, problem: "is a TorchScript module (torch.jit.save), not a torch.save checkpoint; save its state_dict() with torch.save")
    }
    guard records.contains("data.pkl") else {
      throw PyTorchFileError(path: path, problem: "is a zip archive without data.pkl, so not a torch.save checkpoint")
    }
    if records.contains("byteorder") {
      let order = String(decoding: try read("byteorder").bytes(), as: UTF8.self)
      guard order == "little" else { throw PyTorchFileError(path: path, problem: "stores its tensors \(order)-endian; only little-endian files are read") }
    }
    var machine = PickleMachine(path: path) { id in try storageReference(id, path: path, legacy: false) }
    let pickle = try read("data.pkl").bytes()
    let (item, _) = try pickle.withUnsafeBytes { try machine.run($0, from: 0) }
    var storages: [String: Tensor] = [:]
    return try machine.resolve(item) { stored in
      let key = stored.storage.key
      if storages[key] == nil {
        guard records.contains("data/\(key)") else { throw PyTorchFileError(path: path, problem: "refers to storage \(key), which the archive lacks; the file is truncated or corrupt") }
        storages[key] = try read("data/\(key)")
      }
      return try makeTensor(stored, bytes: storages[key]!, path: path)
    }
  }

  // MARK: - The legacy format

  /// Legacy files: a magic number, a protocol version and the system's sizes, each pickled; the
  /// pickled object; the pickled list of storage keys; then each storage as an 8-byte element count
  /// and its bytes, in that list's order.
  static func loadLegacy(_ url: URL) throws -> PickleValue {
    let path = url.path
    let data: Data
    do {
      data = try Data(contentsOf: url, options: .alwaysMapped)
    } catch {
      throw PyTorchFileError(path: path, problem: "cannot be read (\(error.localizedDescription))")
    }
    final class Seen { var dtypes: [String: DType] = [:] }
    let seen = Seen()
    return try data.withUnsafeBytes { bytes in
      var header = PickleMachine(path: path) { _ in throw PyTorchFileError(path: path, problem: "has a storage in its header; the file is corrupt") }
      let (magic, afterMagic) = try header.run(bytes, from: 0)
      guard case .plain(.bigInt(let digits)) = magic, digits == [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19] else {
        throw PyTorchFileError(path: path, problem: "is a pickle but not a PyTorch checkpoint (no torch.save magic number); only torch.save files are read")
      }
      let (version, afterVersion) = try header.run(bytes, from: afterMagic)
      guard case .plain(.int(1001)) = version else { throw PyTorchFileError(path: path, problem: "has legacy protocol version other than 1001; re-save it with a recent torch") }
      let (systemInfo, afterInfo) = try header.run(bytes, from: afterVersion)
      let info = try header.resolve(systemInfo) { _ in throw PyTorchFileError(path: path, problem: "has a tensor in its header") }
      if case .bool(false) = info["little_endian"] ?? .none {
        throw PyTorchFileError(path: path, problem: "was saved on a big-endian machine; only little-endian files are read")
      }
      var machine = PickleMachine(path: path) { id in
        let reference = try storageReference(id, path: path, legacy: true)
        if let known = seen.dtypes[reference.key], known != reference.dtype {
          throw PyTorchFileError(path: path, problem: "uses storage \(reference.key) as both \(known) and \(reference.dtype)")
        }
        seen.dtypes[reference.key] = reference.dtype
        return reference
      }
      let (item, afterObject) = try machine.run(bytes, from: afterInfo)
      var keysMachine = PickleMachine(path: path) { _ in throw PyTorchFileError(path: path, problem: "has a storage in its key list") }
      let (keysItem, afterKeys) = try keysMachine.run(bytes, from: afterObject)
      guard case .list(let keyValues) = try keysMachine.resolve(keysItem, makeTensor: { _ in throw PyTorchFileError(path: path, problem: "has a tensor in its key list") }) else {
        throw PyTorchFileError(path: path, problem: "has no list of storage keys after its object; the file is truncated or corrupt")
      }
      var ranges: [String: Range<Int>] = [:]
      var position = afterKeys
      for value in keyValues {
        guard let key = value.string else { throw PyTorchFileError(path: path, problem: "has a storage key that is not a string") }
        guard bytes.count - position >= 8 else { throw PyTorchFileError(path: path, problem: "ends before storage \(key); the file is truncated") }
        var count: UInt64 = 0
        for index in 0..<8 { count |= UInt64(bytes[position + index]) << (8 * UInt64(index)) }
        position += 8
        let size = (seen.dtypes[key] ?? .uint8).byteSize
        guard count <= UInt64(bytes.count - position) / UInt64(size) else {
          throw PyTorchFileError(path: path, problem: "declares \(count) elements for storage \(key) but has \(bytes.count - position) bytes left; the file is truncated")
        }
        ranges[key] = position..<position + Int(count) * size
        position += Int(count) * size
      }
      var storages: [String: Tensor] = [:]
      return try machine.resolve(item) { stored in
        let key = stored.storage.key
        if storages[key] == nil {
          guard let range = ranges[key] else { throw PyTorchFileError(path: path, problem: "refers to storage \(key), which the file lacks; it is truncated or corrupt") }
          storages[key] = Tensor(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]), shape: [range.count], dtype: .uint8)
        }
        var view = stored
        if let (offset, _) = stored.storage.view { view.offset += offset }
        return try makeTensor(view, bytes: storages[key]!, path: path)
      }
    }
  }

  // MARK: - Storages

  /// A persistent id: ("storage", torch.<Type>Storage, key, location, element count[, view]) where the
  /// legacy format adds the view (None, or (view key, offset, count)).
  static func storageReference(_ id: [PickleMachine.Item], path: String, legacy: Bool) throws -> StorageReference {
    guard id.count >= 5, case .plain(.string("storage")) = id[0], case .global("torch", let typeName) = id[1],
      case .plain(let keyValue) = id[2]
    else { throw PyTorchFileError(path: path, problem: "has a persistent id that is not a storage; only tensor storages are read") }
    guard let dtype = PickleMachine.storageTypes[typeName] else {
      throw PyTorchFileError(
        path: path, problem: "has a tensor stored as torch.\(typeName), which is not read (supported: \(PickleMachine.storageTypes.keys.sorted().joined(separator: ", ")))")
    }
    let key: String
    switch keyValue {
    case .string(let text): key = text
    case .int(let number): key = String(number)
    default: throw PyTorchFileError(path: path, problem: "has a storage key that is neither a string nor an integer")
    }
    var reference = StorageReference(key: key, dtype: dtype)
    if legacy, id.count >= 6, case .tuple(let view) = id[5], view.count == 3 {
      guard case .plain(.int(let offset)) = view[1], case .plain(.int(let count)) = view[2], offset >= 0, count >= 0 else {
        throw PyTorchFileError(path: path, problem: "has a storage view with a malformed offset or size")
      }
      reference.view = (offset, count)
    }
    return reference
  }

  static func makeTensor(_ stored: StoredTensor, bytes: Tensor, path: String) throws -> Tensor {
    var out: ctorch_tensor?
    let status = withExtendedLifetime(bytes) {
      withInt64s(stored.size) { sizes, count in
        withInt64s(stored.stride) { strides, _ in
          ctorch_tensor_from_storage(bytes.handle, stored.storage.dtype.rawValue, Int64(stored.offset), sizes, strides, count, &out)
        }
      }
    }
    guard status == CTORCH_OK, let out else {
      throw PyTorchFileError(path: path, problem: "has a tensor that does not fit its storage \(stored.storage.key) (\(String(cString: ctorch_last_error())))")
    }
    return Tensor(handle: out)
  }
}

extension Tensor {
  /// The bytes of a 1-D uint8 CPU tensor.
  func bytes() -> [UInt8] {
    let count = shape.reduce(1, *)
    guard count > 0 else { return [] }
    return withExtendedLifetime(self) {
      Array(UnsafeRawBufferPointer(start: ctorch_tensor_data(handle), count: count))
    }
  }
}
