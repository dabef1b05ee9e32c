// Library information, errors, generators, tensor properties and creation.
#if defined(CTORCH_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>
#include <torch/headeronly/version.h>

#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

struct ctorch_generator_opaque {
  at::Generator generator;
};
struct ctorch_guard_opaque {
  c10::InferenceMode mode;
};

namespace ctorch {

static thread_local std::string last_error;
std::atomic<int64_t> live_tensors{0};
void set_error(const std::string &message) { last_error = message; }

at::ScalarType scalar_type(int32_t dtype) {
  switch (dtype) {
    case CTORCH_FLOAT32: return at::kFloat;
    case CTORCH_FLOAT64: return at::kDouble;
    case CTORCH_FLOAT16: return at::kHalf;
    case CTORCH_BFLOAT16: return at::kBFloat16;
    case CTORCH_INT64: return at::kLong;
    case CTORCH_INT32: return at::kInt;
    case CTORCH_UINT8: return at::kByte;
    case CTORCH_BOOL: return at::kBool;
    case CTORCH_INT8: return at::kChar;
    case CTORCH_INT16: return at::kShort;
  }
  TORCH_CHECK(false, "unknown dtype code ", dtype);
}

int32_t dtype_code(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return CTORCH_FLOAT32;
    case at::kDouble: return CTORCH_FLOAT64;
    case at::kHalf: return CTORCH_FLOAT16;
    case at::kBFloat16: return CTORCH_BFLOAT16;
    case at::kLong: return CTORCH_INT64;
    case at::kInt: return CTORCH_INT32;
    case at::kByte: return CTORCH_UINT8;
    case at::kBool: return CTORCH_BOOL;
    case at::kChar: return CTORCH_INT8;
    case at::kShort: return CTORCH_INT16;
    default: return -1;
  }
}

at::Device device(int32_t type, int32_t index) {
  switch (type) {
    case CTORCH_CPU: return at::Device(at::kCPU);
    case CTORCH_CUDA: return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  TORCH_CHECK(false, "unknown device type code ", type);
}

at::Scalar scalar(ctorch_scalar value) {
  switch (value.kind) {
    case 1: return at::Scalar(value.integer);
    case 2: return at::Scalar(value.integer != 0);
    default: return at::Scalar(value.real);
  }
}

ctorch_scalar from_scalar(const at::Scalar &value) {
  ctorch_scalar result{0, 0.0, 0};
  if (value.isBoolean()) {
    result.kind = 2;
    result.integer = value.toBool() ? 1 : 0;
    result.real = static_cast<double>(result.integer);
  } else if (value.isIntegral(false)) {
    result.kind = 1;
    result.integer = value.toLong();
    result.real = static_cast<double>(result.integer);
  } else {
    result.real = value.toDouble();
  }
  return result;
}

// The generator this thread's draws use when they name none (ctorch_set_thread_generator); empty
// means libtorch's default one. The shim holds its own reference, so freeing the handle is safe.
thread_local c10::optional<at::Generator> thread_generator;

c10::optional<at::Generator> generator(ctorch_generator handle) {
  if (handle == nullptr) return thread_generator;
  return handle->generator;
}

c10::optional<at::Generator> generator(ctorch_generator handle, int32_t device_type) {
  // The thread's generator is a CPU one: draws on another device that name none use that device's
  // default generator (seeded by ctorch_manual_seed). A handle named explicitly is passed on as is.
  if (handle == nullptr && device_type != CTORCH_CPU) return c10::nullopt;
  return generator(handle);
}

at::Generator current_cpu_generator() {
  return thread_generator.has_value() ? *thread_generator : at::detail::getDefaultCPUGenerator();
}

}  // namespace ctorch

using namespace ctorch;

