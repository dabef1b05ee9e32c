// Element-wise, reduction, shape and indexing ops.
#include "common.h"

using namespace ctorch;

namespace {

at::Tensor unary(int32_t op, const at::Tensor &x) {
  switch (op) {
    case CTORCH_NEG: return at::neg(x);
    case CTORCH_EXP: return at::exp(x);
    case CTORCH_LOG: return at::log(x);
    case CTORCH_SQRT: return at::sqrt(x);
    case CTORCH_RSQRT: return at::rsqrt(x);
    case CTORCH_ABS: return at::abs(x);
    case CTORCH_SIGMOID: return at::sigmoid(x);
    case CTORCH_TANH: return at::tanh(x);
    case CTORCH_RELU: return at::relu(x);
    case CTORCH_GELU: return at::gelu(x);
    case CTORCH_GELU_TANH: return at::gelu(x, "tanh");
    case CTORCH_SIN: return at::sin(x);
    case CTORCH_COS: return at::cos(x);
    case CTORCH_FLOOR: return at::floor(x);
    case CTORCH_CEIL: return at::ceil(x);
    case CTORCH_ROUND: return at::round(x);
    case CTORCH_SIGN: return at::sign(x);
    case CTORCH_LOGICAL_NOT: return at::logical_not(x);
    case CTORCH_LOG1P: return at::log1p(x);
    case CTORCH_EXPM1: return at::expm1(x);
    case CTORCH_RECIPROCAL: return at::reciprocal(x);
    case CTORCH_ERF: return at::erf(x);
    case CTORCH_ATAN: return at::atan(x);
    case CTORCH_SILU: return at::silu(x);
    case CTORCH_ISNAN: return at::isnan(x);
    case CTORCH_ISFINITE: return at::isfinite(x);
    case CTORCH_CLONE: return x.clone();
    case CTORCH_CONTIGUOUS: return x.contiguous();
    case CTORCH_DETACH: return x.detach();
    case CTORCH_ZEROS_LIKE: return at::zeros_like(x);
    case CTORCH_ONES_LIKE: return at::ones_like(x);
    case CTORCH_SQUARE: return at::square(x);
    case CTORCH_LOG2: return at::log2(x);
    case CTORCH_TRUNC: return at::trunc(x);
    case CTORCH_EMPTY_LIKE: return at::empty_like(x);
  }
  TORCH_CHECK(false, "unknown unary op code ", op);
}

void unary_in_place(int32_t op, at::Tensor &x) {
  switch (op) {
    case CTORCH_NEG: x.neg_(); return;
    case CTORCH_EXP: x.exp_(); return;
    case CTORCH_LOG: x.log_(); return;
    case CTORCH_SQRT: x.sqrt_(); return;
    case CTORCH_ABS: x.abs_(); return;
    case CTORCH_SIGMOID: x.sigmoid_(); return;
    case CTORCH_TANH: x.tanh_(); return;
    case CTORCH_RELU: x.relu_(); return;
    case CTORCH_ZEROS_LIKE: x.zero_(); return;
  }
  TORCH_CHECK(false, "op code ", op, " has no in-place form");
}

at::Tensor binary(int32_t op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
    case CTORCH_ADD: return at::add(a, b);
    case CTORCH_SUB: return at::sub(a, b);
    case CTORCH_MUL: return at::mul(a, b);
    case CTORCH_DIV: return at::div(a, b);
    case CTORCH_POW: return at::pow(a, b);
    case CTORCH_MAXIMUM: return at::maximum(a, b);
    case CTORCH_MINIMUM: return at::minimum(a, b);
    case CTORCH_EQ: return at::eq(a, b);
    case CTORCH_NE: return at::ne(a, b);
    case CTORCH_LT: return at::lt(a, b);
    case CTORCH_LE: return at::le(a, b);
    case CTORCH_GT: return at::gt(a, b);
    case CTORCH_GE: return at::ge(a, b);
    case CTORCH_LOGICAL_AND: return at::logical_and(a, b);
    case CTORCH_LOGICAL_OR: return at::logical_or(a, b);
    case CTORCH_LOGICAL_XOR: return at::logical_xor(a, b);
    case CTORCH_REMAINDER: return at::remainder(a, b);
    case CTORCH_FLOOR_DIVIDE: return at::floor_divide(a, b);
    case CTORCH_ATAN2: return at::atan2(a, b);
    case CTORCH_MATMUL: return at::matmul(a, b);
    case CTORCH_BMM: return at::bmm(a, b);
    case CTORCH_MM: return at::mm(a, b);
    case CTORCH_DIV_FLOOR: return at::div(a, b, "floor");
    case CTORCH_DIV_TRUNC: return at::div(a, b, "trunc");
    case CTORCH_RSUB: return at::sub(b, a);
    case CTORCH_RDIV: return at::div(b, a);
    case CTORCH_RPOW: return at::pow(b, a);
  }
  TORCH_CHECK(false, "unknown binary op code ", op);
}

