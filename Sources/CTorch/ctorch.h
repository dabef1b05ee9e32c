/*
 * ctorch.h: swift-detr's C ABI over libtorch. Plain C; no C++ type crosses it.
 *
 * Ownership and errors
 * - Every function that can fail returns ctorch_status: CTORCH_OK (0) or CTORCH_ERROR (1). On error
 *   the C++ exception was caught at the boundary; ctorch_last_error() returns its message, kept per
 *   thread until the next failing call on that thread. Out-pointers are untouched on error.
 * - Every ctorch_tensor, ctorch_generator and ctorch_guard written through an out-pointer, or passed
 *   to a ctorch_tensor_sink, is a new handle owned by the caller, released exactly once with its
 *   _free function. Handles passed in are borrowed: the callee never frees or keeps them.
 * - A nullable tensor argument (documented as such) may be NULL for "none". A tensor out-pointer may
 *   receive NULL only where documented (an undefined gradient).
 * - Lists go in as (pointer, count) and come out through a ctorch_tensor_sink callback with a context
 *   pointer, called once per element in order.
 * - Strings returned are owned by the library and stay valid until the next call on the same thread.
 *
 * Stability: enum values and signatures only ever get added to; CTORCH_ABI_VERSION changes when an
 * existing one changes, and the Swift side refuses a shim whose ctorch_abi_version() differs.
 */
#ifndef CTORCH_H
#define CTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CTORCH_ABI_VERSION 1

typedef int32_t ctorch_status;
enum { CTORCH_OK = 0, CTORCH_ERROR = 1 };

typedef struct ctorch_tensor_opaque *ctorch_tensor;
typedef struct ctorch_generator_opaque *ctorch_generator;
typedef struct ctorch_guard_opaque *ctorch_guard;

typedef void (*ctorch_tensor_sink)(void *context, ctorch_tensor tensor);
typedef void (*ctorch_deleter)(void *context);

/* Element types. */
enum {
  CTORCH_FLOAT32 = 0, CTORCH_FLOAT64 = 1, CTORCH_FLOAT16 = 2, CTORCH_BFLOAT16 = 3,
  CTORCH_INT64 = 4, CTORCH_INT32 = 5, CTORCH_UINT8 = 6, CTORCH_BOOL = 7, CTORCH_INT8 = 8, CTORCH_INT16 = 9
};
/* Device types. */
enum { CTORCH_CPU = 0, CTORCH_CUDA = 1 };

/* A number with its kind, so that an integer tensor plus an integer stays an integer tensor. */
typedef struct {
  int32_t kind; /* 0 real, 1 integer, 2 boolean */
  double real;
  int64_t integer;
} ctorch_scalar;

/* Library. */
int32_t ctorch_abi_version(void);
const char *ctorch_last_error(void);
const char *ctorch_libtorch_version(void);
bool ctorch_cuda_is_available(void);
int32_t ctorch_cuda_device_count(void);
/* The most memory libtorch's allocator has held for tensors on a GPU since the process began, in bytes;
   -1 without CUDA or when the shim was built without the CUDA toolkit's headers. */
int64_t ctorch_cuda_peak_allocated_bytes(int32_t index);
/* Whether convolutions and matrix products on GPUs may use TensorFloat-32 (10-bit mantissa inputs):
   libtorch allows it for cuDNN convolutions and not for cuBLAS by default; this sets both. */
void ctorch_set_allow_tf32(bool allow);
/* Waits for all work queued on a GPU (no-op without CUDA). */
void ctorch_cuda_synchronize(int32_t index);
void ctorch_set_num_threads(int32_t count);
int32_t ctorch_get_num_threads(void);
/* How many threads the shim's own kernels (fused attention, dropout, max pool) run a large loop on:
 * at most ctorch_get_num_threads(); 1 with more threads set means the shim was built without the
 * OpenMP runtime libtorch uses, and its kernels run on the calling thread alone. */
