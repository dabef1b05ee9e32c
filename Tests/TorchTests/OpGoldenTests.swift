import Foundation
import Testing
import Torch
import TorchTestSupport

/// Every op family against PyTorch (goldens from Scripts/goldens/make_torch_goldens.py).
@Suite struct OpGoldenTests {
  let golden: Goldens

  init() throws {
    golden = try Goldens(Bundle.module.url(forResource: "Goldens/ops", withExtension: "safetensors")!)
  }

  @Test func binaryArithmeticBroadcasts() {
    let a = golden["add.a"]
    let b = golden["add.b"]
    expectClose(a + b, golden["add.out"], "add")
    expectClose(a - b, golden["sub.out"], "sub")
    expectClose(a * b, golden["mul.out"], "mul")
    expectClose(a / b, golden["div.out"], "div")
    expectClose(golden["pow.a"].pow(b), golden["pow.out"], "pow")
    expectClose(a.maximum(b), golden["maximum.out"], "maximum")
    expectClose(a.minimum(b), golden["minimum.out"], "minimum")
    expectClose(a.atan2(b), golden["atan2.out"], "atan2")
    expectClose(golden["remainder.a"].remainder(b), golden["remainder.out"], "remainder")
    expectClose(golden["floor_divide.a"].floorDivided(by: b), golden["floor_divide.out"], "floor divide")
  }

  @Test func scalarsKeepPyTorchTypePromotion() {
    let a = golden["scalar_float.a"]
    expectClose((a * 2.5 + 1.5) / 4.0 - 0.25, golden["scalar_float.out"], "float scalars")
    expectClose((3.0 - a) * (2.0 / (a.abs() + 1)), golden["scalar_reverse.out"], "reversed scalars")
    let ints = golden["scalar_int.a"]
    let result = ints * 3 + 2
    #expect(result.dtype == .int64)
    expectClose(result, golden["scalar_int.out"], "integer scalars")
  }

  @Test func comparisonsAndLogic() {
    let a = golden["add.a"]
    let b = golden["add.b"]
    expectClose(a .< b, golden["lt.out"], "lt")
    #expect((a .< b).dtype == .bool)
    expectClose(a .>= 0.1, golden["ge_scalar.out"], "ge scalar")
    let p = golden["logical.a"]
    let q = golden["logical.b"]
    expectClose((p .& q) .^ (p .| q.logicalNot()), golden["logical.out"], "logical")
  }

  @Test func unaryMath() {
    let x = golden["unary.x"]
    let cases: [(String, Tensor)] = [
      ("exp", x.exp()), ("log", (x.abs() + 0.1).log()), ("sqrt", x.abs().sqrt()), ("rsqrt", (x.abs() + 0.1).rsqrt()), ("abs", x.abs()),
      ("sigmoid", x.sigmoid()), ("tanh", x.tanh()), ("relu", x.relu()), ("gelu", x.gelu()),
      ("gelu_tanh", x.gelu(approximateWithTanh: true)),
      ("sin", x.sin()), ("cos", x.cos()), ("floor", x.floor()), ("ceil", x.ceil()), ("round", x.round()), ("sign", x.sign()),
      ("log1p", x.abs().log1p()), ("expm1", x.expm1()), ("reciprocal", x.reciprocal()), ("erf", x.erf()), ("atan", x.atan()),
      ("silu", x.silu()), ("square", x.square()), ("clamp", x.clamped(min: -0.5, max: 0.5)),
      ("inverse_sigmoid", golden["unary.sigmoid_x"].inverseSigmoid()),
    ]
    for (name, value) in cases { expectClose(value, golden["unary.\(name)"], name) }
  }