at::Tensor binary_scalar(int32_t op, const at::Tensor &a, const at::Scalar &s) {
  switch (op) {
    case CTORCH_ADD: return at::add(a, s);
    case CTORCH_SUB: return at::sub(a, s);
    case CTORCH_MUL: return at::mul(a, s);
    case CTORCH_DIV: return at::div(a, s);
    case CTORCH_POW: return at::pow(a, s);
    case CTORCH_EQ: return at::eq(a, s);
    case CTORCH_NE: return at::ne(a, s);
    case CTORCH_LT: return at::lt(a, s);
    case CTORCH_LE: return at::le(a, s);
    case CTORCH_GT: return at::gt(a, s);
    case CTORCH_GE: return at::ge(a, s);
    case CTORCH_REMAINDER: return at::remainder(a, s);
    case CTORCH_FLOOR_DIVIDE: return at::floor_divide(a, s);
    case CTORCH_DIV_FLOOR: return at::div(a, s, "floor");
    case CTORCH_DIV_TRUNC: return at::div(a, s, "trunc");
    case CTORCH_MAXIMUM: return at::clamp_min(a, s);
    case CTORCH_MINIMUM: return at::clamp_max(a, s);
    case CTORCH_RSUB: return at::rsub(a, s);
    case CTORCH_RDIV: return at::mul(at::reciprocal(a), s);
    case CTORCH_RPOW: return at::pow(s, a);
  }
  TORCH_CHECK(false, "binary op code ", op, " has no scalar form");
}

at::Tensor reduce(int32_t op, const at::Tensor &x, at::IntArrayRef dims, bool keepdim) {
  bool all = dims.empty();
  switch (op) {
    case CTORCH_SUM: return all && !keepdim ? at::sum(x) : at::sum(x, dims, keepdim);
    case CTORCH_MEAN: return all && !keepdim ? at::mean(x) : at::mean(x, dims, keepdim);
    case CTORCH_AMAX: return at::amax(x, dims, keepdim);
    case CTORCH_AMIN: return at::amin(x, dims, keepdim);
    case CTORCH_PROD:
      if (all) return keepdim ? at::prod(x).reshape(std::vector<int64_t>(x.dim(), 1)) : at::prod(x);
      TORCH_CHECK(dims.size() == 1, "prod reduces over one dim at a time");
      return at::prod(x, dims[0], keepdim);
    case CTORCH_ALL:
      if (all) return keepdim ? at::all(x).reshape(std::vector<int64_t>(x.dim(), 1)) : at::all(x);
      return at::all(x, dims, keepdim);
    case CTORCH_ANY:
      if (all) return keepdim ? at::any(x).reshape(std::vector<int64_t>(x.dim(), 1)) : at::any(x);
      return at::any(x, dims, keepdim);
    case CTORCH_LOGSUMEXP: {
      std::vector<int64_t> every;
      for (int64_t i = 0; i < x.dim(); ++i) every.push_back(i);
      return at::logsumexp(x, all ? at::IntArrayRef(every) : dims, keepdim);
    }
    case CTORCH_VAR: return at::var(x, all ? at::OptionalIntArrayRef() : dims, 0, keepdim);
    case CTORCH_STD: return at::std(x, all ? at::OptionalIntArrayRef() : dims, 0, keepdim);
    case CTORCH_VAR_UNBIASED: return at::var(x, all ? at::OptionalIntArrayRef() : dims, 1, keepdim);
    case CTORCH_STD_UNBIASED: return at::std(x, all ? at::OptionalIntArrayRef() : dims, 1, keepdim);
  }
  TORCH_CHECK(false, "unknown reduction code ", op);
}