int32_t ctorch_shim_parallel_thread_count(void);
/* Process-wide: when true, glibc malloc keeps freed memory for reuse (every block from the heap, no
 * mmap; the heap never trimmed) instead of returning it to the kernel, so that the large tensors of
 * each forward and backward pass are not page-faulted in anew. Off by default (glibc's policy). */
void ctorch_set_keep_freed_memory(bool keep);
void ctorch_manual_seed(uint64_t seed);

/* Generators (CPU). A NULL generator argument to a draw means the calling thread's generator: the
 * one ctorch_set_thread_generator gave it, else libtorch's default one. */
ctorch_status ctorch_generator_new(uint64_t seed, ctorch_generator *out);
void ctorch_generator_free(ctorch_generator generator);
/* Makes `generator` the calling thread's generator for every draw that names none (creation, fills,
 * ctorch_dropout); NULL gives the thread back to the default generator. The shim keeps its own
 * reference, so the handle may be freed while it is current. */
void ctorch_set_thread_generator(ctorch_generator generator);
/* The state as a uint8 tensor, to checkpoint; NULL generator = default CPU generator. */
ctorch_status ctorch_generator_get_state(ctorch_generator generator, ctorch_tensor *out);
ctorch_status ctorch_generator_set_state(ctorch_generator generator, ctorch_tensor state);

/* Tensor properties. */
void ctorch_tensor_free(ctorch_tensor tensor);
/* Tensor handles created and not yet freed, process-wide (to find leaks). */
int64_t ctorch_live_tensor_count(void);
int64_t ctorch_tensor_dim(ctorch_tensor tensor);
/* Writes min(dim, capacity) sizes (or strides); returns dim. */
int64_t ctorch_tensor_sizes(ctorch_tensor tensor, int64_t *sizes, int64_t capacity);
int64_t ctorch_tensor_strides(ctorch_tensor tensor, int64_t *strides, int64_t capacity);
int32_t ctorch_tensor_dtype(ctorch_tensor tensor);
int32_t ctorch_tensor_device_type(ctorch_tensor tensor);
int32_t ctorch_tensor_device_index(ctorch_tensor tensor);
int64_t ctorch_tensor_numel(ctorch_tensor tensor);
bool ctorch_tensor_is_contiguous(ctorch_tensor tensor);
bool ctorch_tensor_requires_grad(ctorch_tensor tensor);
bool ctorch_tensor_is_leaf(ctorch_tensor tensor);
/* Start of the data of a CPU tensor (after its storage offset). */
void *ctorch_tensor_data(ctorch_tensor tensor);
/* The tensor's printed form, through the sink as one string. */
ctorch_status ctorch_tensor_describe(ctorch_tensor tensor, void (*sink)(void *context, const char *text), void *context);
/* A new handle to the same tensor (shares storage and autograd identity). */
ctorch_status ctorch_tensor_share(ctorch_tensor tensor, ctorch_tensor *out);
ctorch_status ctorch_item(ctorch_tensor tensor, ctorch_scalar *out);

/* Creation. sizes/count describe the shape; dtype and device as the enums above. */
ctorch_status ctorch_from_data(const void *data, const int64_t *sizes, int64_t count, int32_t dtype, ctorch_tensor *out);
/* Wraps memory without copying; deleter(context) runs when the storage is released. */
ctorch_status ctorch_from_blob(void *data, const int64_t *sizes, int64_t count, int32_t dtype, ctorch_deleter deleter,
                               void *context, ctorch_tensor *out);
ctorch_status ctorch_empty(const int64_t *sizes, int64_t count, int32_t dtype, int32_t device_type, int32_t device_index, ctorch_tensor *out);
ctorch_status ctorch_full(const int64_t *sizes, int64_t count, ctorch_scalar value, int32_t dtype, int32_t device_type,
                          int32_t device_index, ctorch_tensor *out);
ctorch_status ctorch_arange(ctorch_scalar start, ctorch_scalar end, ctorch_scalar step, int32_t dtype, int32_t device_type,
                            int32_t device_index, ctorch_tensor *out);