extern "C" {

int32_t ctorch_abi_version(void) { return CTORCH_ABI_VERSION; }
const char *ctorch_last_error(void) { return last_error.c_str(); }
const char *ctorch_libtorch_version(void) { return TORCH_VERSION; }
bool ctorch_cuda_is_available(void) { return at::hasCUDA() && at::detail::getCUDAHooks().deviceCount() > 0; }
int32_t ctorch_cuda_device_count(void) { return at::hasCUDA() ? static_cast<int32_t>(at::detail::getCUDAHooks().deviceCount()) : 0; }
void ctorch_set_num_threads(int32_t count) { at::set_num_threads(count); }
int32_t ctorch_get_num_threads(void) { return at::get_num_threads(); }
int32_t ctorch_shim_parallel_thread_count(void) {
  std::mutex mutex;
  std::set<std::thread::id> threads;
  at::parallel_for(0, 1 << 16, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mutex);
    threads.insert(std::this_thread::get_id());
  });
  return static_cast<int32_t>(threads.size());
}
void ctorch_set_keep_freed_memory(bool keep) {
#if defined(__GLIBC__)
  // Keeping: no request is served by its own mmap (those are unmapped on free and fault in, zeroed,
  // page by page on the next use; the mmap threshold cannot be raised above 32 MiB, and a training
  // step's activations are larger), and the heap is never trimmed. glibc's defaults otherwise: up to
  // 65536 mmapped blocks, a dynamic mmap threshold from 128 KiB, trim at 128 KiB, no top pad.
  mallopt(M_MMAP_MAX, keep ? 0 : 65536);
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, keep ? -1 : 128 * 1024);
  mallopt(M_TOP_PAD, keep ? 64 * 1024 * 1024 : 0);
#else
  (void)keep;
#endif
}
void ctorch_manual_seed(uint64_t seed) {
  auto generator = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_current_seed(seed);
  }
  // Each GPU's default generator too (dropout and other draws on CUDA tensors use them).
  if (at::hasCUDA()) {
    for (c10::DeviceIndex index = 0; index < at::detail::getCUDAHooks().deviceCount(); ++index) {
      auto cuda = at::globalContext().defaultGenerator(at::Device(at::kCUDA, index));
      std::lock_guard<std::mutex> lock(cuda.mutex());
      cuda.set_current_seed(seed);
    }
  }
}
int64_t ctorch_cuda_peak_allocated_bytes(int32_t index) {
#if defined(CTORCH_WITH_CUDA)
  if (!ctorch_cuda_is_available()) return -1;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
#else
  (void)index;
  return -1;
#endif
}
void ctorch_set_allow_tf32(bool allow) {
  at::globalContext().setAllowTF32CuDNN(allow);
  at::globalContext().setAllowTF32CuBLAS(allow);
}
void ctorch_cuda_synchronize(int32_t index) {
  if (ctorch_cuda_is_available()) at::detail::getCUDAHooks().deviceSynchronize(static_cast<c10::DeviceIndex>(index));
}

ctorch_status ctorch_generator_new(uint64_t seed, ctorch_generator *out) {
  return guarded([&] { *out = new ctorch_generator_opaque{at::detail::createCPUGenerator(seed)}; });
}
void ctorch_generator_free(ctorch_generator generator) { delete generator; }
void ctorch_set_thread_generator(ctorch_generator handle) {
  thread_generator = handle ? c10::optional<at::Generator>(handle->generator) : c10::nullopt;
}
ctorch_status ctorch_generator_get_state(ctorch_generator handle, ctorch_tensor *out) {
  return guarded([&] {
    auto generator = handle ? handle->generator : at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    *out = wrap(generator.get_state());
  });
}
ctorch_status ctorch_generator_set_state(ctorch_generator handle, ctorch_tensor state) {
  return guarded([&] {
    auto generator = handle ? handle->generator : at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(unwrap(state));
  });
}

void ctorch_tensor_free(ctorch_tensor tensor) {
  if (tensor == nullptr) return;
  live_tensors.fetch_sub(1, std::memory_order_relaxed);
  delete tensor;
}
int64_t ctorch_live_tensor_count(void) { return live_tensors.load(std::memory_order_relaxed); }
int64_t ctorch_tensor_dim(ctorch_tensor t) { return t->tensor.dim(); }
int64_t ctorch_tensor_sizes(ctorch_tensor t, int64_t *sizes, int64_t capacity) {
  auto values = t->tensor.sizes();
  for (int64_t i = 0; i < capacity && i < static_cast<int64_t>(values.size()); ++i) sizes[i] = values[i];
  return static_cast<int64_t>(values.size());
}
int64_t ctorch_tensor_strides(ctorch_tensor t, int64_t *strides, int64_t capacity) {
  auto values = t->tensor.strides();
  for (int64_t i = 0; i < capacity && i < static_cast<int64_t>(values.size()); ++i) strides[i] = values[i];
  return static_cast<int64_t>(values.size());
}
int32_t ctorch_tensor_dtype(ctorch_tensor t) { return dtype_code(t->tensor.scalar_type()); }
int32_t ctorch_tensor_device_type(ctorch_tensor t) {
  return t->tensor.is_cuda() ? CTORCH_CUDA : CTORCH_CPU;
}
int32_t ctorch_tensor_device_index(ctorch_tensor t) { return t->tensor.is_cuda() ? t->tensor.device().index() : -1; }
int64_t ctorch_tensor_numel(ctorch_tensor t) { return t->tensor.numel(); }
bool ctorch_tensor_is_contiguous(ctorch_tensor t) { return t->tensor.is_contiguous(); }
bool ctorch_tensor_requires_grad(ctorch_tensor t) { return t->tensor.requires_grad(); }
bool ctorch_tensor_is_leaf(ctorch_tensor t) { return t->tensor.is_leaf(); }
void *ctorch_tensor_data(ctorch_tensor t) { return t->tensor.data_ptr(); }