  @Test func reductions() {
    let r = golden["reduce.x"]
    expectClose(r.sum(dim: 1), golden["reduce.sum_1"], "sum 1")
    expectClose(r.sum(dims: [0, 2], keepDims: true), golden["reduce.sum_02_keep"], "sum keep")
    expectClose(r.mean(), golden["reduce.mean"], "mean")
    expectClose(r.mean(dim: -1), golden["reduce.mean_2"], "mean -1")
    expectClose(r.max(dims: [0, 2]), golden["reduce.amax_02"], "amax")
    expectClose(r.min(dims: [1]), golden["reduce.amin_1"], "amin")
    expectClose(r.product(dims: [2]), golden["reduce.prod_2"], "prod")
    expectClose(r.logSumExp(dims: [1]), golden["reduce.logsumexp_1"], "logsumexp")
    expectClose(r.variance(dims: [1]), golden["reduce.var_1"], "var")
    expectClose(r.variance(dims: [1], unbiased: false), golden["reduce.var_biased"], "var biased")
    expectClose(r.standardDeviation(), golden["reduce.std_all"], "std")
    expectClose(r.norm(2, dims: [1]), golden["reduce.norm_1"], "norm 2")
    expectClose(r.norm(1), golden["reduce.norm_l1"], "norm 1")
    let (values, indices) = r.max(dim: 1)
    expectClose(values, golden["reduce.max_1_values"], "max values")
    expectClose(indices, golden["reduce.max_1_indices"], "max indices")
    expectClose(r.argmax(dim: 2), golden["reduce.argmax_2"], "argmax")
    expectClose(r.argmin(), golden["reduce.argmin"], "argmin flat")
    expectClose(r.softmax(dim: 1), golden["reduce.softmax_1"], "softmax")
    expectClose(r.logSoftmax(dim: 2), golden["reduce.log_softmax_2"], "log softmax")
    expectClose(r.cumulativeSum(dim: 1), golden["reduce.cumsum_1"], "cumsum")
  }

  @Test func sortingSelectionAndUnique() {
    let t = golden["select_ops.x"]
    let top = t.topK(3, dim: -1)
    expectClose(top.values, golden["select_ops.topk_values"], "topk values")
    expectClose(top.indices, golden["select_ops.topk_indices"], "topk indices")
    let sorted = t.sorted(dim: 0, descending: true, stable: true)
    expectClose(sorted.values, golden["select_ops.sort_values"], "sort values")
    expectClose(sorted.indices, golden["select_ops.sort_indices"], "sort indices")
    expectClose(t.argsort(dim: 0, descending: true, stable: true), golden["select_ops.sort_indices"], "argsort")
    expectClose((t .> 0.5).nonzero(), golden["select_ops.nonzero"], "nonzero")
    let unique = golden["unique.x"].unique()
    expectClose(unique.values, golden["unique.values"], "unique values")
    expectClose(unique.inverse, golden["unique.inverse"], "unique inverse")
    expectClose(unique.counts, golden["unique.counts"], "unique counts")
  }

  @Test func matrixProducts() {
    expectClose(golden["matmul.a"].matmul(golden["matmul.b"]), golden["matmul.out"], "matmul")
    expectClose(golden["bmm.a"].bmm(golden["bmm.b"]), golden["bmm.out"], "bmm")
    expectClose(golden["mm.a"].mm(golden["mm.b"]), golden["mm.out"], "mm")
  }

  @Test func shapeOps() {
    let s = golden["shape.x"]
    expectClose(s.permuted(2, 0, 1), golden["shape.permute"], "permute")
    expectClose(s.transposed(0, 2).contiguous(), golden["shape.transpose"], "transpose")
    expectClose(s.flattened(from: 1), golden["shape.flatten"], "flatten")
    expectClose(s[.all, 0..<1].expanded(to: [2, 5, 4]), golden["shape.expand"], "expand")
    expectClose(s.repeated([1, 2, 1]), golden["shape.repeat"], "repeat")
    expectClose(Tensor.cat([s, s * 2], dim: 1), golden["shape.cat"], "cat")
    expectClose(Tensor.stack([s, -s], dim: 3), golden["shape.stack"], "stack")
    let pieces = s.split(size: 2, dim: 2)
    #expect(pieces.count == 2)
    expectClose(pieces[0], golden["shape.split0"], "split 0")
    expectClose(pieces[1], golden["shape.split1"], "split 1")
    let sized = s.split(sizes: [1, 3], dim: 2)
    #expect(sized.map(\.shape) == [[2, 3, 1], [2, 3, 3]])
    let chunks = s.chunked(2, dim: 1)
    expectClose(chunks[0], golden["shape.chunk0"], "chunk 0")
    expectClose(chunks[1], golden["shape.chunk1"], "chunk 1")
    expectClose(s.flipped(dims: [0, 2]), golden["shape.flip"], "flip")
    expectClose(s.padded([1, 2, 0, 1], value: 0.5), golden["shape.pad"], "pad")
    expectClose(s[0].lowerTriangle(), golden["shape.tril"], "tril")
    expectClose(s[0].upperTriangle(diagonal: 1), golden["shape.triu"], "triu")
    #expect(s.view(6, 4).shape == [6, 4])
    #expect(s.reshaped(-1).shape == [24])
    #expect(s.unsqueezed(dim: 1).squeezed(dim: 1).shape == [2, 3, 4])
    #expect(s.unsqueezed(dim: 0).unsqueezed(dim: 3).squeezed().shape == [2, 3, 4])
  }