ctorch_status ctorch_linspace(double start, double end, int64_t steps, int32_t dtype, int32_t device_type, int32_t device_index,
                              ctorch_tensor *out);
ctorch_status ctorch_eye(int64_t rows, int64_t columns, int32_t dtype, int32_t device_type, int32_t device_index, ctorch_tensor *out);
/* kind: 0 uniform [0, 1), 1 standard normal. */
ctorch_status ctorch_random(int32_t kind, const int64_t *sizes, int64_t count, int32_t dtype, int32_t device_type, int32_t device_index,
                            ctorch_generator generator, ctorch_tensor *out);
ctorch_status ctorch_randint(int64_t low, int64_t high, const int64_t *sizes, int64_t count, int32_t dtype, int32_t device_type,
                             int32_t device_index, ctorch_generator generator, ctorch_tensor *out);
ctorch_status ctorch_randperm(int64_t n, int32_t device_type, int32_t device_index, ctorch_generator generator, ctorch_tensor *out);
ctorch_status ctorch_to(ctorch_tensor tensor, int32_t dtype, int32_t device_type, int32_t device_index, bool copy, ctorch_tensor *out);
/* A copy on another device that may still be in flight when this returns (from pinned memory to a GPU,
   ordered on the device's current stream); the tensor itself when it is there already. */
ctorch_status ctorch_to_device_async(ctorch_tensor tensor, int32_t device_type, int32_t device_index, ctorch_tensor *out);
/* A copy in page-locked memory, which a GPU copies from asynchronously; the tensor itself without a GPU. */
ctorch_status ctorch_pin_memory(ctorch_tensor tensor, ctorch_tensor *out);

/* In-place initialisation and assignment (run without recording autograd history). */
ctorch_status ctorch_uniform_(ctorch_tensor tensor, double low, double high, ctorch_generator generator);
ctorch_status ctorch_normal_(ctorch_tensor tensor, double mean, double std, ctorch_generator generator);
ctorch_status ctorch_fill_(ctorch_tensor tensor, ctorch_scalar value);
ctorch_status ctorch_copy_(ctorch_tensor destination, ctorch_tensor source);
/* Makes tensor use source's data (any dtype or device), keeping its identity and requires_grad: how a
   module's parameters move to another dtype or device. */
ctorch_status ctorch_set_data(ctorch_tensor tensor, ctorch_tensor source);

/* Element-wise unary ops. */
enum {
  CTORCH_NEG = 0, CTORCH_EXP, CTORCH_LOG, CTORCH_SQRT, CTORCH_RSQRT, CTORCH_ABS, CTORCH_SIGMOID, CTORCH_TANH, CTORCH_RELU,
  CTORCH_GELU, CTORCH_GELU_TANH, CTORCH_SIN, CTORCH_COS, CTORCH_FLOOR, CTORCH_CEIL, CTORCH_ROUND, CTORCH_SIGN,
  CTORCH_LOGICAL_NOT, CTORCH_LOG1P, CTORCH_EXPM1, CTORCH_RECIPROCAL, CTORCH_ERF, CTORCH_ATAN, CTORCH_SILU, CTORCH_ISNAN,
  CTORCH_ISFINITE, CTORCH_CLONE, CTORCH_CONTIGUOUS, CTORCH_DETACH, CTORCH_ZEROS_LIKE, CTORCH_ONES_LIKE, CTORCH_SQUARE,
  CTORCH_LOG2, CTORCH_TRUNC, CTORCH_EMPTY_LIKE
};
ctorch_status ctorch_unary(int32_t op, ctorch_tensor tensor, ctorch_tensor *out);
/* In place: NEG, EXP, LOG, SQRT, ABS, SIGMOID, TANH, RELU, ZERO (as CTORCH_ZEROS_LIKE). */
ctorch_status ctorch_unary_(int32_t op, ctorch_tensor tensor);

