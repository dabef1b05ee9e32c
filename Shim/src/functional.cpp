// Neural-network functions: layers' forward passes and losses.
#include "common.h"

using namespace ctorch;

namespace {
at::IntArrayRef pair(const int64_t values[2]) { return at::IntArrayRef(values, 2); }
int64_t reduction(int32_t code) {
  TORCH_CHECK(code >= 0 && code <= 2, "unknown reduction code ", code);
  return code == 0 ? at::Reduction::None : code == 1 ? at::Reduction::Mean : at::Reduction::Sum;
}
}  // namespace

extern "C" {

ctorch_status ctorch_linear(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::linear(unwrap(input), unwrap(weight), unwrap_optional(bias))); });
}
ctorch_status ctorch_conv2d(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias, const int64_t stride[2], const int64_t padding[2],
                            const int64_t dilation[2], int64_t groups, ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(at::conv2d(unwrap(input), unwrap(weight), unwrap_optional(bias), pair(stride), pair(padding), pair(dilation), groups));
  });
}
ctorch_status ctorch_max_pool2d(ctorch_tensor input, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                                const int64_t dilation[2], bool ceil_mode, ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(ctorch::max_pool2d(unwrap(input), pair(kernel), pair(stride), pair(padding), pair(dilation), ceil_mode));
  });
}
ctorch_status ctorch_avg_pool2d(ctorch_tensor input, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                                bool ceil_mode, bool count_include_pad, ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(at::avg_pool2d(unwrap(input), pair(kernel), pair(stride), pair(padding), ceil_mode, count_include_pad));
  });
}
ctorch_status ctorch_adaptive_pool2d(int32_t op, ctorch_tensor input, const int64_t size[2], ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(op == 0 ? at::adaptive_avg_pool2d(unwrap(input), pair(size)) : std::get<0>(at::adaptive_max_pool2d(unwrap(input), pair(size))));
  });
}
ctorch_status ctorch_interpolate(ctorch_tensor input, int32_t mode, const int64_t size[2], bool align_corners, ctorch_tensor *out) {
  return guarded([&] {
    const auto &x = unwrap(input);
    switch (mode) {
      case 0: *out = wrap(at::upsample_nearest2d(x, pair(size))); return;
      case 1: *out = wrap(at::upsample_bilinear2d(x, pair(size), align_corners)); return;
      case 2: *out = wrap(at::upsample_bicubic2d(x, pair(size), align_corners)); return;
      case 3: *out = wrap(at::_upsample_nearest_exact2d(x, pair(size))); return;
    }
    TORCH_CHECK(false, "unknown interpolation mode code ", mode);
  });
}
ctorch_status ctorch_grid_sample(ctorch_tensor input, ctorch_tensor grid, int32_t mode, int32_t padding, bool align_corners,
                                 ctorch_tensor *out) {
  return guarded([&] {
    TORCH_CHECK(mode >= 0 && mode <= 2, "unknown grid_sample mode code ", mode);
    TORCH_CHECK(padding >= 0 && padding <= 2, "unknown grid_sample padding code ", padding);
    *out = wrap(at::grid_sampler(unwrap(input), unwrap(grid), mode, padding, align_corners));
  });
}
ctorch_status ctorch_layer_norm(ctorch_tensor input, const int64_t *normalized, int64_t count, ctorch_tensor weight, ctorch_tensor bias,
                                double eps, ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(at::layer_norm(unwrap(input), shape(normalized, count), unwrap_optional(weight), unwrap_optional(bias), eps));
  });
}
ctorch_status ctorch_group_norm(ctorch_tensor input, int64_t groups, ctorch_tensor weight, ctorch_tensor bias, double eps, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::group_norm(unwrap(input), groups, unwrap_optional(weight), unwrap_optional(bias), eps)); });
}
ctorch_status ctorch_batch_norm(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias, ctorch_tensor running_mean,
                                ctorch_tensor running_var, bool training, double momentum, double eps, ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(at::batch_norm(unwrap(input), unwrap_optional(weight), unwrap_optional(bias), unwrap_optional(running_mean),
                               unwrap_optional(running_var), training, momentum, eps, false));
  });
}
ctorch_status ctorch_dropout(ctorch_tensor input, double probability, bool training, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(ctorch::dropout(unwrap(input), probability, training)); });
}
ctorch_status ctorch_embedding(ctorch_tensor weight, ctorch_tensor indices, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::embedding(unwrap(weight), unwrap(indices))); });
}
ctorch_status ctorch_binary_cross_entropy_with_logits(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight,
                                                      ctorch_tensor pos_weight, int32_t red, ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(at::binary_cross_entropy_with_logits(unwrap(input), unwrap(target), unwrap_optional(weight), unwrap_optional(pos_weight),
                                                     reduction(red)));
  });
}
ctorch_status ctorch_cross_entropy(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight, int32_t red, int64_t ignore_index,
                                   double label_smoothing, ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(at::cross_entropy_loss(unwrap(input), unwrap(target), unwrap_optional(weight), reduction(red), ignore_index, label_smoothing));
  });
}
ctorch_status ctorch_regression_loss(int32_t op, ctorch_tensor input, ctorch_tensor target, int32_t red, double beta, ctorch_tensor *out) {
  return guarded([&] {
    const auto &x = unwrap(input);
    const auto &y = unwrap(target);
    switch (op) {
      case 0: *out = wrap(at::l1_loss(x, y, reduction(red))); return;
      case 1: *out = wrap(at::mse_loss(x, y, reduction(red))); return;
      case 2: *out = wrap(at::smooth_l1_loss(x, y, reduction(red), beta)); return;
    }
    TORCH_CHECK(false, "unknown regression loss code ", op);
  });
}

}  // extern "C"