c10::List<c10::optional<at::Tensor>> index_list(const ctorch_tensor *indices, int64_t count) {
  c10::List<c10::optional<at::Tensor>> list;
  list.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) list.push_back(unwrap_optional(indices[i]));
  return list;
}

}  // namespace

extern "C" {

ctorch_status ctorch_unary(int32_t op, ctorch_tensor t, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(unary(op, unwrap(t))); });
}
ctorch_status ctorch_unary_(int32_t op, ctorch_tensor t) {
  return guarded([&] { unary_in_place(op, unwrap(t)); });
}
ctorch_status ctorch_binary(int32_t op, ctorch_tensor a, ctorch_tensor b, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(binary(op, unwrap(a), unwrap(b))); });
}
ctorch_status ctorch_binary_scalar(int32_t op, ctorch_tensor a, ctorch_scalar s, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(binary_scalar(op, unwrap(a), scalar(s))); });
}
ctorch_status ctorch_binary_(int32_t op, ctorch_tensor a, ctorch_tensor b) {
  return guarded([&] {
    auto &x = unwrap(a);
    const auto &y = unwrap(b);
    switch (op) {
      case CTORCH_ADD: x.add_(y); return;
      case CTORCH_SUB: x.sub_(y); return;
      case CTORCH_MUL: x.mul_(y); return;
      case CTORCH_DIV: x.div_(y); return;
      case CTORCH_POW: x.pow_(y); return;
      case CTORCH_MAXIMUM: at::maximum_out(x, x, y); return;
      case CTORCH_MINIMUM: at::minimum_out(x, x, y); return;
    }
    TORCH_CHECK(false, "binary op code ", op, " has no in-place form");
  });
}
ctorch_status ctorch_binary_scalar_(int32_t op, ctorch_tensor a, ctorch_scalar s) {
  return guarded([&] {
    auto &x = unwrap(a);
    auto v = scalar(s);
    switch (op) {
      case CTORCH_ADD: x.add_(v); return;
      case CTORCH_SUB: x.sub_(v); return;
      case CTORCH_MUL: x.mul_(v); return;
      case CTORCH_DIV: x.div_(v); return;
      case CTORCH_POW: x.pow_(v); return;
      case CTORCH_MAXIMUM: x.clamp_min_(v); return;
      case CTORCH_MINIMUM: x.clamp_max_(v); return;
    }
    TORCH_CHECK(false, "binary op code ", op, " has no in-place scalar form");
  });
}
ctorch_status ctorch_add_scaled_(ctorch_tensor a, ctorch_tensor b, ctorch_scalar alpha) {
  return guarded([&] { unwrap(a).add_(unwrap(b), scalar(alpha)); });
}
ctorch_status ctorch_addcmul_(ctorch_tensor t, ctorch_tensor a, ctorch_tensor b, ctorch_scalar value) {
  return guarded([&] { unwrap(t).addcmul_(unwrap(a), unwrap(b), scalar(value)); });
}
ctorch_status ctorch_addcdiv_(ctorch_tensor t, ctorch_tensor a, ctorch_tensor b, ctorch_scalar value) {
  return guarded([&] { unwrap(t).addcdiv_(unwrap(a), unwrap(b), scalar(value)); });
}
ctorch_status ctorch_lerp_(ctorch_tensor t, ctorch_tensor end, ctorch_scalar weight) {
  return guarded([&] { unwrap(t).lerp_(unwrap(end), scalar(weight)); });
}
ctorch_status ctorch_clamp(ctorch_tensor t, bool has_min, double min, bool has_max, double max, ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(at::clamp(unwrap(t), has_min ? c10::optional<at::Scalar>(min) : c10::nullopt,
                          has_max ? c10::optional<at::Scalar>(max) : c10::nullopt));
  });
}
ctorch_status ctorch_clamp_(ctorch_tensor t, bool has_min, double min, bool has_max, double max) {
  return guarded([&] {
    unwrap(t).clamp_(has_min ? c10::optional<at::Scalar>(min) : c10::nullopt, has_max ? c10::optional<at::Scalar>(max) : c10::nullopt);
  });
}
ctorch_status ctorch_where(ctorch_tensor condition, ctorch_tensor a, ctorch_tensor b, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::where(unwrap(condition), unwrap(a), unwrap(b))); });
}
ctorch_status ctorch_allclose(ctorch_tensor a, ctorch_tensor b, double rtol, double atol, bool *out) {
  return guarded([&] { *out = at::allclose(unwrap(a), unwrap(b), rtol, atol); });
}