/* Element-wise binary ops with broadcasting and type promotion. */
enum {
  CTORCH_ADD = 0, CTORCH_SUB, CTORCH_MUL, CTORCH_DIV, CTORCH_POW, CTORCH_MAXIMUM, CTORCH_MINIMUM, CTORCH_EQ, CTORCH_NE,
  CTORCH_LT, CTORCH_LE, CTORCH_GT, CTORCH_GE, CTORCH_LOGICAL_AND, CTORCH_LOGICAL_OR, CTORCH_LOGICAL_XOR, CTORCH_REMAINDER,
  CTORCH_FLOOR_DIVIDE, CTORCH_ATAN2, CTORCH_MATMUL, CTORCH_BMM, CTORCH_MM, CTORCH_DIV_FLOOR, CTORCH_DIV_TRUNC,
  CTORCH_RSUB, CTORCH_RDIV, CTORCH_RPOW
};
ctorch_status ctorch_binary(int32_t op, ctorch_tensor left, ctorch_tensor right, ctorch_tensor *out);
/* tensor op scalar; RSUB, RDIV and RPOW compute scalar op tensor. */
ctorch_status ctorch_binary_scalar(int32_t op, ctorch_tensor left, ctorch_scalar right, ctorch_tensor *out);
/* In place on left: ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM. */
ctorch_status ctorch_binary_(int32_t op, ctorch_tensor left, ctorch_tensor right);
ctorch_status ctorch_binary_scalar_(int32_t op, ctorch_tensor left, ctorch_scalar right);
/* left + alpha * right, in place on left. */
ctorch_status ctorch_add_scaled_(ctorch_tensor left, ctorch_tensor right, ctorch_scalar alpha);
/* tensor += value * a * b (ADDCMUL) or value * a / b (ADDCDIV), in place. */
ctorch_status ctorch_addcmul_(ctorch_tensor tensor, ctorch_tensor a, ctorch_tensor b, ctorch_scalar value);
ctorch_status ctorch_addcdiv_(ctorch_tensor tensor, ctorch_tensor a, ctorch_tensor b, ctorch_scalar value);
/* tensor += weight * (end - tensor), in place. */
ctorch_status ctorch_lerp_(ctorch_tensor tensor, ctorch_tensor end, ctorch_scalar weight);
ctorch_status ctorch_clamp(ctorch_tensor tensor, bool has_min, double min, bool has_max, double max, ctorch_tensor *out);
ctorch_status ctorch_clamp_(ctorch_tensor tensor, bool has_min, double min, bool has_max, double max);
ctorch_status ctorch_where(ctorch_tensor condition, ctorch_tensor a, ctorch_tensor b, ctorch_tensor *out);
ctorch_status ctorch_allclose(ctorch_tensor a, ctorch_tensor b, double rtol, double atol, bool *out);

/* Reductions over dims (count 0 = all dims). */
enum {
  CTORCH_SUM = 0, CTORCH_MEAN, CTORCH_AMAX, CTORCH_AMIN, CTORCH_PROD, CTORCH_ALL, CTORCH_ANY, CTORCH_LOGSUMEXP,
  CTORCH_VAR, CTORCH_STD, CTORCH_VAR_UNBIASED, CTORCH_STD_UNBIASED
};
ctorch_status ctorch_reduce(int32_t op, ctorch_tensor tensor, const int64_t *dims, int64_t count, bool keepdim, ctorch_tensor *out);
ctorch_status ctorch_norm(ctorch_tensor tensor, double p, const int64_t *dims, int64_t count, bool keepdim, ctorch_tensor *out);
/* op: 0 max, 1 min. Values and indices along dim. */
ctorch_status ctorch_extreme_dim(int32_t op, ctorch_tensor tensor, int64_t dim, bool keepdim, ctorch_tensor *values, ctorch_tensor *indices);
/* op: 0 argmax, 1 argmin; has_dim false = over the flattened tensor. */
ctorch_status ctorch_arg_extreme(int32_t op, ctorch_tensor tensor, bool has_dim, int64_t dim, bool keepdim, ctorch_tensor *out);
/* op: 0 softmax, 1 log_softmax, 2 cumsum, 3 cumprod. */
ctorch_status ctorch_along_dim(int32_t op, ctorch_tensor tensor, int64_t dim, ctorch_tensor *out);
ctorch_status ctorch_topk(ctorch_tensor tensor, int64_t k, int64_t dim, bool largest, bool sorted, ctorch_tensor *values,
                          ctorch_tensor *indices);
