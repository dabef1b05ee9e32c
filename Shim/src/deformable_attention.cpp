// Fused multi-scale deformable attention (Zhu et al., ICLR 2021) for the CPU: bilinear sampling,
// attention weighting and the sum over levels and points in one pass, parallel over (batch, query)
// in the forward and over (batch, head) for the value gradient, as a custom autograd function.
// Each (query, head) first lists its samples' corners (weight and value row), then sums rows in
// vector registers; the forward lists all heads of a query first and prefetches their rows, since
// the gathers from the value map, not the arithmetic, set its speed.
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

// The bilinear corners of one (query, head)'s samples over all levels and points, with no branch per
// corner: for sample s and corner k (0 top-left, 1 top-right,
// 2 bottom-left, 3 bottom-right; pixel centres at integer coordinates, as grid_sample with
// align_corners false) its bilinear weight at [4s + k] and its value row, where a corner outside the
// map has weight 0 and reads a row of zeros (and, in the backward pass, writes its gradient to a
// scratch row).
template <typename scalar_t>
struct SampleCorners {
  std::vector<scalar_t> weight;          // [samples · 4]
  std::vector<int64_t> offset;           // [samples · 4]: element offset of the row from its level's start, -1 outside
  std::vector<scalar_t> lh, lw;          // [samples]: fractional parts of the pixel coordinates
  std::vector<scalar_t> heights, widths;  // [samples]: the size of each sample's level

  SampleCorners(const LevelGeometry &g, int64_t points)
      : weight(g.heights.size() * points * 4), offset(g.heights.size() * points * 4), lh(g.heights.size() * points),
        lw(g.heights.size() * points) {
    for (size_t l = 0; l < g.heights.size(); ++l) {
      for (int64_t p = 0; p < points; ++p) {
        heights.push_back(static_cast<scalar_t>(g.heights[l]));
        widths.push_back(static_cast<scalar_t>(g.widths[l]));
      }
    }
  }

  // `locations [samples, 2]` as (x, y) in [0, 1] of each level; rows `row_stride` elements apart.
  void compute(const scalar_t *__restrict locations, int64_t row_stride) {
    const int64_t samples = static_cast<int64_t>(lh.size());
    for (int64_t s = 0; s < samples; ++s) {
      const scalar_t height = heights[s], width = widths[s];
      scalar_t h = locations[2 * s + 1] * height - scalar_t(0.5), w = locations[2 * s] * width - scalar_t(0.5);
      // Clamped so that the integer parts stay small; a NaN lands outside the map.
      h = h > -2 ? h : -2;
      h = h < height + 1 ? h : height + 1;
      w = w > -2 ? w : -2;
      w = w < width + 1 ? w : width + 1;
      const scalar_t h_floor = std::floor(h), w_floor = std::floor(w);
      const int64_t top = static_cast<int64_t>(h_floor), left = static_cast<int64_t>(w_floor);
      const int64_t rows = static_cast<int64_t>(height), columns = static_cast<int64_t>(width);
      const bool top_in = top >= 0 && top < rows, bottom_in = top + 1 >= 0 && top + 1 < rows;
      const bool left_in = left >= 0 && left < columns, right_in = left + 1 >= 0 && left + 1 < columns;
      const scalar_t fh = h - h_floor, fw = w - w_floor;
      lh[s] = fh;
      lw[s] = fw;
      const int64_t base = (top * columns + left) * row_stride;
      weight[4 * s + 0] = top_in && left_in ? (1 - fh) * (1 - fw) : 0;
      weight[4 * s + 1] = top_in && right_in ? (1 - fh) * fw : 0;
      weight[4 * s + 2] = bottom_in && left_in ? fh * (1 - fw) : 0;
      weight[4 * s + 3] = bottom_in && right_in ? fh * fw : 0;
      offset[4 * s + 0] = top_in && left_in ? base : -1;
      offset[4 * s + 1] = top_in && right_in ? base + row_stride : -1;
      offset[4 * s + 2] = bottom_in && left_in ? base + columns * row_stride : -1;
      offset[4 * s + 3] = bottom_in && right_in ? base + (columns + 1) * row_stride : -1;
    }
  }
};