  @Test func indexing() {
    let g = golden["index.x"]
    expectClose(g[1..., .stride(by: 2), 0], golden["index.basic"], "basic slices")
    expectClose(g[-1, .stride(from: 1, to: -1, by: 1), .ellipsis, .newAxis], golden["index.basic_neg"], "negative, ellipsis, new axis")
    let index = Tensor([3, 0, 3] as [Int])
    expectClose(g.indexSelect(dim: 1, index: index), golden["index.index_select"], "index_select")
    expectClose(g[index, .all, Tensor([1, 2, 5] as [Int])], golden["index.advanced"], "advanced")
    expectClose(g[golden["index.mask"]], golden["index.masked"], "bool mask")
    let gatherIndex = golden["index.gather_index"]
    expectClose(g.gather(dim: 1, index: gatherIndex), golden["index.gather"], "gather")
    let source = g[.all, 0..<3]
    expectClose(Tensor.zeros([4, 5, 6]).scattering(dim: 1, index: gatherIndex, source: source), golden["index.scatter"], "scatter")
    expectClose(
      Tensor.zeros([4, 5, 6]).scatteringAdd(dim: 1, index: gatherIndex, source: source), golden["index.scatter_add"], "scatter_add")
    expectClose(g.filling(where: g .> 1, with: -7.0), golden["index.masked_fill"], "masked_fill")
    expectClose(g.selecting(where: g .> 1), golden["index.masked_select"], "masked_select")
    expectClose(Tensor.where(g .> 0, g, g * 0.1), golden["index.where"], "where")

    let put = g.clone()
    put[Tensor([0, 2] as [Int]), Tensor([1, 4] as [Int])] = Tensor.full([6], 9.0)
    expectClose(put, golden["index.index_put"], "index_put")
    let sliced = g.clone()
    sliced[1..<3, .stride(by: 2), 4] = Tensor(scalar: Float(-1))
    expectClose(sliced, golden["index.slice_assign"], "slice assignment")
  }

