// Fused multi-scale deformable attention (Zhu et al., ICLR 2021) for the CPU: bilinear sampling,
// attention weighting and the sum over levels and points in one pass, parallel over (batch, query)
// in the forward and over (batch, head) for the value gradient, as a custom autograd function.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <vector>

#include "common.h"

using namespace ctorch;

namespace {

struct LevelGeometry {
  std::vector<int64_t> heights, widths, starts;
};

LevelGeometry geometry(const at::Tensor &shapes, const at::Tensor &starts) {
  auto s = shapes.to(at::kLong).contiguous();
  auto t = starts.to(at::kLong).contiguous();
  LevelGeometry g;
  for (int64_t l = 0; l < s.size(0); ++l) {
    g.heights.push_back(s[l][0].item<int64_t>());
    g.widths.push_back(s[l][1].item<int64_t>());
    g.starts.push_back(t[l].item<int64_t>());
  }
  return g;
}

// Bilinear corner weights and indices of a sample at pixel coordinates (h, w), -1 for a corner outside.
struct Corners {
  int64_t index[4];
  double weight[4];
  double lh, lw;
  int64_t h_low, w_low;
};

inline bool corners(double h, double w, int64_t height, int64_t width, Corners &c) {
  if (!(h > -1 && w > -1 && h < height && w < width)) return false;
  c.h_low = static_cast<int64_t>(std::floor(h));
  c.w_low = static_cast<int64_t>(std::floor(w));
  const int64_t h_high = c.h_low + 1, w_high = c.w_low + 1;
  c.lh = h - c.h_low;
  c.lw = w - c.w_low;
  const double hh = 1 - c.lh, hw = 1 - c.lw;
  c.weight[0] = hh * hw;
  c.weight[1] = hh * c.lw;
  c.weight[2] = c.lh * hw;
  c.weight[3] = c.lh * c.lw;
  c.index[0] = (c.h_low >= 0 && c.w_low >= 0) ? c.h_low * width + c.w_low : -1;
  c.index[1] = (c.h_low >= 0 && w_high <= width - 1) ? c.h_low * width + w_high : -1;
  c.index[2] = (h_high <= height - 1 && c.w_low >= 0) ? h_high * width + c.w_low : -1;
  c.index[3] = (h_high <= height - 1 && w_high <= width - 1) ? h_high * width + w_high : -1;
  return true;
}

// Returns top · value over `channels` and adds scale * top to gradient, in lanes of 8 so that the
// compiler vectorizes both (a plain float sum would need reassociation, which it may not do).
template <typename scalar_t>
inline double dot_and_accumulate(const scalar_t *top, const scalar_t *value, scalar_t *gradient, scalar_t scale, int64_t channels) {
  constexpr int lanes = 8;
  scalar_t partial[lanes] = {};
  int64_t c = 0;
  for (; c + lanes <= channels; c += lanes) {
    for (int j = 0; j < lanes; ++j) {
      partial[j] += top[c + j] * value[c + j];
      gradient[c + j] += scale * top[c + j];
    }
  }
  double dot = 0;
  for (int j = 0; j < lanes; ++j) dot += partial[j];
  for (; c < channels; ++c) {
    dot += static_cast<double>(top[c]) * value[c];
    gradient[c] += scale * top[c];
  }
  return dot;
}

// The forward pass. With `fixed_channels` > 0 (the channels per head known at compile time), each
// (query, head) output is summed in registers and stored once; 0 is for any channel count.
template <typename scalar_t, int64_t fixed_channels>
void forward_kernel(const at::Tensor &value, const LevelGeometry &g, const at::Tensor &locations, const at::Tensor &weights, at::Tensor &out) {
  const int64_t batch = value.size(0), tokens = value.size(1), heads = value.size(2);
  const int64_t channels = fixed_channels > 0 ? fixed_channels : value.size(3);
  const int64_t queries = locations.size(1), levels = locations.size(3), points = locations.size(4);
  const scalar_t *v = value.data_ptr<scalar_t>();
  const scalar_t *loc = locations.data_ptr<scalar_t>();
  const scalar_t *att = weights.data_ptr<scalar_t>();
  scalar_t *o = out.data_ptr<scalar_t>();
  at::parallel_for(0, batch * queries, 1, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> buffer(fixed_channels > 0 ? 0 : channels);
    for (int64_t bq = begin; bq < end; ++bq) {
      const int64_t b = bq / queries;
      for (int64_t m = 0; m < heads; ++m) {
        scalar_t registers[fixed_channels > 0 ? fixed_channels : 1];
        scalar_t *sum = fixed_channels > 0 ? registers : buffer.data();
        for (int64_t c = 0; c < channels; ++c) sum[c] = 0;
        for (int64_t l = 0; l < levels; ++l) {
          const int64_t height = g.heights[l], width = g.widths[l];
          const scalar_t *level_value = v + ((b * tokens + g.starts[l]) * heads + m) * channels;
          for (int64_t p = 0; p < points; ++p) {
            const int64_t sample = (((bq * heads + m) * levels + l) * points + p);
            const double x = loc[sample * 2], y = loc[sample * 2 + 1];
            const double a = att[sample];
            Corners cs;
            if (!corners(y * height - 0.5, x * width - 0.5, height, width, cs)) continue;
            for (int k = 0; k < 4; ++k) {
              if (cs.index[k] < 0) continue;
              const scalar_t factor = static_cast<scalar_t>(a * cs.weight[k]);
              const scalar_t *source = level_value + cs.index[k] * heads * channels;
              for (int64_t c = 0; c < channels; ++c) sum[c] += factor * source[c];
            }
          }
        }
        scalar_t *target = o + (bq * heads + m) * channels;
        for (int64_t c = 0; c < channels; ++c) target[c] = sum[c];
      }
    }
  });
}