ctorch_status ctorch_reduce(int32_t op, ctorch_tensor t, const int64_t *dims, int64_t count, bool keepdim, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(reduce(op, unwrap(t), shape(dims, count), keepdim)); });
}
ctorch_status ctorch_norm(ctorch_tensor t, double p, const int64_t *dims, int64_t count, bool keepdim, ctorch_tensor *out) {
  return guarded([&] {
    const auto &x = unwrap(t);
    *out = wrap(count == 0 && !keepdim ? at::norm(x, p) : at::norm(x, p, shape(dims, count), keepdim));
  });
}
ctorch_status ctorch_extreme_dim(int32_t op, ctorch_tensor t, int64_t dim, bool keepdim, ctorch_tensor *values, ctorch_tensor *indices) {
  return guarded([&] {
    auto result = op == 0 ? at::max(unwrap(t), dim, keepdim) : at::min(unwrap(t), dim, keepdim);
    *values = wrap(std::get<0>(result));
    *indices = wrap(std::get<1>(result));
  });
}
ctorch_status ctorch_arg_extreme(int32_t op, ctorch_tensor t, bool has_dim, int64_t dim, bool keepdim, ctorch_tensor *out) {
  return guarded([&] {
    auto d = has_dim ? c10::optional<int64_t>(dim) : c10::nullopt;
    *out = wrap(op == 0 ? at::argmax(unwrap(t), d, keepdim) : at::argmin(unwrap(t), d, keepdim));
  });
}
ctorch_status ctorch_along_dim(int32_t op, ctorch_tensor t, int64_t dim, ctorch_tensor *out) {
  return guarded([&] {
    const auto &x = unwrap(t);
    switch (op) {
      case 0: *out = wrap(at::softmax(x, dim)); return;
      case 1: *out = wrap(at::log_softmax(x, dim)); return;
      case 2: *out = wrap(at::cumsum(x, dim)); return;
      case 3: *out = wrap(at::cumprod(x, dim)); return;
    }
    TORCH_CHECK(false, "unknown along-dim op code ", op);
  });
}
ctorch_status ctorch_topk(ctorch_tensor t, int64_t k, int64_t dim, bool largest, bool sorted, ctorch_tensor *values, ctorch_tensor *indices) {
  return guarded([&] {
    auto result = at::topk(unwrap(t), k, dim, largest, sorted);
    *values = wrap(std::get<0>(result));
    *indices = wrap(std::get<1>(result));
  });
}
ctorch_status ctorch_sort(ctorch_tensor t, int64_t dim, bool descending, bool stable, ctorch_tensor *values, ctorch_tensor *indices) {
  return guarded([&] {
    auto result = at::sort(unwrap(t), stable, dim, descending);
    *values = wrap(std::get<0>(result));
    *indices = wrap(std::get<1>(result));
  });
}
ctorch_status ctorch_unique(ctorch_tensor t, ctorch_tensor *values, ctorch_tensor *inverse, ctorch_tensor *counts) {
  return guarded([&] {
    auto result = at::_unique2(unwrap(t), true, inverse != nullptr, counts != nullptr);
    *values = wrap(std::get<0>(result));
    if (inverse) *inverse = wrap(std::get<1>(result));
    if (counts) *counts = wrap(std::get<2>(result));
  });
}
ctorch_status ctorch_nonzero(ctorch_tensor t, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::nonzero(unwrap(t))); });
}

