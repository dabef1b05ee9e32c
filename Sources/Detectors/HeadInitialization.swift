import Foundation
import Torch
import TorchNN

/// The DETR heads' reference initialization: class bias for a prior probability of 0.01, the box
/// MLP's last layer at zero (the first prediction is the reference itself).
func resetHeads(_ classHead: Linear, _ boxHead: MLP) {
  Initialization.constant(classHead.bias!, -Foundation.log((1 - 0.01) / 0.01))
  Initialization.constant(boxHead.layers[boxHead.layers.count - 1].weight, 0)
  Initialization.constant(boxHead.layers[boxHead.layers.count - 1].bias!, 0)
}

/// `count` modules made by `make` (given each one's index) that all hold the first one's values: the
/// references build their repeated layers and heads with `copy.deepcopy` (`_get_clones`), so every
/// layer starts equal; a later Xavier pass re-draws the matrices, leaving the vectors (biases) shared.
/// A copy takes the first one's value for every key it has (Conditional DETR's first decoder layer
/// has a projection the others lack).
func identicalCopies<Layer: Module>(count: Int, make: (Int) -> Layer) -> [Layer] {
  guard count > 0 else { return [] }
  let first = make(0)
  let values = Dictionary(uniqueKeysWithValues: first.stateDict().map { ($0.key, $0.tensor) })
  return [first]
    + (1..<count).map { index in
      let copy = make(index)
      withNoGrad { for (key, tensor) in copy.stateDict() { if let value = values[key] { tensor.copy(from: value) } } }
      return copy
    }
}