ctorch_status ctorch_sort(ctorch_tensor tensor, int64_t dim, bool descending, bool stable, ctorch_tensor *values, ctorch_tensor *indices);
/* Sorted unique values; inverse and counts may be NULL. */
ctorch_status ctorch_unique(ctorch_tensor tensor, ctorch_tensor *values, ctorch_tensor *inverse, ctorch_tensor *counts);
ctorch_status ctorch_nonzero(ctorch_tensor tensor, ctorch_tensor *out);

/* Shapes and views. */
enum { CTORCH_VIEW = 0, CTORCH_RESHAPE, CTORCH_PERMUTE, CTORCH_EXPAND, CTORCH_REPEAT, CTORCH_FLIP };
ctorch_status ctorch_reshape(int32_t op, ctorch_tensor tensor, const int64_t *values, int64_t count, ctorch_tensor *out);
ctorch_status ctorch_transpose(ctorch_tensor tensor, int64_t dim0, int64_t dim1, ctorch_tensor *out);
ctorch_status ctorch_flatten(ctorch_tensor tensor, int64_t start_dim, int64_t end_dim, ctorch_tensor *out);
/* has_dim false squeezes all size-1 dims. */
ctorch_status ctorch_squeeze(ctorch_tensor tensor, bool has_dim, int64_t dim, ctorch_tensor *out);
ctorch_status ctorch_unsqueeze(ctorch_tensor tensor, int64_t dim, ctorch_tensor *out);
/* op: 0 cat, 1 stack. */
ctorch_status ctorch_join(int32_t op, const ctorch_tensor *tensors, int64_t count, int64_t dim, ctorch_tensor *out);
/* Pieces of split_size along dim (the last may be smaller), or of the given sizes. */
ctorch_status ctorch_split(ctorch_tensor tensor, int64_t split_size, int64_t dim, ctorch_tensor_sink sink, void *context);
ctorch_status ctorch_split_sizes(ctorch_tensor tensor, const int64_t *sizes, int64_t count, int64_t dim, ctorch_tensor_sink sink,
                                 void *context);
ctorch_status ctorch_chunk(ctorch_tensor tensor, int64_t chunks, int64_t dim, ctorch_tensor_sink sink, void *context);
/* A strided slice [start, end) with step along dim (a view). */
ctorch_status ctorch_slice(ctorch_tensor tensor, int64_t dim, int64_t start, int64_t end, int64_t step, ctorch_tensor *out);
ctorch_status ctorch_select(ctorch_tensor tensor, int64_t dim, int64_t index, ctorch_tensor *out);
ctorch_status ctorch_index_select(ctorch_tensor tensor, int64_t dim, ctorch_tensor index, ctorch_tensor *out);
ctorch_status ctorch_gather(ctorch_tensor tensor, int64_t dim, ctorch_tensor index, ctorch_tensor *out);
/* op: 0 scatter (replace), 1 scatter_add. */
ctorch_status ctorch_scatter(int32_t op, ctorch_tensor tensor, int64_t dim, ctorch_tensor index, ctorch_tensor source, ctorch_tensor *out);
ctorch_status ctorch_masked_fill(ctorch_tensor tensor, ctorch_tensor mask, ctorch_scalar value, ctorch_tensor *out);
ctorch_status ctorch_masked_fill_(ctorch_tensor tensor, ctorch_tensor mask, ctorch_scalar value);
ctorch_status ctorch_masked_select(ctorch_tensor tensor, ctorch_tensor mask, ctorch_tensor *out);
/* Advanced indexing tensor[indices...]; a NULL entry means a full slice of that dim. */
ctorch_status ctorch_index(ctorch_tensor tensor, const ctorch_tensor *indices, int64_t count, ctorch_tensor *out);
ctorch_status ctorch_index_put_(ctorch_tensor tensor, const ctorch_tensor *indices, int64_t count, ctorch_tensor values, bool accumulate);
/* Constant padding: pads holds (before, after) pairs starting from the last dim. */
ctorch_status ctorch_constant_pad(ctorch_tensor tensor, const int64_t *pads, int64_t count, double value, ctorch_tensor *out);
/* op: 0 tril, 1 triu. */
ctorch_status ctorch_triangle(int32_t op, ctorch_tensor tensor, int64_t diagonal, ctorch_tensor *out);

