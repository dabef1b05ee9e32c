// The fused deformable attention against the same attention composed of libtorch ops (per-level
// grid_sample, the weighting multiply and the sum, as the reference implementations' CPU path), on
// the encoder of a ResNet-50 Deformable DETR at 512x512: 4 levels (64², 32², 16², 8²), 8 heads of
// 32 channels, 4 points, one query per token (5,440), batch 1. Sampling locations are each query's
// cell centre plus offsets of a few pixels, as in a trained model. Prints the median time of the
// forward and of the backward for both, and their ratio.
//
// Usage: ctorch_attention_benchmark [threads] [iterations]
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "../src/common.h"

namespace {

const std::vector<int64_t> kHeights = {64, 32, 16, 8}, kWidths = {64, 32, 16, 8};
constexpr int64_t kHeads = 8, kChannels = 32, kPoints = 4;

at::Tensor fused(const at::Tensor &value, const at::Tensor &shapes, const at::Tensor &starts, const at::Tensor &locations,
                 const at::Tensor &weights) {
  ctorch_tensor_opaque v{value}, s{shapes}, t{starts}, l{locations}, w{weights};
  ctorch_tensor out = nullptr;
  if (ctorch_fused_deformable_attention(&v, &s, &t, &l, &w, &out) != CTORCH_OK) {
    std::fprintf(stderr, "fused attention failed: %s\n", ctorch_last_error());
    std::exit(1);
  }
  at::Tensor result = out->tensor;
  ctorch_tensor_free(out);
  return result;
}

// value [B, S, M, D], locations [B, Q, M, L, P, 2] in [0, 1], weights [B, Q, M, L, P] -> [B, Q, M·D].
at::Tensor composed(const at::Tensor &value, const at::Tensor &locations, const at::Tensor &weights) {
  const int64_t batch = value.size(0), queries = locations.size(1);
  std::vector<int64_t> sizes;
  for (size_t l = 0; l < kHeights.size(); ++l) sizes.push_back(kHeights[l] * kWidths[l]);
  auto levels = value.split_with_sizes(sizes, 1);
  auto grids = locations * 2 - 1;
  std::vector<at::Tensor> sampled;
  for (size_t l = 0; l < kHeights.size(); ++l) {
    auto map = levels[l].flatten(2).transpose(1, 2).reshape({batch * kHeads, kChannels, kHeights[l], kWidths[l]});
    auto grid = grids.select(3, static_cast<int64_t>(l)).transpose(1, 2).flatten(0, 1);
    sampled.push_back(at::grid_sampler(map, grid, 0, 0, false));
  }
  auto attention = weights.transpose(1, 2).reshape({batch * kHeads, 1, queries, static_cast<int64_t>(kHeights.size()) * kPoints});
  auto output = (at::stack(sampled, -2).flatten(-2) * attention).sum(-1).view({batch, kHeads * kChannels, queries});
  return output.transpose(1, 2).contiguous();
}

double median_ms(int iterations, const std::function<void()> &setup, const std::function<void()> &timed) {
  std::vector<double> times;
  for (int i = 0; i < iterations + 2; ++i) {
    setup();
    const auto start = std::chrono::steady_clock::now();
    timed();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (i >= 2) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char **argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 20;
  at::set_num_threads(threads);
  at::manual_seed(0);
  std::vector<float> centres;
  std::vector<int64_t> shape_values, start_values;
  int64_t tokens = 0;
  for (size_t l = 0; l < kHeights.size(); ++l) {
    shape_values.insert(shape_values.end(), {kHeights[l], kWidths[l]});
    start_values.push_back(tokens);
    tokens += kHeights[l] * kWidths[l];
    for (int64_t y = 0; y < kHeights[l]; ++y) {
      for (int64_t x = 0; x < kWidths[l]; ++x) centres.insert(centres.end(), {(x + 0.5f) / kWidths[l], (y + 0.5f) / kHeights[l]});
    }
  }
  const int64_t levels = static_cast<int64_t>(kHeights.size()), queries = tokens;
  auto shapes = at::tensor(shape_values, at::kLong).view({levels, 2});
  auto starts = at::tensor(start_values, at::kLong);
  auto reference = at::from_blob(centres.data(), {1, queries, 1, 1, 1, 2}, at::kFloat).clone();
  std::vector<float> level_sizes;
  for (size_t l = 0; l < kHeights.size(); ++l) level_sizes.insert(level_sizes.end(), {float(kWidths[l]), float(kHeights[l])});
  auto pixels = at::from_blob(level_sizes.data(), {1, 1, 1, levels, 1, 2}, at::kFloat).clone();
  auto value = at::randn({1, tokens, kHeads, kChannels});
  auto locations = (reference + at::randn({1, queries, kHeads, levels, kPoints, 2}) * 3 / pixels).contiguous();
  auto weights = at::softmax(at::randn({1, queries, kHeads, levels * kPoints}), -1).view({1, queries, kHeads, levels, kPoints});
  {
    at::NoGradGuard no_grad;
    const double difference = (fused(value, shapes, starts, locations, weights) - composed(value, locations, weights)).abs().max().item<double>();
    std::printf("threads %d, %d iterations; largest difference fused - composed: %.2e\n", threads, iterations, difference);
  }
  using Attention = std::function<at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &)>;
  const Attention versions[2] = {
      [&](const at::Tensor &v, const at::Tensor &l, const at::Tensor &w) { return fused(v, shapes, starts, l, w); },
      [&](const at::Tensor &v, const at::Tensor &l, const at::Tensor &w) { return composed(v, l, w); },
  };
  double forward[2], backward[2];
  for (int version = 0; version < 2; ++version) {
    forward[version] = median_ms(iterations, [] {}, [&] {
      c10::InferenceMode guard;
      versions[version](value, locations, weights);
    });
    at::Tensor output, gradient;
    backward[version] = median_ms(iterations, [&] {
      output = versions[version](value.clone().requires_grad_(), locations.clone().requires_grad_(), weights.clone().requires_grad_());
      gradient = at::ones_like(output);
    }, [&] { output.backward(gradient); });
  }
  std::printf("%-9s %12s %12s %8s\n", "pass", "composed_ms", "fused_ms", "ratio");
  std::printf("%-9s %12.2f %12.2f %8.2f\n", "forward", forward[1], forward[0], forward[1] / forward[0]);
  std::printf("%-9s %12.2f %12.2f %8.2f\n", "backward", backward[1], backward[0], backward[1] / backward[0]);
  return 0;
}
