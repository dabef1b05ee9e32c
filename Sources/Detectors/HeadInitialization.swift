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