// 32 bytes of scalars as one value (a 256-bit register where the machine has one; the compiler
// splits it elsewhere), for the channel loops with a channel count known at compile time.
template <typename scalar_t>
struct Lanes {
  typedef scalar_t vector __attribute__((vector_size(32)));
  static constexpr int64_t count = 32 / sizeof(scalar_t);
  static vector load(const scalar_t *p) {
    vector v;
    __builtin_memcpy(&v, p, sizeof(v));
    return v;
  }
  static void store(scalar_t *p, vector v) { __builtin_memcpy(p, &v, sizeof(v)); }
  static scalar_t sum(vector v) {
    scalar_t total = 0;
    for (int64_t j = 0; j < count; ++j) total += v[j];
    return total;
  }
};

// The forward pass, parallel over (batch, query). With `fixed_channels` > 0 (the channels per head
// known at compile time) the sum of each (query, head) stays in vector registers; 0 is for any count.
template <typename scalar_t, int64_t fixed_channels>
void forward_kernel(const at::Tensor &value, const LevelGeometry &g, const at::Tensor &locations, const at::Tensor &weights, at::Tensor &out) {
  const int64_t batch = value.size(0), tokens = value.size(1), heads = value.size(2);
  const int64_t channels = fixed_channels > 0 ? fixed_channels : value.size(3);
  const int64_t queries = locations.size(1), levels = locations.size(3), points = locations.size(4);
  const int64_t samples = levels * points, row_stride = heads * channels;
  const scalar_t *__restrict v = value.data_ptr<scalar_t>();
  const scalar_t *__restrict loc = locations.data_ptr<scalar_t>();
  const scalar_t *__restrict att = weights.data_ptr<scalar_t>();
  scalar_t *__restrict o = out.data_ptr<scalar_t>();
  at::parallel_for(0, batch * queries, 1, [&](int64_t begin, int64_t end) {
    const std::vector<scalar_t> zeros(channels, 0);
    std::vector<scalar_t> buffer(fixed_channels > 0 ? 0 : channels);
    SampleCorners<scalar_t> corners(g, points);
    // Per head: each corner's factor (attention weight × bilinear weight) and row.
    std::vector<scalar_t> factor(heads * samples * 4);
    std::vector<const scalar_t *> source(heads * samples * 4);
    for (int64_t bq = begin; bq < end; ++bq) {
      const int64_t b = bq / queries;
      // All heads' corners first, prefetching their rows, so that the loads of the sums below find
      // them in cache.
      for (int64_t m = 0; m < heads; ++m) {
        const int64_t first = (bq * heads + m) * samples;
        corners.compute(loc + first * 2, row_stride);
        for (int64_t s = 0; s < samples; ++s) {
          const scalar_t *level_value = v + ((b * tokens + g.starts[s / points]) * heads + m) * channels;
          for (int k = 0; k < 4; ++k) {
            const int64_t offset = corners.offset[4 * s + k], i = (m * samples + s) * 4 + k;
            factor[i] = att[first + s] * corners.weight[4 * s + k];
            source[i] = offset < 0 ? zeros.data() : level_value + offset;
            for (int64_t c = 0; c < channels; c += 64 / sizeof(scalar_t)) __builtin_prefetch(source[i] + c);
          }
        }
      }
      for (int64_t m = 0; m < heads; ++m) {
        const scalar_t *factors = factor.data() + m * samples * 4;
        const scalar_t *const *sources = source.data() + m * samples * 4;
        scalar_t *__restrict target = o + (bq * heads + m) * channels;
        if constexpr (fixed_channels > 0) {
          using L = Lanes<scalar_t>;
          constexpr int64_t n = fixed_channels / L::count;
          typename L::vector sum[n] = {};
          for (int64_t i = 0; i < samples * 4; ++i) {
            const typename L::vector f = typename L::vector{} + factors[i];
#pragma GCC unroll 8
            for (int64_t j = 0; j < n; ++j) sum[j] += f * L::load(sources[i] + j * L::count);
          }
#pragma GCC unroll 8
          for (int64_t j = 0; j < n; ++j) L::store(target + j * L::count, sum[j]);
        } else {
          scalar_t *__restrict sum = buffer.data();
          for (int64_t c = 0; c < channels; ++c) sum[c] = 0;
          for (int64_t i = 0; i < samples * 4; ++i) {
            const scalar_t f = factors[i];
            const scalar_t *__restrict row = sources[i];
            for (int64_t c = 0; c < channels; ++c) sum[c] += f * row[c];
          }
          for (int64_t c = 0; c < channels; ++c) target[c] = sum[c];
        }
      }
    }
  });
}

