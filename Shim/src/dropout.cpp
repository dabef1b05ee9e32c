// Dropout for the CPU with a counter-based random mask, as a custom autograd function.
//
// libtorch's CPU dropout draws its mask with bernoulli_, one element at a time on one thread, and
// keeps it as a float tensor for the backward pass. Here element i is kept when a hash of
// (seed, i) is at least p · 2³²: the mask is made in parallel and vectorized, kept as one byte per
// element, and does not depend on the thread count. A dropped element is the input times 0, as in
// libtorch (a NaN or infinity stays non-finite, so a diverging run is still noticed). The seed is
// one draw per call from the thread's current generator (libtorch's default CPU generator unless
// ctorch_set_thread_generator named another), so that seeding it (or restoring its state when a run
// resumes) gives the same masks.
#include <ATen/OpMathType.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>

#include "common.h"

namespace {

// MurmurHash3's 32-bit finalizer: every input bit affects every output bit.
inline uint32_t mix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// Elements per parallel task: large enough that the threads' start-up cost is amortized.
constexpr int64_t grain = 1 << 15;

uint64_t draw_seed() {
  auto generator = ctorch::current_cpu_generator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(generator)->random64();
}

// The 32-bit random number of element `index`: a function of the seed and the index only.
inline uint32_t random_bits(uint64_t index, uint32_t low, uint32_t high) {
  const uint32_t block = high ^ (static_cast<uint32_t>(index >> 32) * 0x9e3779b9u);
  return mix(mix(static_cast<uint32_t>(index) ^ low) + block);
}

// The kernels copy their pointers into restrict-qualified locals: read through the lambda's
// captures, the compiler must assume every store may change them and keeps the loops scalar.
// `op_t`: the arithmetic's type, float for bfloat16 and float16 inputs (as libtorch's), else the input's.
template <typename scalar_t, typename op_t = at::opmath_type<scalar_t>>
void forward_kernel(const scalar_t *input, scalar_t *output, uint8_t *keep, int64_t count, uint32_t threshold, uint64_t seed,
                    op_t scale) {
  const uint32_t low = static_cast<uint32_t>(seed), high = static_cast<uint32_t>(seed >> 32);
  constexpr int64_t lanes = 64;
  at::parallel_for(0, count, grain, [=](int64_t begin, int64_t end) {
    const scalar_t *__restrict in = input;
    scalar_t *__restrict out = output;
    uint8_t *__restrict kept = keep;
    uint32_t random[lanes];
    for (int64_t start = begin; start < end; start += lanes) {
      const int64_t n = std::min(lanes, end - start);
      const auto first = static_cast<uint64_t>(start);
      if (n == lanes && static_cast<uint32_t>(first) <= UINT32_MAX - lanes) {
        // The common case, in lanes the compiler vectorizes: the index's high word is the same for all.
        const uint32_t block = high ^ (static_cast<uint32_t>(first >> 32) * 0x9e3779b9u);
        const auto base = static_cast<uint32_t>(first);
        for (int64_t j = 0; j < lanes; ++j) random[j] = mix(mix((base + static_cast<uint32_t>(j)) ^ low) + block);
        // Mask and product in separate loops, the select as arithmetic (0 or 1 times the scale): so
        // GCC vectorizes both.
        for (int64_t j = 0; j < lanes; ++j) kept[start + j] = random[j] >= threshold;
        for (int64_t j = 0; j < lanes; ++j) {
          out[start + j] = static_cast<scalar_t>(static_cast<op_t>(in[start + j]) * (scale * static_cast<op_t>(kept[start + j])));
        }
      } else {
        for (int64_t j = 0; j < n; ++j) {
          const bool on = random_bits(first + j, low, high) >= threshold;
          kept[start + j] = on;
          out[start + j] = static_cast<scalar_t>(static_cast<op_t>(in[start + j]) * (scale * static_cast<op_t>(on)));
        }
      }
    }
  });
}

template <typename scalar_t, typename op_t = at::opmath_type<scalar_t>>
void backward_kernel(const scalar_t *gradient, const uint8_t *keep, scalar_t *result, int64_t count, op_t scale) {
  at::parallel_for(0, count, grain, [=](int64_t begin, int64_t end) {
    const scalar_t *__restrict in = gradient;
    const uint8_t *__restrict kept = keep;
    scalar_t *__restrict out = result;
    for (int64_t i = begin; i < end; ++i) out[i] = static_cast<scalar_t>(static_cast<op_t>(in[i]) * (scale * static_cast<op_t>(kept[i])));
  });
}

struct CounterDropout : public torch::autograd::Function<CounterDropout> {
  static at::Tensor forward(torch::autograd::AutogradContext *context, const at::Tensor &input, double probability) {
    auto x = input.contiguous();
    auto output = at::empty_like(x);
    auto keep = at::empty(x.sizes(), x.options().dtype(at::kByte));
    // Dropped when the 32-bit hash is below p · 2³² (p < 1 here, so the threshold fits).
    const auto threshold = static_cast<uint32_t>(std::llround(probability * 4294967296.0));
    const uint64_t seed = draw_seed();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "counter_dropout", [&] {
      forward_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), output.mutable_data_ptr<scalar_t>(), keep.mutable_data_ptr<uint8_t>(),
                               x.numel(), threshold, seed, static_cast<at::opmath_type<scalar_t>>(1.0 / (1.0 - probability)));
    });
    context->save_for_backward({keep});
    context->saved_data["probability"] = probability;
    return output;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext *context, torch::autograd::tensor_list grads) {
    auto keep = context->get_saved_variables()[0];
    const double probability = context->saved_data["probability"].toDouble();
    auto gradient = grads[0].contiguous();
    auto result = at::empty_like(gradient);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, gradient.scalar_type(), "counter_dropout_backward", [&] {
      backward_kernel<scalar_t>(gradient.const_data_ptr<scalar_t>(), keep.const_data_ptr<uint8_t>(), result.mutable_data_ptr<scalar_t>(),
                                gradient.numel(), static_cast<at::opmath_type<scalar_t>>(1.0 / (1.0 - probability)));
    });
    return {result, at::Tensor()};
  }
};

}  // namespace

namespace ctorch {

at::Tensor dropout(const at::Tensor &input, double probability, bool training) {
  const bool counterBased = training && probability > 0 && probability < 1 && input.device().is_cpu() &&
                            at::isFloatingType(input.scalar_type()) && input.numel() > 0 && input.layout() == at::kStrided;
  if (!counterBased && training && probability > 0 && probability < 1 && input.numel() > 0 && !input.device().is_cpu()) {
    // Another device: the mask from a copy of the device's generator seeded with one draw from the thread's
    // generator, as the CPU path, so that the run's seed (and a resumed run's restored state) decides it.
    auto generator = at::globalContext().defaultGenerator(input.device()).clone();
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_current_seed(draw_seed());
    }
    auto keep = at::empty_like(input).bernoulli_(1 - probability, generator);
    return input * keep * (1.0 / (1.0 - probability));
  }
  if (!counterBased) return at::dropout(input, probability, training);
  return CounterDropout::apply(input, probability);
}

}  // namespace ctorch
