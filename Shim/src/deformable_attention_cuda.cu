// Fused multi-scale deformable attention (Zhu et al., ICLR 2021) for CUDA tensors: the forward and
// backward passes that deformable_attention.cpp's autograd function calls for a value on a GPU.
//
// Layouts (contiguous): value [B, S, M, D], locations [B, Q, M, L, P, 2] as (x, y) in [0, 1] of each
// level, weights [B, Q, M, L, P], output [B, Q, M, D]. Bilinear samples with pixel centres at integer
// coordinates (h = y · H - 0.5, w = x · W - 0.5) and zeros outside each map, as grid_sample with
// align_corners false and zero padding.
//
// Forward: one thread per output element (b, q, m, d); the threads of a warp share (b, q, m), so the
// locations and weights they read are broadcast and the value rows they read are coalesced.
// Backward: one warp per (b, q, m); its lanes walk the channels. Each lane adds its channels' share to
// the value gradient (atomics: other queries sample the same pixels) and keeps partial sums for the
// sample's weight and location gradients, which a warp reduction finishes; lane 0 writes them, so
// those two gradients need no atomics. Sums run in the accumulate type (float for float).
#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "deformable_attention_cuda.h"

namespace {

constexpr int kWarp = 32;

// The feature levels, passed by value to the kernels (no device copy, no synchronization).
struct Levels {
  int count;
  int64_t heights[ctorch::cuda::kMaxLevels];
  int64_t widths[ctorch::cuda::kMaxLevels];
  int64_t starts[ctorch::cuda::kMaxLevels];
};

// The four corners of a bilinear sample: for corner k (0 top-left, 1 top-right, 2 bottom-left,
// 3 bottom-right) its weight and its pixel index in the level (-1 outside the map).
template <typename acc_t>
struct Corners {
  acc_t weight[4];
  int64_t pixel[4];
  acc_t fh, fw;  // fractional parts of the pixel coordinates
};

template <typename acc_t>
__device__ __forceinline__ Corners<acc_t> corners(acc_t x, acc_t y, int64_t height, int64_t width) {
  Corners<acc_t> c;
  const acc_t h = y * static_cast<acc_t>(height) - acc_t(0.5);
  const acc_t w = x * static_cast<acc_t>(width) - acc_t(0.5);
  // Far outside (or NaN): every corner is outside. Otherwise the floor fits an int64 comfortably.
  const bool near = h > acc_t(-1) && w > acc_t(-1) && h < static_cast<acc_t>(height) && w < static_cast<acc_t>(width);
  const acc_t top_f = near ? floor(h) : acc_t(-2), left_f = near ? floor(w) : acc_t(-2);
  const int64_t top = static_cast<int64_t>(top_f), left = static_cast<int64_t>(left_f);
  c.fh = near ? h - top_f : acc_t(0);
  c.fw = near ? w - left_f : acc_t(0);
  const acc_t weights[4] = {(1 - c.fh) * (1 - c.fw), (1 - c.fh) * c.fw, c.fh * (1 - c.fw), c.fh * c.fw};
  const int64_t rows[4] = {top, top, top + 1, top + 1}, columns[4] = {left, left + 1, left, left + 1};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const bool inside = near && rows[k] >= 0 && rows[k] < height && columns[k] >= 0 && columns[k] < width;
    c.weight[k] = inside ? weights[k] : acc_t(0);
    c.pixel[k] = inside ? rows[k] * width + columns[k] : -1;
  }
  return c;
}

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t *__restrict__ value, const scalar_t *__restrict__ locations,
                               const scalar_t *__restrict__ weights, scalar_t *__restrict__ out, Levels levels, int64_t batch,
                               int64_t tokens, int64_t heads, int64_t channels, int64_t queries, int64_t points) {
  const int64_t total = batch * queries * heads * channels;
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t d = index % channels, bqm = index / channels;
    const int64_t m = bqm % heads, b = bqm / (queries * heads);
    const int64_t samples = levels.count * points;
    const scalar_t *loc = locations + bqm * samples * 2;
    const scalar_t *att = weights + bqm * samples;
    acc_t sum = 0;
    for (int l = 0; l < levels.count; ++l) {
      // Pixel p of level l, head m, channel d: value[b, start + p, m, d].
      const scalar_t *map = value + ((b * tokens + levels.starts[l]) * heads + m) * channels + d;
      const int64_t row = heads * channels;
      for (int64_t p = 0; p < points; ++p) {
        const int64_t s = l * points + p;
        const auto c = corners<acc_t>(static_cast<acc_t>(loc[2 * s]), static_cast<acc_t>(loc[2 * s + 1]), levels.heights[l],
                                      levels.widths[l]);
        acc_t sampled = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          if (c.pixel[k] >= 0) sampled += c.weight[k] * static_cast<acc_t>(map[c.pixel[k] * row]);
        }
        sum += static_cast<acc_t>(att[s]) * sampled;
      }
    }
    out[index] = static_cast<scalar_t>(sum);
  }
}

