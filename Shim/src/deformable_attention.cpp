// Fused multi-scale deformable attention (Zhu et al., ICLR 2021) for the CPU: bilinear sampling,
// attention weighting and the sum over levels and points in one pass, parallel over (batch, query)
// in the forward and over (batch, head) for the value gradient, as a custom autograd function.
// Each (query, head) first lists its samples' corners (weight and value row), then sums rows in
// vector registers; the forward lists all heads of a query first and prefetches their rows, since
// the gathers from the value map, not the arithmetic, set its speed.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "common.h"
#if defined(CTORCH_WITH_CUDA)
#include "deformable_attention_cuda.h"
#endif

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
  static vector splat(scalar_t x) {
    vector v;
    for (int64_t j = 0; j < count; ++j) v[j] = x;
    return v;
  }
  static scalar_t sum(vector v) {
    scalar_t total = 0;
    for (int64_t j = 0; j < count; ++j) total += v[j];
    return total;
  }
};

// The bilinear corners of one (query, head)'s samples over all levels and points, with no branch:
// for corner k (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right; pixel centres at integer
// coordinates, as grid_sample with align_corners false) of sample s, its bilinear weight and the
// offset of its value row at [k · stride + s]. A corner outside the map has weight 0 and offset -1
// (the kernels then read a row of zeros and write its gradient to a scratch row). Computed a
// vector of samples at a time; the arrays are padded to whole vectors.
template <typename scalar_t>
struct SampleCorners {
  using L = Lanes<scalar_t>;
  using V = typename L::vector;
  // Element offsets: 32-bit for float (8 per vector), 64-bit for double (4 per vector).
  using index_t = std::conditional_t<sizeof(scalar_t) == 4, int32_t, int64_t>;
  typedef index_t IndexVector __attribute__((vector_size(32)));

  int64_t samples, stride;                // stride: samples rounded up to whole vectors
  std::vector<scalar_t> weight;           // [4 · stride]
  std::vector<index_t> offset;            // [4 · stride]: from the level's first row, -1 outside
  std::vector<scalar_t> lh, lw;           // [stride]: fractional parts of the pixel coordinates
  std::vector<scalar_t> heights, widths;  // [stride]: the size of each sample's level (1 in the padding)

  SampleCorners(const LevelGeometry &g, int64_t points)
      : samples(static_cast<int64_t>(g.heights.size()) * points),
        stride((samples + L::count - 1) / L::count * L::count),
        weight(4 * stride),
        offset(4 * stride),
        lh(stride),
        lw(stride),
        heights(stride, 1),
        widths(stride, 1) {
    for (size_t l = 0; l < g.heights.size(); ++l) {
      for (int64_t p = 0; p < points; ++p) {
        heights[l * points + p] = static_cast<scalar_t>(g.heights[l]);
        widths[l * points + p] = static_cast<scalar_t>(g.widths[l]);
      }
    }
  }

