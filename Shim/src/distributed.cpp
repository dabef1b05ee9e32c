// Process groups of libtorch's c10d: a TCP store for the rendezvous, Gloo (CPU tensors) or NCCL (CUDA
// tensors) for the collectives. Built when the Gloo headers were found (CTORCH_WITH_GLOO); otherwise every
// call fails saying how to get them.
#include "common.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#ifdef CTORCH_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#include <c10/util/Logging.h>
#ifdef CTORCH_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

struct ctorch_process_group_opaque {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  // The same backend as a ProcessGroup, which c10d's Reducer takes.
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  int rank;
  int size;
};

struct ctorch_reducer_opaque {
  std::shared_ptr<c10d::Reducer> reducer;
};

struct ctorch_work_opaque {
  c10::intrusive_ptr<c10d::Work> work;
};

namespace {

c10d::ReduceOp reduce_op(int32_t op) {
  switch (op) {
    case CTORCH_REDUCE_SUM: return c10d::ReduceOp::SUM;
    case CTORCH_REDUCE_MAX: return c10d::ReduceOp::MAX;
    case CTORCH_REDUCE_MIN: return c10d::ReduceOp::MIN;
    default: TORCH_CHECK(false, "unknown reduction ", op);
  }
}

std::vector<at::Tensor> unwrap_all(const ctorch_tensor *tensors, int64_t count) {
  std::vector<at::Tensor> list;
  list.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) list.push_back(ctorch::unwrap(tensors[i]));
  return list;
}

// Waits for a work item, turning its failure (a lost peer, a timeout) into an exception with its message.
void finish(const c10::intrusive_ptr<c10d::Work> &work) {
  work->wait();
  if (auto error = work->exception()) std::rethrow_exception(error);
}

std::vector<uint8_t> bytes(const std::string &text) { return std::vector<uint8_t>(text.begin(), text.end()); }

// Every rank says at the store which world size it was started with, before Gloo's rendezvous (which
// would wait until the timeout for a rank that does not exist): rank 0 compares them all, the others
// rank 0's, and a mismatch fails at once naming both values.
void check_world_sizes(c10d::Store &store, int rank, int world_size, std::chrono::milliseconds timeout) {
  const std::string prefix = "swift-detr/world-size/";
  auto read = [&](int other) {
    store.wait({prefix + std::to_string(other)}, timeout);
    auto value = store.get(prefix + std::to_string(other));
    return std::stoi(std::string(value.begin(), value.end()));
  };
  auto publish = [&] { store.set(prefix + std::to_string(rank), bytes(std::to_string(world_size))); };
  if (rank == 0) {
    publish();
    for (int other = 1; other < world_size; ++other) {
      int theirs = read(other);
      TORCH_CHECK(theirs == world_size, "rank ", other, " was started with WORLD_SIZE=", theirs, " and rank 0 with ", world_size,
                  ": start every worker with the same WORLD_SIZE");
    }
  } else {
    // Read rank 0's before publishing: rank 0 may stop (and its store with it) as soon as it reads ours.
    int ranks = read(0);
    publish();
    TORCH_CHECK(ranks == world_size, "this rank (", rank, ") was started with WORLD_SIZE=", world_size, " and rank 0 with ", ranks,
                ": start every worker with the same WORLD_SIZE");
  }
}

}  // namespace

using ctorch::guarded;

extern "C" {

bool ctorch_distributed_available(const char *backend) {
  std::string name = backend == nullptr ? "" : backend;
  if (name == "gloo") return true;
#ifdef CTORCH_WITH_NCCL
  if (name == "nccl") return true;
#endif
  return false;
}

ctorch_status ctorch_process_group_create(const char *backend, const char *store_host, int32_t store_port, int32_t rank,
                                          int32_t world_size, int64_t timeout_ms, const char *local_host,
                                          const char *interface_name, ctorch_process_group *out) {
  return guarded([&] {
    TORCH_CHECK(backend != nullptr && store_host != nullptr, "the backend or the store host is NULL");
    TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "rank ", rank, " is not in [0, ", world_size, ")");
    TORCH_CHECK(store_port > 0 && store_port < 65536, "port ", store_port, " is not in [1, 65535]");
    // c10d logs each failure it also throws (a lost peer's broken pipe) with a C++ backtrace; the
    // exceptions carry the same message and become the caller's errors, so only fatal logs are shown.
    FLAGS_caffe2_log_level = 3;
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(store_port);
    options.isServer = rank == 0;
    options.numWorkers = world_size;
    options.waitWorkers = true;
    options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(store_host), options);
    check_world_sizes(*store, rank, world_size, timeout);
    std::string name = backend;
    c10::intrusive_ptr<c10d::Backend> group;
    if (name == "gloo") {
      auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
      if (interface_name != nullptr && *interface_name != 0) {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface_name));
      } else if (local_host != nullptr && *local_host != 0) {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local_host));
      } else {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      gloo->threads = 2;
      group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, gloo);
