import Torch
import TorchNN

/// The transformer layers' feed-forward block with its residual and post-norm:
/// `norm(x + dropout(linear2(dropout(relu(linear1(x))))))`, `x [..., dim]` → `[..., dim]`.
///
/// Without gradient recording (inference) the ReLU and the residual sum are done in place on fresh
/// intermediates, which saves two passes' worth of allocations per layer; with gradients it is the
/// plain composition.
public func feedForward(_ x: Tensor, _ linear1: Linear, _ linear2: Linear, dropout: Dropout, norm: LayerNorm) -> Tensor {
  let hidden = dropout(reluInPlaceWhenPossible(linear1(x)))
  return addAndNormalize(x, freshUpdate: dropout(linear2(hidden)), norm: norm)
}

/// The post-norm residual `norm(x + update)`, `[..., dim]`. `freshUpdate` must be a tensor no one
/// else reads (a layer's new output, not a view of a shared one): without gradient recording the sum
/// is written into it instead of a new tensor.
public func addAndNormalize(_ x: Tensor, freshUpdate update: Tensor, norm: LayerNorm) -> Tensor {
  if isGradEnabled { return norm(x + update) }
  update += x
  return norm(update)
}