template <typename acc_t>
__device__ __forceinline__ acc_t warp_sum(acc_t x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) x += __shfl_down_sync(0xffffffffu, x, offset);
  return x;
}

template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const scalar_t *__restrict__ value, const scalar_t *__restrict__ locations,
                                const scalar_t *__restrict__ weights, const scalar_t *__restrict__ grad_out,
                                scalar_t *__restrict__ grad_value, scalar_t *__restrict__ grad_locations,
                                scalar_t *__restrict__ grad_weights, Levels levels, int64_t batch, int64_t tokens, int64_t heads,
                                int64_t channels, int64_t queries, int64_t points) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = batch * queries * heads;
  const int64_t warps_per_grid = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
  for (int64_t bqm = blockIdx.x * static_cast<int64_t>(blockDim.x / kWarp) + threadIdx.x / kWarp; bqm < warps;
       bqm += warps_per_grid) {
    const int64_t m = bqm % heads, b = bqm / (queries * heads);
    const int64_t samples = levels.count * points;
    const scalar_t *loc = locations + bqm * samples * 2;
    const scalar_t *att = weights + bqm * samples;
    const scalar_t *top = grad_out + bqm * channels;
    const int64_t row = heads * channels;
    for (int l = 0; l < levels.count; ++l) {
      const int64_t offset = ((b * tokens + levels.starts[l]) * heads + m) * channels;
      for (int64_t p = 0; p < points; ++p) {
        const int64_t s = l * points + p;
        const auto c = corners<acc_t>(static_cast<acc_t>(loc[2 * s]), static_cast<acc_t>(loc[2 * s + 1]), levels.heights[l],
                                      levels.widths[l]);
        const acc_t a = static_cast<acc_t>(att[s]);
        // Per lane: Σ over its channels of grad · corner value, for each corner.
        acc_t dot[4] = {0, 0, 0, 0};
        for (int64_t d = lane; d < channels; d += kWarp) {
          const acc_t g = static_cast<acc_t>(top[d]);
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            if (c.pixel[k] < 0) continue;
            const int64_t at = offset + c.pixel[k] * row + d;
            dot[k] += g * static_cast<acc_t>(value[at]);
            atomicAdd(grad_value + at, static_cast<scalar_t>(a * c.weight[k] * g));
          }
        }
        // The weights' derivatives by h and w, corners in the order above; an outside corner's dot is 0.
        const acc_t grad_weight = c.weight[0] * dot[0] + c.weight[1] * dot[1] + c.weight[2] * dot[2] + c.weight[3] * dot[3];
        const acc_t grad_h = -(1 - c.fw) * dot[0] - c.fw * dot[1] + (1 - c.fw) * dot[2] + c.fw * dot[3];
        const acc_t grad_w = -(1 - c.fh) * dot[0] + (1 - c.fh) * dot[1] - c.fh * dot[2] + c.fh * dot[3];
        const acc_t total_weight = warp_sum(grad_weight), total_h = warp_sum(grad_h), total_w = warp_sum(grad_w);
        if (lane == 0) {
          grad_weights[bqm * samples + s] = static_cast<scalar_t>(total_weight);
          grad_locations[(bqm * samples + s) * 2] = static_cast<scalar_t>(total_w * static_cast<acc_t>(levels.widths[l]) * a);
          grad_locations[(bqm * samples + s) * 2 + 1] = static_cast<scalar_t>(total_h * static_cast<acc_t>(levels.heights[l]) * a);
        }
      }
    }
  }
}