/* Neural-network functions. Layouts are PyTorch's: images [batch, channels, height, width]. */
ctorch_status ctorch_linear(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias /* nullable */, ctorch_tensor *out);
ctorch_status ctorch_conv2d(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias /* nullable */, const int64_t stride[2],
                            const int64_t padding[2], const int64_t dilation[2], int64_t groups, ctorch_tensor *out);
ctorch_status ctorch_max_pool2d(ctorch_tensor input, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                                const int64_t dilation[2], bool ceil_mode, ctorch_tensor *out);
ctorch_status ctorch_avg_pool2d(ctorch_tensor input, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                                bool ceil_mode, bool count_include_pad, ctorch_tensor *out);
/* op: 0 average, 1 max. */
ctorch_status ctorch_adaptive_pool2d(int32_t op, ctorch_tensor input, const int64_t size[2], ctorch_tensor *out);
/* mode: 0 nearest (PyTorch's legacy "nearest"), 1 bilinear, 2 bicubic, 3 nearest-exact. align_corners only for 1 and 2. */
ctorch_status ctorch_interpolate(ctorch_tensor input, int32_t mode, const int64_t size[2], bool align_corners, ctorch_tensor *out);
/* Greedy non-maximum suppression of corner boxes [n, 4] with scores [n], within each class of classes [n] (int64,
   nullable: one class): the kept indices (int64), highest score first, equal scores in input order. A box is dropped when
   its IoU with a kept box of its class exceeds iou_threshold. Runs on the CPU. */
ctorch_status ctorch_batched_nms(ctorch_tensor boxes, ctorch_tensor scores, ctorch_tensor classes /* nullable */, double iou_threshold,
                                 ctorch_tensor *out);
/* mode: 0 bilinear, 1 nearest, 2 bicubic; padding: 0 zeros, 1 border, 2 reflection. */
ctorch_status ctorch_grid_sample(ctorch_tensor input, ctorch_tensor grid, int32_t mode, int32_t padding, bool align_corners,
                                 ctorch_tensor *out);
ctorch_status ctorch_layer_norm(ctorch_tensor input, const int64_t *shape, int64_t count, ctorch_tensor weight /* nullable */,
                                ctorch_tensor bias /* nullable */, double eps, ctorch_tensor *out);
ctorch_status ctorch_group_norm(ctorch_tensor input, int64_t groups, ctorch_tensor weight /* nullable */, ctorch_tensor bias /* nullable */,
                                double eps, ctorch_tensor *out);
/* Updates running_mean and running_var in place when training. */
ctorch_status ctorch_batch_norm(ctorch_tensor input, ctorch_tensor weight /* nullable */, ctorch_tensor bias /* nullable */,
                                ctorch_tensor running_mean /* nullable */, ctorch_tensor running_var /* nullable */, bool training,
                                double momentum, double eps, ctorch_tensor *out);
/* Zeroes each element with the given probability and scales the rest by 1 / (1 - probability) when
 * training; returns the input otherwise. On the CPU the mask comes from a hash of a per-call seed
 * (one draw from the default CPU generator) and the element's index: parallel, independent of the
 * thread count, kept as bytes for the backward pass. Other devices use libtorch's dropout. */
