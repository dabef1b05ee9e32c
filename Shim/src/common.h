// Internal helpers shared by the shim's translation units. Not part of the C ABI.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <exception>
#include <string>
#include <vector>

#include "ctorch.h"

struct ctorch_tensor_opaque {
  at::Tensor tensor;
};

namespace ctorch {

void set_error(const std::string &message);

// Runs body, converting any exception into CTORCH_ERROR with its message kept for the thread.
template <typename Body>
ctorch_status guarded(Body &&body) {
  try {
    body();
    return CTORCH_OK;
  } catch (const c10::Error &error) {
    set_error(error.what_without_backtrace());
  } catch (const std::exception &error) {
    set_error(error.what());
  } catch (...) {
    set_error("unknown C++ exception");
  }
  return CTORCH_ERROR;
}

inline at::Tensor &unwrap(ctorch_tensor handle) {
  TORCH_CHECK(handle != nullptr, "a tensor argument is NULL");
  return handle->tensor;
}
inline c10::optional<at::Tensor> unwrap_optional(ctorch_tensor handle) {
  if (handle == nullptr) return c10::nullopt;
  return handle->tensor;
}
extern std::atomic<int64_t> live_tensors;
inline ctorch_tensor wrap(at::Tensor tensor) {
  live_tensors.fetch_add(1, std::memory_order_relaxed);
  return new ctorch_tensor_opaque{std::move(tensor)};
}

at::ScalarType scalar_type(int32_t dtype);
int32_t dtype_code(at::ScalarType type);
at::Device device(int32_t type, int32_t index);
at::Scalar scalar(ctorch_scalar value);
ctorch_scalar from_scalar(const at::Scalar &value);
c10::optional<at::Generator> generator(ctorch_generator handle);
c10::optional<at::Generator> generator(ctorch_generator handle, int32_t device_type);
/// The calling thread's generator (ctorch_set_thread_generator), else libtorch's default CPU one.
at::Generator current_cpu_generator();

// Dropout: on the CPU in training, the counter-based kernel of dropout.cpp; otherwise at::dropout.
at::Tensor dropout(const at::Tensor &input, double probability, bool training);
// 2-D max pooling: without gradient on the CPU, the separable passes of max_pool.cpp; otherwise at::max_pool2d.
at::Tensor max_pool2d(const at::Tensor &input, at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                      at::IntArrayRef dilation, bool ceil_mode);

inline at::IntArrayRef shape(const int64_t *values, int64_t count) { return at::IntArrayRef(values, static_cast<size_t>(count)); }
inline at::TensorOptions options(int32_t dtype, int32_t device_type, int32_t device_index) {
  return at::TensorOptions().dtype(scalar_type(dtype)).device(device(device_type, device_index));
}
inline void emit(const std::vector<at::Tensor> &tensors, ctorch_tensor_sink sink, void *context) {
  for (const auto &tensor : tensors) sink(context, wrap(tensor));
}

}  // namespace ctorch