// The backward pass, parallel over (batch, head): each owns its slice of the value gradient, so
// threads never write the same element.
template <typename scalar_t, int64_t fixed_channels>
void backward_kernel(const at::Tensor &value, const LevelGeometry &g, const at::Tensor &locations, const at::Tensor &weights,
                     const at::Tensor &grad_out, at::Tensor &grad_value, at::Tensor &grad_locations, at::Tensor &grad_weights) {
  const int64_t batch = value.size(0), tokens = value.size(1), heads = value.size(2);
  const int64_t channels = fixed_channels > 0 ? fixed_channels : value.size(3);
  const int64_t queries = locations.size(1), levels = locations.size(3), points = locations.size(4);
  const int64_t samples = levels * points, row_stride = heads * channels;
  const scalar_t *__restrict v = value.data_ptr<scalar_t>();
  const scalar_t *__restrict loc = locations.data_ptr<scalar_t>();
  const scalar_t *__restrict att = weights.data_ptr<scalar_t>();
  const scalar_t *__restrict go = grad_out.data_ptr<scalar_t>();
  scalar_t *__restrict gv = grad_value.data_ptr<scalar_t>();
  scalar_t *__restrict gl = grad_locations.data_ptr<scalar_t>();
  scalar_t *__restrict ga = grad_weights.data_ptr<scalar_t>();
  at::parallel_for(0, batch * heads, 1, [&](int64_t begin, int64_t end) {
    const std::vector<scalar_t> zeros(channels, 0);
    std::vector<scalar_t> scratch(channels, 0);
    SampleCorners<scalar_t> corners(g, points);
    std::vector<scalar_t> dot(samples * 4);
    for (int64_t bm = begin; bm < end; ++bm) {
      const int64_t b = bm / heads, m = bm % heads;
      for (int64_t q = 0; q < queries; ++q) {
        const int64_t first = ((b * queries + q) * heads + m) * samples;
        const scalar_t *__restrict top = go + ((b * queries + q) * heads + m) * channels;
        corners.compute(loc + first * 2, row_stride);
        for (int64_t s = 0; s < samples; ++s) {
          const int64_t level_offset = ((b * tokens + g.starts[s / points]) * heads + m) * channels;
          const scalar_t a = att[first + s];
          for (int k = 0; k < 4; ++k) {
            const int64_t offset = corners.offset[4 * s + k];
            const scalar_t *__restrict source = offset < 0 ? zeros.data() : v + level_offset + offset;
            scalar_t *__restrict target = offset < 0 ? scratch.data() : gv + level_offset + offset;
            const scalar_t scale = a * corners.weight[4 * s + k];
            if constexpr (fixed_channels > 0) {
              using L = Lanes<scalar_t>;
              constexpr int64_t n = fixed_channels / L::count;
              const typename L::vector f = typename L::vector{} + scale;
              typename L::vector partial = {};
#pragma GCC unroll 8
              for (int64_t j = 0; j < n; ++j) {
                const typename L::vector t = L::load(top + j * L::count);
                partial += t * L::load(source + j * L::count);
                L::store(target + j * L::count, L::load(target + j * L::count) + f * t);
              }
              dot[4 * s + k] = L::sum(partial);
            } else {
              scalar_t partial = 0;
              for (int64_t c = 0; c < channels; ++c) {
                partial += top[c] * source[c];
                target[c] += scale * top[c];
              }
              dot[4 * s + k] = partial;
            }
          }
        }
        for (int64_t s = 0; s < samples; ++s) {
          const scalar_t *d = &dot[4 * s], *w = &corners.weight[4 * s];
          const scalar_t fh = corners.lh[s], fw = corners.lw[s], a = att[first + s];
          // The weights' derivatives by h and w, corners in the order above; an outside corner's dot is 0.
          const scalar_t grad_h = -(1 - fw) * d[0] - fw * d[1] + (1 - fw) * d[2] + fw * d[3];
          const scalar_t grad_w = -(1 - fh) * d[0] + (1 - fh) * d[1] - fh * d[2] + fh * d[3];
          ga[first + s] = w[0] * d[0] + w[1] * d[1] + w[2] * d[2] + w[3] * d[3];
          gl[(first + s) * 2] = grad_w * corners.widths[s] * a;
          gl[(first + s) * 2 + 1] = grad_h * corners.heights[s] * a;
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
      if (v.size(3) == 32) {
        backward_kernel<scalar_t, 32>(v, g, loc, att, grad_out, grad_value, grad_locations, grad_weights);
      } else {
        backward_kernel<scalar_t, 0>(v, g, loc, att, grad_out, grad_value, grad_locations, grad_weights);
      }
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