ctorch_status ctorch_dropout(ctorch_tensor input, double probability, bool training, ctorch_tensor *out);
ctorch_status ctorch_embedding(ctorch_tensor weight, ctorch_tensor indices, ctorch_tensor *out);
/* Losses. reduction: 0 none, 1 mean, 2 sum. */
ctorch_status ctorch_binary_cross_entropy_with_logits(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight /* nullable */,
                                                      ctorch_tensor pos_weight /* nullable */, int32_t reduction, ctorch_tensor *out);
ctorch_status ctorch_cross_entropy(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight /* nullable */, int32_t reduction,
                                   int64_t ignore_index, double label_smoothing, ctorch_tensor *out);
/* op: 0 l1, 1 mse, 2 smooth l1 (beta). */
ctorch_status ctorch_regression_loss(int32_t op, ctorch_tensor input, ctorch_tensor target, int32_t reduction, double beta,
                                     ctorch_tensor *out);

/* Multi-scale deformable attention, fused (CPU, float32/float64), differentiable in value, locations
   and weights: value [B, S, M, D], shapes int64 [L, 2] (height, width), starts int64 [L],
   locations [B, Q, M, L, P, 2] (x, y in [0, 1]), weights [B, Q, M, L, P] -> [B, Q, M * D]. Samples
   are bilinear with zeros outside each map (grid_sample's align_corners=false convention). */
/* Whether ctorch_fused_deformable_attention runs on a device type (CPU always; CUDA when the shim was
   built with a CUDA compiler). */
bool ctorch_fused_deformable_attention_available(int32_t device_type);
ctorch_status ctorch_fused_deformable_attention(ctorch_tensor value, ctorch_tensor shapes, ctorch_tensor starts, ctorch_tensor locations,
                                                ctorch_tensor weights, ctorch_tensor *out);

/* PyTorch archives: torch.save's zip format, read with libtorch's own archive reader
 * (caffe2::serialize::PyTorchStreamReader). Only bytes come out; the pickle inside is decoded by the caller. */
typedef struct ctorch_archive_opaque *ctorch_archive;
ctorch_status ctorch_archive_open(const char *path, ctorch_archive *out);
void ctorch_archive_free(ctorch_archive archive);
/* Each record's name, relative to the archive's top folder (e.g. "data.pkl", "data/0"), through the sink. */
ctorch_status ctorch_archive_records(ctorch_archive archive, void (*sink)(void *context, const char *name), void *context);
/* One record's bytes as a new 1-D uint8 tensor. */
ctorch_status ctorch_archive_read(ctorch_archive archive, const char *name, ctorch_tensor *out);
/* A tensor stored in a storage: bytes (1-D uint8, a whole number of dtype elements) viewed as dtype, then
 * sizes/strides/offset in elements (bounds checked), copied into a new contiguous tensor. */
ctorch_status ctorch_tensor_from_storage(ctorch_tensor bytes, int32_t dtype, int64_t offset, const int64_t *sizes, const int64_t *strides,
                                         int64_t count, ctorch_tensor *out);

/* Autograd. */
ctorch_status ctorch_set_requires_grad(ctorch_tensor tensor, bool requires_grad);
/* gradient may be NULL for a scalar output. */
ctorch_status ctorch_backward(ctorch_tensor tensor, ctorch_tensor gradient, bool retain_graph, bool create_graph);
/* Writes NULL when the tensor has no gradient. */
ctorch_status ctorch_grad(ctorch_tensor tensor, ctorch_tensor *out);
/* gradient NULL clears it. */
ctorch_status ctorch_set_grad(ctorch_tensor tensor, ctorch_tensor gradient);
bool ctorch_grad_enabled(void);
void ctorch_set_grad_enabled(bool enabled);
/* Inference mode for the calling thread until the guard is freed (on the same thread). */
ctorch_status ctorch_inference_mode_enter(ctorch_guard *out);
void ctorch_guard_free(ctorch_guard guard);
bool ctorch_is_inference_mode(void);

