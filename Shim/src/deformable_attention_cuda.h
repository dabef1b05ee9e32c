// The CUDA passes of the fused multi-scale deformable attention (deformable_attention_cuda.cu),
// compiled only when the shim is built with a CUDA compiler against a CUDA libtorch (CTORCH_WITH_CUDA).
// Tensors contiguous and on one GPU: value [B, S, M, D], locations [B, Q, M, L, P, 2], weights
// [B, Q, M, L, P], grad_out [B, Q, M, D]; the levels' heights, widths and first token as host numbers.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace ctorch::cuda {

/// The most feature levels the kernels take (they receive the level geometry by value).
constexpr int kMaxLevels = 16;

/// The attention output, [B, Q, M, D].
at::Tensor deformable_attention_forward(const at::Tensor &value, const std::vector<int64_t> &heights,
                                        const std::vector<int64_t> &widths, const std::vector<int64_t> &starts,
                                        const at::Tensor &locations, const at::Tensor &weights);

/// The gradients of value, locations and weights.
std::vector<at::Tensor> deformable_attention_backward(const at::Tensor &value, const std::vector<int64_t> &heights,
                                                      const std::vector<int64_t> &widths, const std::vector<int64_t> &starts,
                                                      const at::Tensor &locations, const at::Tensor &weights,
                                                      const at::Tensor &grad_out);

}  // namespace ctorch::cuda
