import Foundation
import Torch
import TorchTestSupport

let layerGoldens = try! Goldens(Bundle.module.url(forResource: "Goldens/layers", withExtension: "safetensors")!)

extension Goldens {
  /// The state dict stored under `<prefix>.state.`.
  func stateDict(_ prefix: String) -> [String: Tensor] {
    let start = "\(prefix).state."
    var result: [String: Tensor] = [:]
    for (key, tensor) in contents.tensors where key.hasPrefix(start) {
      result[String(key.dropFirst(start.count))] = tensor
    }
    return result
  }

  /// A list of keys stored as JSON in the metadata.
  func keyList(_ name: String) -> [String] {
    guard let text = contents.metadata[name], let keys = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
      fatalError("\(file) has no key list '\(name)' in its metadata")
    }
    return keys
  }
}