  @Test func neuralNetworkFunctions() {
    let x = golden["nn.x"]
    expectClose(
      Functional.conv2d(
        x, weight: golden["nn.conv_w"], bias: golden["nn.conv_b"], stride: (2, 1), padding: (1, 2), dilation: (2, 1), groups: 2),
      golden["nn.conv"], "conv2d")
    expectClose(Functional.linear(x, weight: golden["nn.lin_w"], bias: golden["nn.lin_b"]), golden["nn.linear"], "linear")
    expectClose(Functional.maxPool2d(x, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1)), golden["nn.max_pool"], "max_pool2d")
    expectClose(Functional.avgPool2d(x, kernelSize: (2, 2), ceilMode: true, countIncludePad: false), golden["nn.avg_pool"], "avg_pool2d")
    expectClose(Functional.adaptiveAvgPool2d(x, outputSize: (3, 4)), golden["nn.adaptive"], "adaptive_avg_pool2d")
    expectClose(Functional.interpolate(x, size: (5, 17), mode: .nearest), golden["nn.nearest"], "nearest")
    expectClose(Functional.interpolate(x, size: (13, 6), mode: .bilinear), golden["nn.bilinear"], "bilinear")
    expectClose(
      Functional.interpolate(x, size: (13, 6), mode: .bilinear, alignCorners: true), golden["nn.bilinear_aligned"], "bilinear aligned")
    expectClose(Functional.interpolate(x, size: (13, 6), mode: .bicubic), golden["nn.bicubic"], "bicubic")
    let grid = golden["nn.grid"]
    expectClose(Functional.gridSample(x, grid: grid), golden["nn.grid_bilinear"], "grid_sample bilinear")
    expectClose(
      Functional.gridSample(x, grid: grid, mode: .nearest, padding: .border, alignCorners: true), golden["nn.grid_nearest_border"],
      "grid_sample nearest border")
    let w = golden["nn.layer_norm_w"]
    let b = golden["nn.layer_norm_b"]
    expectClose(Functional.layerNorm(x, normalizedShape: [11], weight: w, bias: b), golden["nn.layer_norm"], "layer_norm")
    expectClose(Functional.groupNorm(x, groups: 2, weight: w[0..<4], bias: b[0..<4]), golden["nn.group_norm"], "group_norm")
    let mean = Tensor.zeros([4])
    let variance = Tensor.ones([4])
    let trained = Functional.batchNorm(x, runningMean: mean, runningVariance: variance, weight: w[0..<4], bias: b[0..<4], training: true)
    expectClose(trained, golden["nn.batch_norm_train"], "batch_norm training")
    expectClose(mean, golden["nn.batch_norm_running_mean"], "running mean update")
    expectClose(variance, golden["nn.batch_norm_running_var"], "running var update")
    expectClose(
      Functional.batchNorm(x, runningMean: mean, runningVariance: variance, training: false), golden["nn.batch_norm_eval"],
      "batch_norm eval")
  }

  @Test func losses() {
    let logits = golden["loss.logits"]
    let targets = golden["loss.targets"]
    expectClose(Functional.binaryCrossEntropyWithLogits(logits, targets: targets), golden["loss.bce"], "bce")
    expectClose(
      Functional.binaryCrossEntropyWithLogits(logits, targets: targets, positiveWeight: golden["loss.pos_weight"], reduction: .none),
      golden["loss.bce_none_pos"], "bce pos_weight")
    let classes = golden["loss.classes"]
    let labels = golden["loss.labels"]
    expectClose(
      Functional.crossEntropy(classes, targets: labels, classWeights: golden["loss.class_weights"]), golden["loss.cross_entropy"],
      "ce weights")
    expectClose(Functional.crossEntropy(classes, targets: labels, reduction: .sum), golden["loss.cross_entropy_sum"], "ce sum")
    expectClose(Functional.l1Loss(logits, targets: targets), golden["loss.l1"], "l1")
    expectClose(Functional.l1Loss(logits, targets: targets, reduction: .sum), golden["loss.l1_sum"], "l1 sum")
    expectClose(Functional.mseLoss(logits, targets: targets), golden["loss.mse"], "mse")
    expectClose(Functional.smoothL1Loss(logits, targets: targets, beta: 0.5), golden["loss.smooth_l1"], "smooth l1")
    expectClose(Functional.embedding(golden["loss.emb_i"], weight: golden["loss.emb_w"]), golden["loss.embedding"], "embedding")
  }

  @Test func gradientsThroughLibraryOps() {
    let a = golden["grad.a"].clone().requiringGrad()
    (a.sigmoid() * golden["grad.w"]).pow(2).sum().backward()
    expectClose(a.grad!, golden["grad.a_grad"], "sigmoid-mul-pow grad")

    let input = golden["grad.gi"].clone().requiringGrad()
    let grid = golden["grad.gg"].clone().requiringGrad()
    Functional.gridSample(input, grid: grid).pow(2).sum().backward()
    expectClose(input.grad!, golden["grad.gi_grad"], "grid_sample input grad")
    expectClose(grid.grad!, golden["grad.gg_grad"], "grid_sample grid grad")

    let cx = golden["grad.cx"].clone().requiringGrad()
    let cw = golden["grad.cw"].clone().requiringGrad()
    Functional.conv2d(cx, weight: cw, padding: (1, 1)).tanh().sum().backward()
    expectClose(cx.grad!, golden["grad.cx_grad"], "conv input grad")
    expectClose(cw.grad!, golden["grad.cw_grad"], "conv weight grad")
  }

  @Test func seededRandomNumbersEqualPyTorch() {
    let (rand, randn, randint) = withSeededGenerator(7) { (Tensor.rand([5]), Tensor.randn([2, 3]), Tensor.randint(0, 10, [6])) }
    expectClose(rand, golden["random.rand"], relative: 0, absolute: 0, "rand")
    expectClose(randn, golden["random.randn"], relative: 0, absolute: 0, "randn")
    expectClose(randint, golden["random.randint"], "randint")
    let generator = Generator(seed: 3)
    expectClose(Tensor.randn([4], generator: generator), golden["random.generator_randn"], relative: 0, absolute: 0, "generator randn")
    expectClose(Tensor.randperm(8, generator: generator), golden["random.generator_randperm"], "randperm")
  }
}