ctorch_status ctorch_tensor_describe(ctorch_tensor t, void (*sink)(void *, const char *), void *context) {
  return guarded([&] {
    std::ostringstream stream;
    stream << unwrap(t);
    sink(context, stream.str().c_str());
  });
}
ctorch_status ctorch_tensor_share(ctorch_tensor t, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(unwrap(t)); });
}
ctorch_status ctorch_item(ctorch_tensor t, ctorch_scalar *out) {
  return guarded([&] { *out = from_scalar(unwrap(t).item()); });
}

ctorch_status ctorch_from_data(const void *data, const int64_t *sizes, int64_t count, int32_t dtype, ctorch_tensor *out) {
  return guarded([&] {
    auto tensor = at::empty(shape(sizes, count), at::TensorOptions().dtype(scalar_type(dtype)));
    if (tensor.numel() > 0) std::memcpy(tensor.data_ptr(), data, tensor.nbytes());
    *out = wrap(std::move(tensor));
  });
}
ctorch_status ctorch_from_blob(void *data, const int64_t *sizes, int64_t count, int32_t dtype, ctorch_deleter deleter, void *context,
                               ctorch_tensor *out) {
  return guarded([&] {
    auto tensor = at::from_blob(data, shape(sizes, count), [deleter, context](void *) { if (deleter) deleter(context); },
                                at::TensorOptions().dtype(scalar_type(dtype)));
    *out = wrap(std::move(tensor));
  });
}
ctorch_status ctorch_empty(const int64_t *sizes, int64_t count, int32_t dtype, int32_t dt, int32_t di, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::empty(shape(sizes, count), options(dtype, dt, di))); });
}
ctorch_status ctorch_full(const int64_t *sizes, int64_t count, ctorch_scalar value, int32_t dtype, int32_t dt, int32_t di, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::full(shape(sizes, count), scalar(value), options(dtype, dt, di))); });
}
ctorch_status ctorch_arange(ctorch_scalar start, ctorch_scalar end, ctorch_scalar step, int32_t dtype, int32_t dt, int32_t di,
                            ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::arange(scalar(start), scalar(end), scalar(step), options(dtype, dt, di))); });
}
ctorch_status ctorch_linspace(double start, double end, int64_t steps, int32_t dtype, int32_t dt, int32_t di, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::linspace(start, end, steps, options(dtype, dt, di))); });
}
ctorch_status ctorch_eye(int64_t rows, int64_t columns, int32_t dtype, int32_t dt, int32_t di, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::eye(rows, columns, options(dtype, dt, di))); });
}
ctorch_status ctorch_random(int32_t kind, const int64_t *sizes, int64_t count, int32_t dtype, int32_t dt, int32_t di,
                            ctorch_generator gen, ctorch_tensor *out) {
  return guarded([&] {
    auto o = options(dtype, dt, di);
    *out = wrap(kind == 1 ? at::randn(shape(sizes, count), generator(gen, dt), o) : at::rand(shape(sizes, count), generator(gen, dt), o));
  });
}
ctorch_status ctorch_randint(int64_t low, int64_t high, const int64_t *sizes, int64_t count, int32_t dtype, int32_t dt, int32_t di,
                             ctorch_generator gen, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::randint(low, high, shape(sizes, count), generator(gen, dt), options(dtype, dt, di))); });
}
ctorch_status ctorch_randperm(int64_t n, int32_t dt, int32_t di, ctorch_generator gen, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::randperm(n, generator(gen, dt), options(CTORCH_INT64, dt, di))); });
}
ctorch_status ctorch_to(ctorch_tensor t, int32_t dtype, int32_t dt, int32_t di, bool copy, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(unwrap(t).to(device(dt, di), scalar_type(dtype), false, copy)); });
}
ctorch_status ctorch_to_device_async(ctorch_tensor t, int32_t dt, int32_t di, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(unwrap(t).to(device(dt, di), /*non_blocking=*/true)); });
}
ctorch_status ctorch_pin_memory(ctorch_tensor t, ctorch_tensor *out) {
  return guarded([&] {
    auto &tensor = unwrap(t);
    // Page-locked memory needs a GPU runtime; without one the tensor is returned as it is.
    *out = wrap(ctorch_cuda_is_available() && tensor.is_cpu() ? tensor.pin_memory() : tensor);
  });
}