template <typename scalar_t>
void backward_kernel(const at::Tensor &value, const LevelGeometry &g, const at::Tensor &locations, const at::Tensor &weights,
                     const at::Tensor &grad_out, at::Tensor &grad_value, at::Tensor &grad_locations, at::Tensor &grad_weights) {
  const int64_t batch = value.size(0), tokens = value.size(1), heads = value.size(2), channels = value.size(3);
  const int64_t queries = locations.size(1), levels = locations.size(3), points = locations.size(4);
  const scalar_t *v = value.data_ptr<scalar_t>();
  const scalar_t *loc = locations.data_ptr<scalar_t>();
  const scalar_t *att = weights.data_ptr<scalar_t>();
  const scalar_t *go = grad_out.data_ptr<scalar_t>();
  scalar_t *gv = grad_value.data_ptr<scalar_t>();
  scalar_t *gl = grad_locations.data_ptr<scalar_t>();
  scalar_t *ga = grad_weights.data_ptr<scalar_t>();
  // Each (batch, head) owns its slice of the value gradient, so threads never write the same element.
  at::parallel_for(0, batch * heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bm = begin; bm < end; ++bm) {
      const int64_t b = bm / heads, m = bm % heads;
      for (int64_t q = 0; q < queries; ++q) {
        const scalar_t *top = go + ((b * queries + q) * heads + m) * channels;
        for (int64_t l = 0; l < levels; ++l) {
          const int64_t height = g.heights[l], width = g.widths[l];
          const int64_t offset = ((b * tokens + g.starts[l]) * heads + m) * channels;
          for (int64_t p = 0; p < points; ++p) {
            const int64_t sample = ((((b * queries + q) * heads + m) * levels + l) * points + p);
            const double x = loc[sample * 2], y = loc[sample * 2 + 1];
            const double a = att[sample];
            Corners cs;
            if (!corners(y * height - 0.5, x * width - 0.5, height, width, cs)) {
              ga[sample] = 0;
              gl[sample * 2] = 0;
              gl[sample * 2 + 1] = 0;
              continue;
            }
            const double hh = 1 - cs.lh, hw = 1 - cs.lw;
            // d(weight_k)/dh and d(weight_k)/dw for the corners (0: top-left, 1: top-right, 2: bottom-left, 3: bottom-right).
            const double dh[4] = {-hw, -cs.lw, hw, cs.lw};
            const double dw[4] = {-hh, hh, -cs.lh, cs.lh};
            double grad_attention = 0, grad_h = 0, grad_w = 0;
            for (int k = 0; k < 4; ++k) {
              if (cs.index[k] < 0) continue;
              const int64_t base = offset + cs.index[k] * heads * channels;
              const scalar_t scale = static_cast<scalar_t>(a * cs.weight[k]);
              const double dot = dot_and_accumulate(top, v + base, gv + base, scale, channels);
              grad_attention += cs.weight[k] * dot;
              grad_h += dh[k] * dot;
              grad_w += dw[k] * dot;
            }
            ga[sample] = static_cast<scalar_t>(grad_attention);
            gl[sample * 2] = static_cast<scalar_t>(grad_w * width * a);
            gl[sample * 2 + 1] = static_cast<scalar_t>(grad_h * height * a);
          }
        }
      }
    }
  });
}

