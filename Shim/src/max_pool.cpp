// 2-D max pooling on the CPU without gradient: as two separable passes of element-wise maxima over
// strided views, instead of at::max_pool2d.
//
// libtorch's CPU max pooling of a contiguous (NCHW) map walks each channel's window with scalar code
// and also computes the argmax indices; ResNet's stem pooling (3×3, stride 2, 64×256×256 at 512²)
// took about 22 ms of it on two cores against about 6 ms for the passes here. Both take the maximum
// of the same elements with -∞ padding and propagate NaN, so results are identical. With gradient
// the libtorch op is used: its backward routes each gradient to a single argmax, where a composition
// of maxima would split it between ties.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <limits>

#include "common.h"

namespace {

// The maximum over the window along `dim` of a map already padded with -∞ on that dim:
// output i = max over j < kernel of input[i · stride + j].
at::Tensor window_maximum(const at::Tensor &padded, int64_t dim, int64_t kernel, int64_t stride) {
  const int64_t outputs = (padded.size(dim) - kernel) / stride + 1;
  auto window = [&](int64_t j) { return padded.slice(dim, j, j + (outputs - 1) * stride + 1, stride); };
  at::Tensor result = window(0);
  for (int64_t j = 1; j < kernel; ++j) result = at::maximum(result, window(j));
  return result;
}

bool separable_applies(const at::Tensor &input, at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef dilation,
                       bool ceil_mode) {
  const bool needs_grad = c10::GradMode::is_enabled() && input.requires_grad();
  return !needs_grad && input.device().is_cpu() && at::isFloatingType(input.scalar_type()) && input.dim() == 4 &&
         input.is_contiguous() && !ceil_mode && dilation[0] == 1 && dilation[1] == 1 && kernel[0] >= 1 && kernel[1] >= 1 &&
         stride[0] >= 1 && stride[1] >= 1;
}

}  // namespace

namespace ctorch {

at::Tensor max_pool2d(const at::Tensor &input, at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                      at::IntArrayRef dilation, bool ceil_mode) {
  if (!separable_applies(input, kernel, stride, dilation, ceil_mode)) {
    return at::max_pool2d(input, kernel, stride, padding, dilation, ceil_mode);
  }
  // at::max_pool2d's own argument checks (padding at most half the kernel, a non-empty output).
  TORCH_CHECK(padding[0] <= kernel[0] / 2 && padding[1] <= kernel[1] / 2,
              "max_pool2d: pad should be at most half of effective kernel size, but got pad=", padding,
              ", kernel_size=", kernel);
  TORCH_CHECK(input.size(2) + 2 * padding[0] >= kernel[0] && input.size(3) + 2 * padding[1] >= kernel[1],
              "max_pool2d: output size is too small for input ", input.sizes(), " and kernel ", kernel);
  const auto padded = at::constant_pad_nd(input, {padding[1], padding[1], padding[0], padding[0]},
                                          -std::numeric_limits<double>::infinity());
  return window_maximum(window_maximum(padded, 2, kernel[0], stride[0]), 3, kernel[1], stride[1]).contiguous();
}

}  // namespace ctorch
