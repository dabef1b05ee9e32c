import Torch
import TorchNN

/// The transformer layers' feed-forward block with its residual and post-norm:
/// `norm(x + dropout(linear2(dropout(relu(linear1(x))))))`, `x [..., dim]` → `[..., dim]`.
///
/// The ReLU and the residual sum are written into fresh intermediates instead of new tensors: two
/// allocations of the activation's size less per layer, in inference and in training alike.
public func feedForward(_ x: Tensor, _ linear1: Linear, _ linear2: Linear, dropout: Dropout, norm: LayerNorm) -> Tensor {
  let hidden = dropout(reluInPlace(linear1(x)))
  return addAndNormalize(x, freshUpdate: dropout(linear2(hidden)), norm: norm)
}

/// The post-norm residual `norm(x + update)`, `[..., dim]`. `freshUpdate` must be a tensor no one
/// else reads (a layer's new output or its dropout, not a view of a shared one): the sum is written
/// into it. Autograd allows this because linear layers and dropout keep no output for their backward
/// pass (it raises if one ever did).
public func addAndNormalize(_ x: Tensor, freshUpdate update: Tensor, norm: LayerNorm) -> Tensor {
  update += x
  return norm(update)
}
