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
  // Per class, its boxes copied in score order into contiguous arrays: the inner loop reads memory in order.
  std::vector<T> x0, y0, x1, y1, area;
  std::vector<char> suppressed;
  for (auto &entry : by_class) {
    const std::vector<int64_t> &ranks = entry.second;
    const size_t m = ranks.size();
    x0.resize(m), y0.resize(m), x1.resize(m), y1.resize(m), area.resize(m);
    suppressed.assign(m, 0);
    for (size_t a = 0; a < m; ++a) {
      const T *box = b + 4 * order[ranks[a]];
      x0[a] = box[0], y0[a] = box[1], x1[a] = box[2], y1[a] = box[3];
      area[a] = (box[2] - box[0]) * (box[3] - box[1]);
    }
    for (size_t a = 0; a < m; ++a) {
      if (suppressed[a]) continue;
      kept[ranks[a]] = 1;
      const T ax0 = x0[a], ay0 = y0[a], ax1 = x1[a], ay1 = y1[a], aarea = area[a];
      for (size_t other = a + 1; other < m; ++other) {
        const T w = std::max<T>(0, std::min(ax1, x1[other]) - std::max(ax0, x0[other]));
        const T h = std::max<T>(0, std::min(ay1, y1[other]) - std::max(ay0, y0[other]));
        const T intersection = w * h;
        const T union_area = aarea + area[other] - intersection;
        // Branch-free: a suppressed box stays suppressed.
        suppressed[other] |= (union_area > 0) & (intersection / union_area > iou_threshold);
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
