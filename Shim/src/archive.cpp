// PyTorch zip archives through libtorch's reader, and tensors rebuilt from storage bytes.
#include <caffe2/serialize/inline_container.h>

#include <memory>

#include "common.h"

struct ctorch_archive_opaque {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
};

using ctorch::guarded;

extern "C" {

ctorch_status ctorch_archive_open(const char *path, ctorch_archive *out) {
  return guarded([&] {
    TORCH_CHECK(path != nullptr, "the archive path is NULL");
    auto reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(std::string(path));
    *out = new ctorch_archive_opaque{std::move(reader)};
  });
}

void ctorch_archive_free(ctorch_archive archive) { delete archive; }

ctorch_status ctorch_archive_records(ctorch_archive archive, void (*sink)(void *, const char *), void *context) {
  return guarded([&] {
    TORCH_CHECK(archive != nullptr, "the archive is NULL");
    for (const auto &name : archive->reader->getAllRecords()) sink(context, name.c_str());
  });
}

ctorch_status ctorch_archive_read(ctorch_archive archive, const char *name, ctorch_tensor *out) {
  return guarded([&] {
    TORCH_CHECK(archive != nullptr && name != nullptr, "the archive or the record name is NULL");
    TORCH_CHECK(archive->reader->hasRecord(name), "the archive has no record '", name, "'");
    auto [data, size] = archive->reader->getRecord(name);
    auto holder = std::make_shared<at::DataPtr>(std::move(data));
    void *bytes = holder->get();
    auto tensor = at::from_blob(bytes, {static_cast<int64_t>(size)}, [holder](void *) mutable { holder.reset(); },
                                at::TensorOptions().dtype(at::kByte));
    *out = ctorch::wrap(std::move(tensor));
  });
}

ctorch_status ctorch_tensor_from_storage(ctorch_tensor bytes, int32_t dtype, int64_t offset, const int64_t *sizes, const int64_t *strides,
                                         int64_t count, ctorch_tensor *out) {
  return guarded([&] {
    const auto &storage = ctorch::unwrap(bytes);
    TORCH_CHECK(storage.dim() == 1 && storage.scalar_type() == at::kByte && storage.is_contiguous(),
                "a storage is a contiguous 1-D uint8 tensor of bytes");
    auto type = ctorch::scalar_type(dtype);
    auto element = static_cast<int64_t>(c10::elementSize(type));
    TORCH_CHECK(storage.numel() % element == 0, "a storage of ", storage.numel(), " bytes is not a whole number of ", type,
                " elements");
    TORCH_CHECK(count >= 0 && offset >= 0, "negative rank or storage offset");
    std::vector<int64_t> size(sizes, sizes + count), stride(strides, strides + count);
    // The furthest element the view reaches must lie inside the storage; as_strided checks too, this names the numbers.
    int64_t last = offset, elements = storage.numel() / element;
    bool empty = false;
    for (int64_t i = 0; i < count; ++i) {
      TORCH_CHECK(size[i] >= 0 && stride[i] >= 0, "negative size or stride in a stored tensor");
      if (size[i] == 0) empty = true;
      else last += (size[i] - 1) * stride[i];
    }
    TORCH_CHECK(empty || last < elements, "a stored tensor of sizes ", size, ", strides ", stride, " and offset ", offset,
                " reaches beyond its storage of ", elements, " elements");
    auto typed = storage.view(type);
    *out = ctorch::wrap(empty ? at::empty(size, typed.options()) : typed.as_strided(size, stride, offset).clone(at::MemoryFormat::Contiguous));
  });
}

}  // extern "C"
