import CTorch

/// How a loss reduces its per-element values.
public enum Reduction: Int32, Sendable {
  case none = 0
  case mean = 1
  case sum = 2
}

/// Interpolation for `interpolate`.
public enum InterpolationMode: Int32, Sendable {
  /// PyTorch's legacy "nearest" (floor of the scaled index).
  case nearest = 0
  case bilinear = 1
  case bicubic = 2
  case nearestExact = 3
}

/// Sampling for `gridSample`.
public enum GridSampleMode: Int32, Sendable {
  case bilinear = 0
  case nearest = 1
  case bicubic = 2
}

/// What `gridSample` reads outside the input.
public enum GridSamplePadding: Int32, Sendable {
  case zeros = 0
  case border = 1
  case reflection = 2
}

/// Neural-network functions. Images are `[batch, channels, height, width]`.
public enum Functional {
  /// `input @ weight.T + bias`: input `[..., in]`, weight `[out, in]`, bias `[out]`.
  public static func linear(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    produce("linear", [input, weight]) { out in
      withExtendedLifetime((input, weight)) { withOptionalHandle(bias) { ctorch_linear(input.handle, weight.handle, $0, out) } }
    }
  }

  /// 2-D convolution: weight `[out, in / groups, kh, kw]`.
  public static func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
    dilation: (Int, Int) = (1, 1), groups: Int = 1
  ) -> Tensor {
    let s = [Int64(stride.0), Int64(stride.1)]
    let p = [Int64(padding.0), Int64(padding.1)]
    let d = [Int64(dilation.0), Int64(dilation.1)]
    return produce("conv2d", [input, weight]) { out in
      withExtendedLifetime((input, weight)) {
        withOptionalHandle(bias) { ctorch_conv2d(input.handle, weight.handle, $0, s, p, d, Int64(groups), out) }
      }
    }
  }

  public static func maxPool2d(
    _ input: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1),
    ceilMode: Bool = false
  ) -> Tensor {
    let k = [Int64(kernelSize.0), Int64(kernelSize.1)]
    let s = stride.map { [Int64($0.0), Int64($0.1)] } ?? k
    let p = [Int64(padding.0), Int64(padding.1)]
    let d = [Int64(dilation.0), Int64(dilation.1)]
    return produce("max_pool2d", input) { ctorch_max_pool2d(input.handle, k, s, p, d, ceilMode, $0) }
  }

  public static func avgPool2d(
    _ input: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0), ceilMode: Bool = false,
    countIncludePad: Bool = true
  ) -> Tensor {
    let k = [Int64(kernelSize.0), Int64(kernelSize.1)]
    let s = stride.map { [Int64($0.0), Int64($0.1)] } ?? k
    let p = [Int64(padding.0), Int64(padding.1)]
    return produce("avg_pool2d", input) { ctorch_avg_pool2d(input.handle, k, s, p, ceilMode, countIncludePad, $0) }
  }

  public static func adaptiveAvgPool2d(_ input: Tensor, outputSize: (Int, Int)) -> Tensor {
    let size = [Int64(outputSize.0), Int64(outputSize.1)]
    return produce("adaptive_avg_pool2d", input) { ctorch_adaptive_pool2d(0, input.handle, size, $0) }
  }

  public static func adaptiveMaxPool2d(_ input: Tensor, outputSize: (Int, Int)) -> Tensor {
    let size = [Int64(outputSize.0), Int64(outputSize.1)]
    return produce("adaptive_max_pool2d", input) { ctorch_adaptive_pool2d(1, input.handle, size, $0) }
  }

  /// Resizes the last two dims to `size` (height, width).
  public static func interpolate(_ input: Tensor, size: (Int, Int), mode: InterpolationMode = .nearest, alignCorners: Bool = false)
    -> Tensor
  {
    let s = [Int64(size.0), Int64(size.1)]
    return produce("interpolate", input) { ctorch_interpolate(input.handle, mode.rawValue, s, alignCorners, $0) }
  }

  /// Greedy non-maximum suppression of corner boxes `boxes [n, 4]` with `scores [n]`, within each
  /// class of `classes [n]` (int64; nil: one class): the kept indices `[k]` (int64), highest score
  /// first, equal scores in input order. A box is dropped when its IoU with a kept box of its class
  /// exceeds `iouThreshold`. Runs on the CPU (the shim's kernel).
  public static func nonMaximumSuppression(_ boxes: Tensor, scores: Tensor, classes: Tensor? = nil, iouThreshold: Double) -> Tensor {
    produce("batched_nms", [boxes, scores]) { out in
      withExtendedLifetime((boxes, scores)) {
        withOptionalHandle(classes) { ctorch_batched_nms(boxes.handle, scores.handle, $0, iouThreshold, out) }
      }
    }
  }

  /// Samples `input [n, c, h, w]` at `grid [n, ho, wo, 2]` holding (x, y) in [-1, 1]; gives `[n, c, ho, wo]`.
  public static func gridSample(
    _ input: Tensor, grid: Tensor, mode: GridSampleMode = .bilinear, padding: GridSamplePadding = .zeros, alignCorners: Bool = false
  ) -> Tensor {
    produce("grid_sample", [input, grid]) { out in
      withExtendedLifetime((input, grid)) {
        ctorch_grid_sample(input.handle, grid.handle, mode.rawValue, padding.rawValue, alignCorners, out)
      }
    }
  }

  /// Normalizes over the trailing `normalizedShape` dims.
  public static func layerNorm(_ input: Tensor, normalizedShape: [Int], weight: Tensor? = nil, bias: Tensor? = nil, epsilon: Double = 1e-5)
    -> Tensor
  {
    produce("layer_norm", input) { out in
      withOptionalHandle(weight) { w in
        withOptionalHandle(bias) { b in withInt64s(normalizedShape) { ctorch_layer_norm(input.handle, $0, $1, w, b, epsilon, out) } }
      }
    }
  }

  public static func groupNorm(_ input: Tensor, groups: Int, weight: Tensor? = nil, bias: Tensor? = nil, epsilon: Double = 1e-5) -> Tensor {
    produce("group_norm", input) { out in
      withOptionalHandle(weight) { w in withOptionalHandle(bias) { b in ctorch_group_norm(input.handle, Int64(groups), w, b, epsilon, out) }
      }
    }
  }

  /// Batch normalization over dim 1. When training, uses batch statistics and updates the running ones in place.
  public static func batchNorm(
    _ input: Tensor, runningMean: Tensor?, runningVariance: Tensor?, weight: Tensor? = nil, bias: Tensor? = nil, training: Bool,
    momentum: Double = 0.1, epsilon: Double = 1e-5
  ) -> Tensor {
    produce("batch_norm", input) { out in
      withOptionalHandle(weight) { w in
        withOptionalHandle(bias) { b in
          withOptionalHandle(runningMean) { m in
            withOptionalHandle(runningVariance) { v in ctorch_batch_norm(input.handle, w, b, m, v, training, momentum, epsilon, out) }
          }
        }
      }
    }
  }

  /// Zeroes elements with probability `probability` and scales the rest by 1 / (1 - p), when training.
  public static func dropout(_ input: Tensor, probability: Double, training: Bool) -> Tensor {
    if !training || probability == 0 { return input }
    return produce("dropout", input) { ctorch_dropout(input.handle, probability, training, $0) }
  }

  /// Rows of `weight [count, dim]` at `indices`.
  public static func embedding(_ indices: Tensor, weight: Tensor) -> Tensor {
    produce("embedding", [weight, indices]) { out in
      withExtendedLifetime((weight, indices)) { ctorch_embedding(weight.handle, indices.handle, out) }
    }
  }

  public static func binaryCrossEntropyWithLogits(
    _ logits: Tensor, targets: Tensor, weight: Tensor? = nil, positiveWeight: Tensor? = nil, reduction: Reduction = .mean
  ) -> Tensor {
    produce("binary_cross_entropy_with_logits", [logits, targets]) { out in
      withExtendedLifetime((logits, targets)) {
        withOptionalHandle(weight) { w in
          withOptionalHandle(positiveWeight) { p in
            ctorch_binary_cross_entropy_with_logits(logits.handle, targets.handle, w, p, reduction.rawValue, out)
          }
        }
      }
    }
  }

  /// Cross-entropy of `logits [n, classes, ...]` against int64 `targets [n, ...]`, with optional class weights.
  public static func crossEntropy(
    _ logits: Tensor, targets: Tensor, classWeights: Tensor? = nil, reduction: Reduction = .mean, ignoreIndex: Int = -100,
    labelSmoothing: Double = 0
  ) -> Tensor {
    produce("cross_entropy", [logits, targets]) { out in
      withExtendedLifetime((logits, targets)) {
        withOptionalHandle(classWeights) {
          ctorch_cross_entropy(logits.handle, targets.handle, $0, reduction.rawValue, Int64(ignoreIndex), labelSmoothing, out)
        }
      }
    }
  }

  public static func l1Loss(_ input: Tensor, targets: Tensor, reduction: Reduction = .mean) -> Tensor {
    regression(0, input, targets, reduction, 0, "l1_loss")
  }

  public static func mseLoss(_ input: Tensor, targets: Tensor, reduction: Reduction = .mean) -> Tensor {
    regression(1, input, targets, reduction, 0, "mse_loss")
  }

  public static func smoothL1Loss(_ input: Tensor, targets: Tensor, reduction: Reduction = .mean, beta: Double = 1) -> Tensor {
    regression(2, input, targets, reduction, beta, "smooth_l1_loss")
  }

  private static func regression(
    _ op: Int32, _ input: Tensor, _ targets: Tensor, _ reduction: Reduction, _ beta: Double, _ name: StaticString
  )
    -> Tensor
  {
    produce(name, [input, targets]) { out in
      withExtendedLifetime((input, targets)) { ctorch_regression_loss(op, input.handle, targets.handle, reduction.rawValue, beta, out) }
    }
  }
}

