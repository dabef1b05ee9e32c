// The shim's CUDA deformable attention kernels as a PyTorch extension, so that attention_kernels.py can
// time and compare them with the official op in one Python process on the same tensors.
#include <torch/extension.h>

#include "deformable_attention_cuda.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &ctorch::cuda::deformable_attention_forward, "value [B,S,M,D], heights, widths, starts, locations, weights");
  m.def("backward", &ctorch::cuda::deformable_attention_backward, "... and grad_out [B,Q,M,D] -> [grad value, locations, weights]");
}
