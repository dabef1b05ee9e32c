// Non-maximum suppression, greedy and class-wise, on the CPU.
#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "common.h"

namespace {

template <typename T>
std::vector<int64_t> batched_nms(const at::Tensor &boxes, const at::Tensor &scores, const at::Tensor &classes, double iou_threshold) {
  const int64_t n = boxes.size(0);
  const T *b = boxes.data_ptr<T>();
  const T *s = scores.data_ptr<T>();
  const int64_t *c = classes.defined() ? classes.data_ptr<int64_t>() : nullptr;
  // Highest score first; equal scores keep their input order (a stable sort, as the references').
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [s](int64_t i, int64_t j) { return s[i] > s[j]; });
  // Each class's boxes in that order: boxes of different classes never suppress each other.
  std::unordered_map<int64_t, std::vector<int64_t>> by_class;
  for (int64_t rank = 0; rank < n; ++rank) by_class[c ? c[order[rank]] : 0].push_back(rank);
  std::vector<char> kept(n, 0);
  std::vector<T> area(n);
  for (int64_t i = 0; i < n; ++i) area[i] = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
  for (auto &entry : by_class) {
    const std::vector<int64_t> &ranks = entry.second;
    std::vector<char> suppressed(ranks.size(), 0);
    for (size_t a = 0; a < ranks.size(); ++a) {
      if (suppressed[a]) continue;
      const int64_t i = order[ranks[a]];
      kept[ranks[a]] = 1;
      const T x0 = b[4 * i], y0 = b[4 * i + 1], x1 = b[4 * i + 2], y1 = b[4 * i + 3];
      for (size_t other = a + 1; other < ranks.size(); ++other) {
        if (suppressed[other]) continue;
        const int64_t j = order[ranks[other]];
        const T w = std::max<T>(0, std::min(x1, b[4 * j + 2]) - std::max(x0, b[4 * j]));
        const T h = std::max<T>(0, std::min(y1, b[4 * j + 3]) - std::max(y0, b[4 * j + 1]));
        const T intersection = w * h;
        const T union_area = area[i] + area[j] - intersection;
        if (union_area > 0 && intersection / union_area > iou_threshold) suppressed[other] = 1;
      }
    }
  }
  std::vector<int64_t> keep;
  for (int64_t rank = 0; rank < n; ++rank)
    if (kept[rank]) keep.push_back(order[rank]);
  return keep;
}

}  // namespace

ctorch_status ctorch_batched_nms(ctorch_tensor boxes, ctorch_tensor scores, ctorch_tensor classes, double iou_threshold,
                                 ctorch_tensor *out) {
  return ctorch::guarded([&] {
    const at::Tensor &box_tensor = ctorch::unwrap(boxes);
    TORCH_CHECK(box_tensor.dim() == 2 && box_tensor.size(1) == 4, "nms: boxes must be [n, 4], got ", box_tensor.sizes());
    const at::Tensor &score_tensor = ctorch::unwrap(scores);
    TORCH_CHECK(score_tensor.dim() == 1 && score_tensor.size(0) == box_tensor.size(0), "nms: scores must be [n] for ", box_tensor.size(0),
                " boxes, got ", score_tensor.sizes());
    // Scores in the boxes' floating type; the work is on the CPU whatever the device.
    at::Tensor b = box_tensor.to(at::kCPU).contiguous();
    if (!at::isFloatingType(b.scalar_type()) || b.scalar_type() == at::kHalf || b.scalar_type() == at::kBFloat16) b = b.to(at::kFloat);
    at::Tensor s = score_tensor.to(at::kCPU, b.scalar_type()).contiguous();
    at::Tensor c;
    if (classes != nullptr) {
      c = ctorch::unwrap(classes).to(at::kCPU, at::kLong).contiguous();
      TORCH_CHECK(c.dim() == 1 && c.size(0) == b.size(0), "nms: classes must be [n] for ", b.size(0), " boxes, got ", c.sizes());
    }
    std::vector<int64_t> keep =
        b.scalar_type() == at::kDouble ? batched_nms<double>(b, s, c, iou_threshold) : batched_nms<float>(b, s, c, iou_threshold);
    *out = ctorch::wrap(at::tensor(keep, at::TensorOptions().dtype(at::kLong)).to(box_tensor.device()));
  });
}