extension Functional {
  /// Whether `fusedDeformableAttention` runs on a device: the CPU always, a GPU when the shim was built
  /// with its CUDA kernels.
  public static func isFusedDeformableAttentionAvailable(on device: Device) -> Bool {
    ctorch_fused_deformable_attention_available(device.type)
  }

  /// Multi-scale deformable attention in one fused pass (CPU, or CUDA where the shim has the kernels) (differentiable in value, locations and
  /// weights): `value [B, S, heads, D]`, level `shapes` (height, width) with their `starts` in S,
  /// `locations [B, Q, heads, levels, points, 2]` (x, y in [0, 1]), `weights [B, Q, heads, levels, points]`
  /// → `[B, Q, heads · D]`. Bilinear samples with zeros outside each map, as `grid_sample` without aligned corners.
  public static func fusedDeformableAttention(
    value: Tensor, shapes: [(height: Int, width: Int)], starts: [Int], locations: Tensor, weights: Tensor
  ) -> Tensor {
    let shapeTensor = Tensor(shapes.flatMap { [$0.height, $0.width] }, shape: [shapes.count, 2])
    let startTensor = Tensor(starts, shape: [starts.count])
    return produce("fused_deformable_attention", [value, locations, weights]) { out in
      withExtendedLifetime((value, shapeTensor, startTensor, locations, weights)) {
        ctorch_fused_deformable_attention(value.handle, shapeTensor.handle, startTensor.handle, locations.handle, weights.handle, out)
      }
    }
  }
}