ctorch_status ctorch_uniform_(ctorch_tensor t, double low, double high, ctorch_generator gen) {
  return guarded([&] {
    unwrap(t).uniform_(low, high, generator(gen, unwrap(t).is_cpu() ? CTORCH_CPU : CTORCH_CUDA));
  });
}
ctorch_status ctorch_normal_(ctorch_tensor t, double mean, double std, ctorch_generator gen) {
  return guarded([&] {
    unwrap(t).normal_(mean, std, generator(gen, unwrap(t).is_cpu() ? CTORCH_CPU : CTORCH_CUDA));
  });
}
ctorch_status ctorch_fill_(ctorch_tensor t, ctorch_scalar value) {
  return guarded([&] {
    unwrap(t).fill_(scalar(value));
  });
}
ctorch_status ctorch_copy_(ctorch_tensor destination, ctorch_tensor source) {
  return guarded([&] {
    unwrap(destination).copy_(unwrap(source));
  });
}

ctorch_status ctorch_set_data(ctorch_tensor t, ctorch_tensor source) {
  return guarded([&] { unwrap(t).set_data(unwrap(source)); });
}

ctorch_status ctorch_set_requires_grad(ctorch_tensor t, bool requires_grad) {
  return guarded([&] { unwrap(t).set_requires_grad(requires_grad); });
}
ctorch_status ctorch_backward(ctorch_tensor t, ctorch_tensor gradient, bool retain_graph, bool create_graph) {
  return guarded([&] {
    auto g = gradient ? unwrap(gradient) : at::Tensor();
    unwrap(t).backward(g, retain_graph, create_graph);
  });
}
ctorch_status ctorch_grad(ctorch_tensor t, ctorch_tensor *out) {
  return guarded([&] {
    const auto &g = unwrap(t).grad();
    *out = g.defined() ? wrap(g) : nullptr;
  });
}
ctorch_status ctorch_set_grad(ctorch_tensor t, ctorch_tensor gradient) {
  return guarded([&] { unwrap(t).mutable_grad() = gradient ? unwrap(gradient) : at::Tensor(); });
}
bool ctorch_grad_enabled(void) { return at::GradMode::is_enabled(); }
void ctorch_set_grad_enabled(bool enabled) { at::GradMode::set_enabled(enabled); }
ctorch_status ctorch_inference_mode_enter(ctorch_guard *out) {
  return guarded([&] { *out = new ctorch_guard_opaque{}; });
}
void ctorch_guard_free(ctorch_guard guard) { delete guard; }
bool ctorch_is_inference_mode(void) { return c10::InferenceMode::is_enabled(); }

}  // extern "C"

// Autocast (mixed precision): libtorch's per-thread switch, per device type.
#include <ATen/autocast_mode.h>

extern "C" {

ctorch_status ctorch_autocast_enter(int32_t device_type, int32_t dtype, ctorch_autocast_state *previous) {
  return ctorch::guarded([&] {
    TORCH_CHECK(previous != nullptr, "the previous-state pointer is NULL");
    auto device = device_type == CTORCH_CUDA ? at::kCUDA : at::kCPU;
    previous->enabled = at::autocast::is_autocast_enabled(device);
    previous->dtype = ctorch::dtype_code(at::autocast::get_autocast_dtype(device));
    auto type = ctorch::scalar_type(dtype);
    TORCH_CHECK(type == at::kBFloat16 || type == at::kHalf, "autocast runs in bfloat16 or float16, not ", type);
    at::autocast::set_autocast_dtype(device, type);
    at::autocast::set_autocast_enabled(device, true);
    at::autocast::increment_nesting();
  });
}

ctorch_status ctorch_autocast_exit(int32_t device_type, ctorch_autocast_state previous) {
  return ctorch::guarded([&] {
    auto device = device_type == CTORCH_CUDA ? at::kCUDA : at::kCPU;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device, previous.enabled);
    at::autocast::set_autocast_dtype(device, ctorch::scalar_type(previous.dtype));
  });
}

bool ctorch_autocast_is_enabled(int32_t device_type) {
  return at::autocast::is_autocast_enabled(device_type == CTORCH_CUDA ? at::kCUDA : at::kCPU);
}

}  // extern "C"