ctorch_status ctorch_reshape(int32_t op, ctorch_tensor t, const int64_t *values, int64_t count, ctorch_tensor *out) {
  return guarded([&] {
    const auto &x = unwrap(t);
    auto v = shape(values, count);
    switch (op) {
      case CTORCH_VIEW: *out = wrap(x.view(v)); return;
      case CTORCH_RESHAPE: *out = wrap(x.reshape(v)); return;
      case CTORCH_PERMUTE: *out = wrap(x.permute(v)); return;
      case CTORCH_EXPAND: *out = wrap(x.expand(v)); return;
      case CTORCH_REPEAT: *out = wrap(x.repeat(v)); return;
      case CTORCH_FLIP: *out = wrap(at::flip(x, v)); return;
    }
    TORCH_CHECK(false, "unknown reshape op code ", op);
  });
}
ctorch_status ctorch_transpose(ctorch_tensor t, int64_t dim0, int64_t dim1, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(unwrap(t).transpose(dim0, dim1)); });
}
ctorch_status ctorch_flatten(ctorch_tensor t, int64_t start_dim, int64_t end_dim, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(unwrap(t).flatten(start_dim, end_dim)); });
}
ctorch_status ctorch_squeeze(ctorch_tensor t, bool has_dim, int64_t dim, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(has_dim ? unwrap(t).squeeze(dim) : unwrap(t).squeeze()); });
}
ctorch_status ctorch_unsqueeze(ctorch_tensor t, int64_t dim, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(unwrap(t).unsqueeze(dim)); });
}
ctorch_status ctorch_join(int32_t op, const ctorch_tensor *tensors, int64_t count, int64_t dim, ctorch_tensor *out) {
  return guarded([&] {
    std::vector<at::Tensor> list;
    list.reserve(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) list.push_back(unwrap(tensors[i]));
    *out = wrap(op == 0 ? at::cat(list, dim) : at::stack(list, dim));
  });
}
ctorch_status ctorch_split(ctorch_tensor t, int64_t split_size, int64_t dim, ctorch_tensor_sink sink, void *context) {
  return guarded([&] { emit(unwrap(t).split(split_size, dim), sink, context); });
}
ctorch_status ctorch_split_sizes(ctorch_tensor t, const int64_t *sizes, int64_t count, int64_t dim, ctorch_tensor_sink sink, void *context) {
  return guarded([&] { emit(unwrap(t).split_with_sizes(shape(sizes, count), dim), sink, context); });
}
ctorch_status ctorch_chunk(ctorch_tensor t, int64_t chunks, int64_t dim, ctorch_tensor_sink sink, void *context) {
  return guarded([&] { emit(unwrap(t).chunk(chunks, dim), sink, context); });
}
ctorch_status ctorch_slice(ctorch_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(unwrap(t).slice(dim, start, end, step)); });
}
ctorch_status ctorch_select(ctorch_tensor t, int64_t dim, int64_t index, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(unwrap(t).select(dim, index)); });
}
ctorch_status ctorch_index_select(ctorch_tensor t, int64_t dim, ctorch_tensor index, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::index_select(unwrap(t), dim, unwrap(index))); });
}
ctorch_status ctorch_gather(ctorch_tensor t, int64_t dim, ctorch_tensor index, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::gather(unwrap(t), dim, unwrap(index))); });
}
ctorch_status ctorch_scatter(int32_t op, ctorch_tensor t, int64_t dim, ctorch_tensor index, ctorch_tensor source, ctorch_tensor *out) {
  return guarded([&] {
    *out = wrap(op == 0 ? at::scatter(unwrap(t), dim, unwrap(index), unwrap(source))
                        : at::scatter_add(unwrap(t), dim, unwrap(index), unwrap(source)));
  });
}
ctorch_status ctorch_masked_fill(ctorch_tensor t, ctorch_tensor mask, ctorch_scalar value, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::masked_fill(unwrap(t), unwrap(mask), scalar(value))); });
}
ctorch_status ctorch_masked_fill_(ctorch_tensor t, ctorch_tensor mask, ctorch_scalar value) {
  return guarded([&] { unwrap(t).masked_fill_(unwrap(mask), scalar(value)); });
}
ctorch_status ctorch_masked_select(ctorch_tensor t, ctorch_tensor mask, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::masked_select(unwrap(t), unwrap(mask))); });
}
ctorch_status ctorch_index(ctorch_tensor t, const ctorch_tensor *indices, int64_t count, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::index(unwrap(t), index_list(indices, count))); });
}
ctorch_status ctorch_index_put_(ctorch_tensor t, const ctorch_tensor *indices, int64_t count, ctorch_tensor values, bool accumulate) {
  return guarded([&] { unwrap(t).index_put_(index_list(indices, count), unwrap(values), accumulate); });
}
ctorch_status ctorch_constant_pad(ctorch_tensor t, const int64_t *pads, int64_t count, double value, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(at::constant_pad_nd(unwrap(t), shape(pads, count), value)); });
}
ctorch_status ctorch_triangle(int32_t op, ctorch_tensor t, int64_t diagonal, ctorch_tensor *out) {
  return guarded([&] { *out = wrap(op == 0 ? at::tril(unwrap(t), diagonal) : at::triu(unwrap(t), diagonal)); });
}

}  // extern "C"
