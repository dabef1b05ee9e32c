import Torch
import TorchNN

/// The transformer layers' feed-forward block with its residual and post-norm:
/// `norm(x + dropout(linear2(dropout(relu(linear1(x))))))`, `x [..., dim]` → `[..., dim]`.
///
/// Without gradient recording (inference) the ReLU and the residual sum are written into fresh
/// intermediates, two allocations of the activation's size less per layer. With gradients it is the
/// plain composition: a linear layer's output is a view of its matrix product, and an in-place op on
/// a view costs extra copies of the gradient in the backward pass (autograd's CopySlices).
public func feedForward(_ x: Tensor, _ linear1: Linear, _ linear2: Linear, dropout: Dropout, norm: LayerNorm) -> Tensor {
  let hidden = linear1(x)
  let activated = isGradEnabled ? hidden.relu() : reluInPlace(hidden)
  return addAndNormalize(x, freshUpdate: dropout(linear2(dropout(activated))), norm: norm)
}

/// The post-norm residual `norm(x + update)`, `[..., dim]`. `freshUpdate` must be a tensor no one
/// else reads (a layer's new output, not a view of a shared one): without gradient recording the sum
/// is written into it instead of a new tensor.
public func addAndNormalize(_ x: Tensor, freshUpdate update: Tensor, norm: LayerNorm) -> Tensor {
  if isGradEnabled { return norm(x + update) }
  update += x
  return norm(update)
}