  // `locations [samples, 2]` as (x, y) in [0, 1] of each level; rows `row_stride` elements apart.
  void compute(const scalar_t *__restrict locations, int64_t row_stride) {
    for (int64_t s = 0; s < samples; s += L::count) {
      scalar_t xs[L::count] = {}, ys[L::count] = {};
      for (int64_t j = 0; j < L::count && s + j < samples; ++j) {
        xs[j] = locations[2 * (s + j)];
        ys[j] = locations[2 * (s + j) + 1];
      }
      const V height = L::load(&heights[s]), width = L::load(&widths[s]);
      V h = L::load(ys) * height - scalar_t(0.5), w = L::load(xs) * width - scalar_t(0.5);
      // Clamped so that the integer parts stay small and truncation is a floor; NaN lands outside.
      const V low = L::splat(-2);
      h = h > low ? h : low;
      h = h < height + scalar_t(1) ? h : height + scalar_t(1);
      w = w > low ? w : low;
      w = w < width + scalar_t(1) ? w : width + scalar_t(1);
      const IndexVector top = __builtin_convertvector(h + scalar_t(2), IndexVector) - 2;
      const IndexVector left = __builtin_convertvector(w + scalar_t(2), IndexVector) - 2;
      const IndexVector rows = __builtin_convertvector(height, IndexVector), columns = __builtin_convertvector(width, IndexVector);
      const V fh = h - __builtin_convertvector(top, V), fw = w - __builtin_convertvector(left, V);
      const IndexVector top_in = (top >= 0) & (top < rows), bottom_in = (top + 1 >= 0) & (top + 1 < rows);
      const IndexVector left_in = (left >= 0) & (left < columns), right_in = (left + 1 >= 0) & (left + 1 < columns);
      const V zero = {};
      const IndexVector outside = IndexVector{} - 1;
      const IndexVector base = (top * columns + left) * static_cast<index_t>(row_stride);
      const IndexVector inside[4] = {top_in & left_in, top_in & right_in, bottom_in & left_in, bottom_in & right_in};
      const V weights[4] = {(1 - fh) * (1 - fw), (1 - fh) * fw, fh * (1 - fw), fh * fw};
      const IndexVector offsets[4] = {base, base + static_cast<index_t>(row_stride), base + columns * static_cast<index_t>(row_stride),
                                      base + (columns + 1) * static_cast<index_t>(row_stride)};
      for (int k = 0; k < 4; ++k) {
        L::store(&weight[k * stride + s], inside[k] ? weights[k] : zero);
        const IndexVector o = inside[k] ? offsets[k] : outside;
        __builtin_memcpy(&offset[k * stride + s], &o, sizeof(o));
      }
      L::store(&lh[s], fh);
      L::store(&lw[s], fw);
    }
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
            const int64_t offset = corners.offset[k * corners.stride + s], i = (m * samples + s) * 4 + k;
            factor[i] = att[first + s] * corners.weight[k * corners.stride + s];
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
// threads never write the same element. Value and its gradient come head-major, [B, M, S, D], so
// that one head's map is contiguous: its rows, read and written at random, stay in the core's cache.
template <typename scalar_t, int64_t fixed_channels>
void backward_kernel(const at::Tensor &value, const LevelGeometry &g, const at::Tensor &locations, const at::Tensor &weights,
                     const at::Tensor &grad_out, at::Tensor &grad_value, at::Tensor &grad_locations, at::Tensor &grad_weights) {
  const int64_t batch = value.size(0), heads = value.size(1), tokens = value.size(2);
  const int64_t channels = fixed_channels > 0 ? fixed_channels : value.size(3);
  const int64_t queries = locations.size(1), levels = locations.size(3), points = locations.size(4);
  const int64_t samples = levels * points, row_stride = channels;
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
          const int64_t level_offset = ((b * heads + m) * tokens + g.starts[s / points]) * channels;
          const scalar_t a = att[first + s];
          for (int k = 0; k < 4; ++k) {
            const int64_t offset = corners.offset[k * corners.stride + s];
            const scalar_t *__restrict source = offset < 0 ? zeros.data() : v + level_offset + offset;
            scalar_t *__restrict target = offset < 0 ? scratch.data() : gv + level_offset + offset;
            const scalar_t scale = a * corners.weight[k * corners.stride + s];
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
          const scalar_t *d = &dot[4 * s];
          const int64_t n = corners.stride;
          const scalar_t w[4] = {corners.weight[s], corners.weight[n + s], corners.weight[2 * n + s], corners.weight[3 * n + s]};
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
    context->save_for_backward({v, shapes, starts, loc, att});
#if defined(CTORCH_WITH_CUDA)
    if (v.is_cuda()) {
      auto out = ctorch::cuda::deformable_attention_forward(v, g.heights, g.widths, g.starts, loc, att);
      return out.view({v.size(0), loc.size(1), v.size(2) * v.size(3)});
    }
#endif
    auto out = at::empty({v.size(0), loc.size(1), v.size(2), v.size(3)}, v.options());
    AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "fused_deformable_attention", [&] {
      // 32 channels per head: 256 wide with 8 heads (the references) or 128 with 4 (the small preset).
      if (v.size(3) == 32) {
        forward_kernel<scalar_t, 32>(v, g, loc, att, out);
      } else {
        forward_kernel<scalar_t, 0>(v, g, loc, att, out);
      }
    });
    return out.view({v.size(0), loc.size(1), v.size(2) * v.size(3)});
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext *context, torch::autograd::tensor_list grads) {
    auto saved = context->get_saved_variables();
    auto &v = saved[0];
    auto g = geometry(saved[1], saved[2]);
    auto &loc = saved[3];
    auto &att = saved[4];
    auto grad_out = grads[0].contiguous();
#if defined(CTORCH_WITH_CUDA)
    if (v.is_cuda()) {
      auto result = ctorch::cuda::deformable_attention_backward(v, g.heights, g.widths, g.starts, loc, att,
                                                                grad_out.view({v.size(0), loc.size(1), v.size(2), v.size(3)}));
      return {result[0], at::Tensor(), at::Tensor(), result[1], result[2]};
    }
#endif
    auto value_by_head = v.permute({0, 2, 1, 3}).contiguous();
    auto grad_by_head = at::zeros_like(value_by_head);
    auto grad_locations = at::empty_like(loc);
    auto grad_weights = at::empty_like(att);
    AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "fused_deformable_attention_backward", [&] {
      if (v.size(3) == 32) {
        backward_kernel<scalar_t, 32>(value_by_head, g, loc, att, grad_out, grad_by_head, grad_locations, grad_weights);
      } else {
        backward_kernel<scalar_t, 0>(value_by_head, g, loc, att, grad_out, grad_by_head, grad_locations, grad_weights);
      }
    });
    auto grad_value = grad_by_head.permute({0, 2, 1, 3}).contiguous();
    return {grad_value, at::Tensor(), at::Tensor(), grad_locations, grad_weights};
  }
};

}  // namespace