#ifdef CTORCH_WITH_NCCL
    } else if (name == "nccl") {
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = timeout;
      group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, nccl);
#endif
    } else {
      TORCH_CHECK(false, "backend '", name, "' is not in this libtorch (", name == "nccl" ? "a CUDA build has it" : "use gloo or nccl", ")");
    }
    auto process_group = c10::make_intrusive<c10d::ProcessGroup>(store, rank, world_size);
    auto type = name == "nccl" ? c10d::ProcessGroup::BackendType::NCCL : c10d::ProcessGroup::BackendType::GLOO;
    process_group->setBackend(name == "nccl" ? c10::DeviceType::CUDA : c10::DeviceType::CPU, type, group);
    process_group->setDefaultBackend(type);
    *out = new ctorch_process_group_opaque{store, group, process_group, rank, world_size};
  });
}

void ctorch_process_group_free(ctorch_process_group group) { delete group; }

ctorch_status ctorch_all_reduce(ctorch_process_group group, const ctorch_tensor *tensors, int64_t count, int32_t op, ctorch_work *out) {
  return guarded([&] {
    TORCH_CHECK(group != nullptr, "the process group is NULL");
    auto list = unwrap_all(tensors, count);
    c10d::AllreduceOptions options;
    options.reduceOp = reduce_op(op);
    auto work = group->backend->allreduce(list, options);
    if (out != nullptr) {
      *out = new ctorch_work_opaque{work};
    } else {
      finish(work);
    }
  });
}

ctorch_status ctorch_work_wait(ctorch_work work) {
  return guarded([&] {
    TORCH_CHECK(work != nullptr, "the work is NULL");
    finish(work->work);
  });
}

void ctorch_work_free(ctorch_work work) { delete work; }

ctorch_status ctorch_broadcast(ctorch_process_group group, const ctorch_tensor *tensors, int64_t count, int32_t root) {
  return guarded([&] {
    TORCH_CHECK(group != nullptr, "the process group is NULL");
    auto list = unwrap_all(tensors, count);
    c10d::BroadcastOptions options;
    options.rootRank = root;
    finish(group->backend->broadcast(list, options));
  });
}

ctorch_status ctorch_all_gather(ctorch_process_group group, ctorch_tensor input, ctorch_tensor_sink sink, void *context) {
  return guarded([&] {
    TORCH_CHECK(group != nullptr, "the process group is NULL");
    std::vector<at::Tensor> inputs{ctorch::unwrap(input)};
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int i = 0; i < group->size; ++i) outputs[0].push_back(at::empty_like(inputs[0]));
    finish(group->backend->allgather(outputs, inputs));
    ctorch::emit(outputs[0], sink, context);
  });
}

ctorch_status ctorch_barrier(ctorch_process_group group) {
  return guarded([&] {
    TORCH_CHECK(group != nullptr, "the process group is NULL");
    finish(group->backend->barrier());
  });
}