/* Autocast (mixed precision) for the calling thread: ops on that device type that libtorch lists run in
 * dtype (bfloat16 or float16), the others in float32. enter writes the state it replaces; exit restores it. */
typedef struct {
  bool enabled;
  int32_t dtype;
} ctorch_autocast_state;
ctorch_status ctorch_autocast_enter(int32_t device_type, int32_t dtype, ctorch_autocast_state *previous);
ctorch_status ctorch_autocast_exit(int32_t device_type, ctorch_autocast_state previous);
bool ctorch_autocast_is_enabled(int32_t device_type);

/* Distributed: process groups of libtorch's c10d (a TCP store for the rendezvous; Gloo for CPU tensors,
 * NCCL for CUDA tensors). Collectives block until every rank joins, or fail with the lost peer's error. */
typedef struct ctorch_process_group_opaque *ctorch_process_group;
typedef struct ctorch_work_opaque *ctorch_work;
enum { CTORCH_REDUCE_SUM = 0, CTORCH_REDUCE_MAX = 1, CTORCH_REDUCE_MIN = 2 };
/* Whether this shim can create a group with the backend ("gloo", "nccl"). */
bool ctorch_distributed_available(const char *backend);
/* Joins a group of world_size ranks: rank 0 serves the TCP store on store_host:store_port, every rank
 * connects to it and waits at most timeout_ms (also the limit of each collective). Gloo binds to the
 * network interface interface_name when given, else to the address of local_host when given, else to
 * the address of this machine's host name. */
ctorch_status ctorch_process_group_create(const char *backend, const char *store_host, int32_t store_port, int32_t rank,
                                          int32_t world_size, int64_t timeout_ms, const char *local_host,
                                          const char *interface_name, ctorch_process_group *out);
void ctorch_process_group_free(ctorch_process_group group);
/* Reduces the tensors in place across ranks. With out NULL it waits; else it writes a work item to wait for. */
ctorch_status ctorch_all_reduce(ctorch_process_group group, const ctorch_tensor *tensors, int64_t count, int32_t op, ctorch_work *out);
ctorch_status ctorch_work_wait(ctorch_work work);
void ctorch_work_free(ctorch_work work);
/* Copies root's tensors into every rank's, in place. */
ctorch_status ctorch_broadcast(ctorch_process_group group, const ctorch_tensor *tensors, int64_t count, int32_t root);
/* Every rank's input (same shape and type on every rank), in rank order, through the sink. */
ctorch_status ctorch_all_gather(ctorch_process_group group, ctorch_tensor input, ctorch_tensor_sink sink, void *context);
ctorch_status ctorch_barrier(ctorch_process_group group);
/* c10d's Reducer, DistributedDataParallel's engine: hooks the parameters' gradient accumulators and
 * all-reduces buckets of gradients (bucket_bytes each, the first first_bucket_bytes) while the backward
 * pass runs, leaving each parameter's grad averaged over the ranks when backward returns. Call
 * prepare_for_backward with the loss before each backward pass; with find_unused_parameters, parameters
 * the loss does not reach count as zero gradients. */
typedef struct ctorch_reducer_opaque *ctorch_reducer;
ctorch_status ctorch_reducer_create(ctorch_process_group group, const ctorch_tensor *parameters, int64_t count, int64_t bucket_bytes,
                                    int64_t first_bucket_bytes, bool find_unused_parameters, ctorch_reducer *out);
ctorch_status ctorch_reducer_prepare_for_backward(ctorch_reducer reducer, const ctorch_tensor *outputs, int64_t count);
void ctorch_reducer_free(ctorch_reducer reducer);
/* The group's store: a key set by any rank is seen by all (while rank 0, which serves it, lives). */
ctorch_status ctorch_store_set(ctorch_process_group group, const char *key, const char *value);
ctorch_status ctorch_store_has(ctorch_process_group group, const char *key, bool *out);

#ifdef __cplusplus
}
#endif

#endif
