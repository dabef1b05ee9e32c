import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import TorchNN

/// Layers against torch.nn (goldens from Scripts/goldens/make_torchnn_goldens.py).
@Suite struct LayerTests {
  let golden = layerGoldens

  @Test func seededInitialisationEqualsPyTorch() throws {
    let (linear, conv, attention) = withSeededGenerator(11) {
      (Linear(5, 3), Conv2d(4, 6, kernelSize: 3, groups: 2), MultiheadAttention(embedDim: 8, headCount: 2))
    }
    let embedding = withSeededGenerator(12) { Embedding(4, 3) }
    for (name, module) in [("init.linear", linear), ("init.conv", conv), ("init.mha", attention), ("init.embedding", embedding)]
      as [(String, Module)]
    {
      let expected = golden.stateDict(name)
      let actual = module.stateDict()
      #expect(actual.map(\.key).sorted() == expected.keys.sorted(), "\(name) keys")
      for (key, tensor) in actual {
        expectClose(tensor, expected[key]!, relative: 0, absolute: 0, "\(name).\(key)")
      }
    }
  }

  @Test func multiheadAttentionEqualsPyTorch() throws {
    let attention = withSeededGenerator(0) { MultiheadAttention(embedDim: 8, headCount: 2) }
    try attention.load(stateDict: golden.stateDict("mha"))
    let query = golden["mha.query"].clone().requiringGrad()
    let (output, weights) = attention(
      query: query, key: golden["mha.key"], value: golden["mha.value"], keyPaddingMask: golden["mha.padding"],
      attentionMask: golden["mha.attn_mask"], needWeights: true)
    expectClose(output, golden["mha.output"], "output")
    expectClose(weights!, golden["mha.weights"], "averaged weights")
    output.pow(2).sum().backward()
    expectClose(query.grad!, golden["mha.query_grad"], relative: 1e-4, absolute: 1e-5, "query grad")
    expectClose(attention.inProjectionWeight!.grad!, golden["mha.in_proj_weight_grad"], relative: 1e-4, absolute: 1e-5, "in_proj grad")
    expectClose(attention.outProjection.weight.grad!, golden["mha.out_proj_weight_grad"], relative: 1e-4, absolute: 1e-5, "out_proj grad")
  }

  @Test func multiheadAttentionWithOtherKeyAndValueWidths() throws {
    let attention = withSeededGenerator(0) { MultiheadAttention(embedDim: 8, headCount: 4, keyDim: 5, valueDim: 3) }
    #expect(attention.stateDict().map(\.key) == golden.keyList("mha_kv.keys"))
    try attention.load(stateDict: golden.stateDict("mha_kv"))
    let (output, weights) = attention(
      query: golden["mha.query"], key: golden["mha_kv.key"], value: golden["mha_kv.value"], needWeights: true, averageWeights: false)
    expectClose(output, golden["mha_kv.output"], "output")
    expectClose(weights!, golden["mha_kv.weights"], "per-head weights")
  }

  @Test func batchFirstEqualsSequenceFirst() {
    let attention = withSeededGenerator(3) { MultiheadAttention(embedDim: 8, headCount: 2, batchFirst: true) }
    let sequenceFirst = withSeededGenerator(4) { MultiheadAttention(embedDim: 8, headCount: 2) }
    try! sequenceFirst.load(stateDict: Dictionary(uniqueKeysWithValues: attention.stateDict().map { ($0.key, $0.tensor) }))
    let q = Tensor.randn([2, 4, 8], generator: Generator(seed: 1))
    let a = attention(query: q, key: q, value: q).output
    let b = sequenceFirst(query: q.transposed(0, 1), key: q.transposed(0, 1), value: q.transposed(0, 1)).output.transposed(0, 1)
    expectClose(a, b, "batch first")
  }