struct FusedDeformableAttention : public torch::autograd::Function<FusedDeformableAttention> {
  static at::Tensor forward(torch::autograd::AutogradContext *context, const at::Tensor &value, const at::Tensor &shapes,
                            const at::Tensor &starts, const at::Tensor &locations, const at::Tensor &weights) {
    auto v = value.contiguous();
    auto loc = locations.contiguous();
    auto att = weights.contiguous();
    auto g = geometry(shapes, starts);
    auto out = at::empty({v.size(0), loc.size(1), v.size(2), v.size(3)}, v.options());
    AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "fused_deformable_attention", [&] {
      // 32 channels per head: 256 wide with 8 heads (the references) or 128 with 4 (the small preset).
      if (v.size(3) == 32) {
        forward_kernel<scalar_t, 32>(v, g, loc, att, out);
      } else {
        forward_kernel<scalar_t, 0>(v, g, loc, att, out);
      }
    });
    context->save_for_backward({v, shapes, starts, loc, att});
    return out.view({v.size(0), loc.size(1), v.size(2) * v.size(3)});
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext *context, torch::autograd::tensor_list grads) {
    auto saved = context->get_saved_variables();
    auto &v = saved[0];
    auto g = geometry(saved[1], saved[2]);
    auto &loc = saved[3];
    auto &att = saved[4];
    auto grad_out = grads[0].contiguous();
    auto grad_value = at::zeros_like(v);
    auto grad_locations = at::empty_like(loc);
    auto grad_weights = at::empty_like(att);
    AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "fused_deformable_attention_backward", [&] {
      backward_kernel<scalar_t>(v, g, loc, att, grad_out, grad_value, grad_locations, grad_weights);
    });
    return {grad_value, at::Tensor(), at::Tensor(), grad_locations, grad_weights};
  }
};

}  // namespace

extern "C" ctorch_status ctorch_fused_deformable_attention(ctorch_tensor value, ctorch_tensor shapes, ctorch_tensor starts,
                                                           ctorch_tensor locations, ctorch_tensor weights, ctorch_tensor *out) {
  return guarded([&] {
    const auto &v = unwrap(value);
    TORCH_CHECK(v.device().is_cpu(), "the fused deformable attention runs on the CPU; use the composed version on other devices");
    TORCH_CHECK(v.dim() == 4 && unwrap(locations).dim() == 6 && unwrap(weights).dim() == 5,
                "fused deformable attention: value [B, S, M, D], locations [B, Q, M, L, P, 2], weights [B, Q, M, L, P]");
    *out = wrap(FusedDeformableAttention::apply(v, unwrap(shapes), unwrap(starts), unwrap(locations), unwrap(weights)));
  });
}