Levels make_levels(const std::vector<int64_t> &heights, const std::vector<int64_t> &widths, const std::vector<int64_t> &starts) {
  TORCH_CHECK(heights.size() <= static_cast<size_t>(ctorch::cuda::kMaxLevels), "fused deformable attention on CUDA: at most ",
              ctorch::cuda::kMaxLevels, " feature levels, got ", heights.size());
  Levels levels{};
  levels.count = static_cast<int>(heights.size());
  for (size_t l = 0; l < heights.size(); ++l) {
    levels.heights[l] = heights[l];
    levels.widths[l] = widths[l];
    levels.starts[l] = starts[l];
  }
  return levels;
}

int blocks_for(int64_t threads_needed, int threads_per_block) {
  const int64_t blocks = (threads_needed + threads_per_block - 1) / threads_per_block;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535 * 8));
}

}  // namespace

namespace ctorch::cuda {

at::Tensor deformable_attention_forward(const at::Tensor &value, const std::vector<int64_t> &heights,
                                        const std::vector<int64_t> &widths, const std::vector<int64_t> &starts,
                                        const at::Tensor &locations, const at::Tensor &weights) {
  const c10::cuda::CUDAGuard guard(value.device());
  const int64_t batch = value.size(0), tokens = value.size(1), heads = value.size(2), channels = value.size(3);
  const int64_t queries = locations.size(1), points = locations.size(4);
  auto out = at::empty({batch, queries, heads, channels}, value.options());
  if (out.numel() == 0) return out;
  const auto levels = make_levels(heights, widths, starts);
  constexpr int threads = 256;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "fused_deformable_attention_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    forward_kernel<scalar_t, acc_t><<<blocks_for(out.numel(), threads), threads, 0, stream>>>(
        value.data_ptr<scalar_t>(), locations.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), levels,
        batch, tokens, heads, channels, queries, points);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::vector<at::Tensor> deformable_attention_backward(const at::Tensor &value, const std::vector<int64_t> &heights,
                                                      const std::vector<int64_t> &widths, const std::vector<int64_t> &starts,
                                                      const at::Tensor &locations, const at::Tensor &weights,
                                                      const at::Tensor &grad_out) {
  const c10::cuda::CUDAGuard guard(value.device());
  const int64_t batch = value.size(0), tokens = value.size(1), heads = value.size(2), channels = value.size(3);
  const int64_t queries = locations.size(1), points = locations.size(4);
  auto grad_value = at::zeros_like(value);
  auto grad_locations = at::zeros_like(locations);
  auto grad_weights = at::zeros_like(weights);
  if (batch * queries * heads == 0 || channels == 0) return {grad_value, grad_locations, grad_weights};
  const auto levels = make_levels(heights, widths, starts);
  constexpr int threads = 256;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "fused_deformable_attention_cuda_backward", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    backward_kernel<scalar_t, acc_t><<<blocks_for(batch * queries * heads * kWarp, threads), threads, 0, stream>>>(
        value.data_ptr<scalar_t>(), locations.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(),
        grad_value.data_ptr<scalar_t>(), grad_locations.data_ptr<scalar_t>(), grad_weights.data_ptr<scalar_t>(), levels, batch, tokens,
        heads, channels, queries, points);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_value, grad_locations, grad_weights};
}

}  // namespace ctorch::cuda