  @Test func batchNormTrainsRunningStatisticsAsPyTorch() throws {
    let norm = BatchNorm2d(4)
    #expect(norm.stateDict().map(\.key) == golden.keyList("batchnorm.keys"))
    try norm.load(stateDict: golden.stateDict("batchnorm.before"))
    let after = golden.stateDict("batchnorm.after")
    let x = golden["batchnorm.x"]
    norm.train()
    expectClose(norm(x), golden["batchnorm.train1"], "first training batch")
    expectClose(norm(x * 2 + 1), golden["batchnorm.train2"], "second training batch")
    norm.eval()
    expectClose(norm(x), golden["batchnorm.eval"], "evaluation")
    for (key, tensor) in norm.stateDict() where key != "weight" && key != "bias" {
      expectClose(tensor, after[key]!, "\(key) after two batches")
    }
  }

  @Test func normalizationLayersEqualPyTorch() throws {
    let x = golden["batchnorm.x"]
    let layerNorm = LayerNorm(6)
    try layerNorm.load(stateDict: golden.stateDict("layernorm"))
    expectClose(layerNorm(x), golden["layernorm.output"], "LayerNorm")
    let groupNorm = GroupNorm(groups: 2, channels: 4)
    try groupNorm.load(stateDict: golden.stateDict("groupnorm"))
    expectClose(groupNorm(x), golden["groupnorm.output"], "GroupNorm")
    let frozen = FrozenBatchNorm2d(4)
    try frozen.load(stateDict: [
      "weight": golden["frozen.weight"], "bias": golden["frozen.bias"], "running_mean": golden["frozen.running_mean"],
      "running_var": golden["frozen.running_var"],
    ])
    expectClose(frozen(x), golden["frozen.output"], "FrozenBatchNorm2d")
    #expect(frozen.parameters().isEmpty, "frozen batch norm has buffers only")
  }

  @Test func detrMLPEqualsPyTorch() throws {
    let mlp = withSeededGenerator(0) { MLP(inputDim: 6, hiddenDim: 10, outputDim: 4, layerCount: 3) }
    let expected = golden.stateDict("mlp")
    #expect(Set(mlp.stateDict().map(\.key)) == Set(expected.keys))
    try mlp.load(stateDict: expected)
    expectClose(mlp(golden["batchnorm.x"]), golden["mlp.output"], "MLP")
  }

  @Test func dropoutIsIdentityInEvaluationAndScalesInTraining() {
    let dropout = Dropout(0.5)
    let x = Tensor.ones([1000])
    let trained = withSeededGenerator(0) { dropout(x).asArray(Float.self) }
    #expect(Set(trained).isSubset(of: [0, 2]))
    #expect((350...650).contains(trained.filter { $0 == 0 }.count))
    dropout.eval()
    #expect(dropout(x).asArray(Float.self) == x.asArray(Float.self))
  }

  /// Our composite layers against finite differences, in float64.
  @Test func compositeLayersMatchFiniteDifferences() {
    let attention = withSeededGenerator(5) { MultiheadAttention(embedDim: 4, headCount: 2) }
    attention.to(dtype: .float64)
    #expect(attention.parameters().allSatisfy { $0.dtype == .float64 && $0.requiresGrad })
    let memory = Tensor.randn([3, 1, 4], dtype: .float64, generator: Generator(seed: 2))
    let padding = Tensor([false, false, true]).view(1, 3)
    expectGradientMatchesFiniteDifferences(
      of: { attention(query: $0, key: memory, value: memory, keyPaddingMask: padding).output },
      at: Tensor.randn([2, 1, 4], dtype: .float64, generator: Generator(seed: 3)))
    expectGradientMatchesFiniteDifferences(
      of: { attention(query: memory, key: $0, value: $0).output },
      at: Tensor.randn([2, 1, 4], dtype: .float64, generator: Generator(seed: 6)))
    let frozen = FrozenBatchNorm2d(2)
    withNoGrad {
      frozen.runningVariance.fill(with: 0.5)
      frozen.weight.fill(with: 2)
    }
    frozen.to(dtype: .float64)
    expectGradientMatchesFiniteDifferences(
      of: { frozen($0) }, at: Tensor.randn([1, 2, 2, 2], dtype: .float64, generator: Generator(seed: 4)))
  }
}