extern "C" bool ctorch_fused_deformable_attention_available(int32_t device_type) {
#if defined(CTORCH_WITH_CUDA)
  if (device_type == CTORCH_CUDA) return true;
#endif
  return device_type == CTORCH_CPU;
}

extern "C" ctorch_status ctorch_fused_deformable_attention(ctorch_tensor value, ctorch_tensor shapes, ctorch_tensor starts,
                                                           ctorch_tensor locations, ctorch_tensor weights, ctorch_tensor *out) {
  return guarded([&] {
    const auto &v = unwrap(value);
    TORCH_CHECK(ctorch_fused_deformable_attention_available(v.device().is_cuda() ? CTORCH_CUDA : v.device().is_cpu() ? CTORCH_CPU : -1),
                "this shim's fused deformable attention does not run on ", v.device(),
                " (CUDA needs a shim built with a CUDA compiler); use the composed version");
    TORCH_CHECK(unwrap(locations).device() == v.device() && unwrap(weights).device() == v.device(),
                "fused deformable attention: value, locations and weights must be on one device");
    TORCH_CHECK(v.dim() == 4 && unwrap(locations).dim() == 6 && unwrap(weights).dim() == 5,
                "fused deformable attention: value [B, S, M, D], locations [B, Q, M, L, P, 2], weights [B, Q, M, L, P]");
    // Under mixed precision the projections hand over bfloat16 or float16: sampling and the weighted sum
    // run in float32 (the cast is on the autograd tape, so the gradients return in the inputs' types).
    auto full = [](const at::Tensor &t) { return t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf ? t.to(at::kFloat) : t; };
    *out = wrap(FusedDeformableAttention::apply(full(v), unwrap(shapes), unwrap(starts), full(unwrap(locations)), full(unwrap(weights))));
  });
}