ctorch_status ctorch_reducer_create(ctorch_process_group group, const ctorch_tensor *parameters, int64_t count, int64_t bucket_bytes,
                                    int64_t first_bucket_bytes, bool find_unused_parameters, ctorch_reducer *out) {
  return guarded([&] {
    TORCH_CHECK(group != nullptr, "the process group is NULL");
    TORCH_CHECK(count > 0, "a reducer needs parameters");
    auto params = unwrap_all(parameters, count);
    std::vector<bool> sparse(params.size(), false);
    // As DistributedDataParallel: buckets of the parameters in registration order, then reversed, since
    // the backward pass produces the last parameters' gradients first; the first bucket is small so that
    // communication starts early.
    auto [indices, limits] = c10d::compute_bucket_assignment_by_size(
        params, {static_cast<size_t>(first_bucket_bytes), static_cast<size_t>(bucket_bytes)}, sparse);
    std::reverse(indices.begin(), indices.end());
    std::reverse(limits.begin(), limits.end());
    std::vector<int64_t> caps(limits.begin(), limits.end());
    auto reducer = std::make_shared<c10d::Reducer>(params, std::move(indices), group->group, sparse, bucket_bytes, find_unused_parameters,
                                                   /*gradient_as_bucket_view=*/false, std::unordered_map<size_t, std::string>{},
                                                   first_bucket_bytes, /*skip_all_reduce_unused_params=*/false,
                                                   /*use_python_reducer=*/false, std::move(caps));
    *out = new ctorch_reducer_opaque{std::move(reducer)};
  });
}

ctorch_status ctorch_reducer_prepare_for_backward(ctorch_reducer reducer, const ctorch_tensor *outputs, int64_t count) {
  return guarded([&] {
    TORCH_CHECK(reducer != nullptr, "the reducer is NULL");
    reducer->reducer->prepare_for_backward(unwrap_all(outputs, count));
  });
}

void ctorch_reducer_free(ctorch_reducer reducer) { delete reducer; }

ctorch_status ctorch_store_set(ctorch_process_group group, const char *key, const char *value) {
  return guarded([&] {
    TORCH_CHECK(group != nullptr && key != nullptr && value != nullptr, "a store argument is NULL");
    std::string text = value;
    group->store->set(key, std::vector<uint8_t>(text.begin(), text.end()));
  });
}

ctorch_status ctorch_store_has(ctorch_process_group group, const char *key, bool *out) {
  return guarded([&] {
    TORCH_CHECK(group != nullptr && key != nullptr, "a store argument is NULL");
    *out = group->store->check({std::string(key)});
  });
}

}  // extern "C"

#else  // no Gloo headers at build time

namespace {
const char *missing = "this libctorch was built without c10d (the Gloo headers were not found): install libgloo-dev and run Scripts/setup.sh again";
}

extern "C" {
bool ctorch_distributed_available(const char *) { return false; }
ctorch_status ctorch_process_group_create(const char *, const char *, int32_t, int32_t, int32_t, int64_t, const char *, const char *,
                                          ctorch_process_group *) {
  return ctorch::guarded([] { TORCH_CHECK(false, missing); });
}
void ctorch_process_group_free(ctorch_process_group) {}
ctorch_status ctorch_all_reduce(ctorch_process_group, const ctorch_tensor *, int64_t, int32_t, ctorch_work *) {
  return ctorch::guarded([] { TORCH_CHECK(false, missing); });
}
ctorch_status ctorch_work_wait(ctorch_work) { return ctorch::guarded([] { TORCH_CHECK(false, missing); }); }
void ctorch_work_free(ctorch_work) {}
ctorch_status ctorch_broadcast(ctorch_process_group, const ctorch_tensor *, int64_t, int32_t) {
  return ctorch::guarded([] { TORCH_CHECK(false, missing); });
}
ctorch_status ctorch_all_gather(ctorch_process_group, ctorch_tensor, ctorch_tensor_sink, void *) {
  return ctorch::guarded([] { TORCH_CHECK(false, missing); });
}
ctorch_status ctorch_barrier(ctorch_process_group) { return ctorch::guarded([] { TORCH_CHECK(false, missing); }); }
ctorch_status ctorch_store_set(ctorch_process_group, const char *, const char *) {
  return ctorch::guarded([] { TORCH_CHECK(false, missing); });
}
ctorch_status ctorch_reducer_create(ctorch_process_group, const ctorch_tensor *, int64_t, int64_t, int64_t, bool, ctorch_reducer *) {
  return ctorch::guarded([] { TORCH_CHECK(false, missing); });
}
ctorch_status ctorch_reducer_prepare_for_backward(ctorch_reducer, const ctorch_tensor *, int64_t) {
  return ctorch::guarded([] { TORCH_CHECK(false, missing); });
}
void ctorch_reducer_free(ctorch_reducer) {}
ctorch_status ctorch_store_has(ctorch_process_group, const char *, bool *) {
  return ctorch::guarded([] { TORCH_CHECK(false, missing); });
}
}

#endif
