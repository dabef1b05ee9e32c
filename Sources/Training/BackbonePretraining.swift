import COCO
import Detection
import Detectors
import Foundation
import Torch
import TorchNN

/// Pretrains a detector's ResNet backbone on the built-in shapes' classification task
/// (`SyntheticShapes.classificationCrops`), the stand-in for the ImageNet weights every reference
/// recipe starts from: the network with trainable batch norm, global average pooling and a linear
/// classifier, SGD with momentum 0.9 and weight decay 1e-4, a linear warmup over the first epoch's
/// first tenth then cosine decay to zero, horizontal flips. The result is a torchvision-layout
/// state dict (`conv1`, `bn1`, `layer1.0.conv1`, ..., `fc`) that `BackboneWeights.load` reads, so
/// `detr train --backbone-weights` starts from it as from torchvision's ImageNet file.
public struct BackbonePretraining {
  public struct Settings: Codable, Sendable, Equatable {
    /// Rendered images the training crops are cut from (about 3.5 crops each).
    public var images = 3000
    /// Rendered images of the held-out crops, on which accuracy is measured.
    public var validationImages = 300
    /// Side of the rendered images; the crops are resized to `cropSize`.
    public var imageSize = 256
    public var cropSize = 64
    public var epochs = 6
    public var batchSize = 64
    public var learningRate = 0.1
    public var weightDecay = 1e-4
    /// Of the rendered images (the detection set's seeds start at 0; this default stays clear of them)
    /// and of the initialization and order.
    public var seed: UInt64 = 1_000_003
    public init() {}
  }

  /// One epoch's summary.
  public struct Epoch: Codable, Sendable {
    public var epoch: Int
    public var loss: Double
    public var trainAccuracy: Double
    public var validationAccuracy: Double
    public var seconds: Double
    public var imagesPerSecond: Double
  }

  public let backbone: BackboneConfig
  public let settings: Settings
  public let device: Device

  public init(backbone: BackboneConfig, settings: Settings, device: Device = .cpu) {
    var trainable = backbone
    trainable.frozenNormalization = false
    // ImageNet networks are not dilated; a DC5 detector's dilation changes no weight's shape.
    trainable.dilation = false
    self.backbone = trainable
    self.settings = settings
    self.device = device
  }

  /// The classifier: the backbone's ResNet, then the mean over positions and a linear map to the classes.
  public final class Classifier: Module {
    public let resnet: ResNet
    public let fc: Linear

    init(backbone: BackboneConfig, classes: Int) {
      resnet = backbone.makeResNet()
      fc = Linear(resnet.stageChannels[3], classes)
      super.init()
      registerModule("resnet", resnet)
      registerModule("fc", fc)
    }

    /// Logits `[batch, classes]` for normalized images `[batch, 3, h, w]`.
    public func callAsFunction(_ images: Tensor) -> Tensor { fc(resnet(images)[0].mean(dims: [2, 3])) }

    /// torchvision's names: the ResNet's own, then `fc.weight`, `fc.bias`.
    public func torchvisionStateDict() -> [String: Tensor] {
      var state = resnet.stateDict().reduce(into: [String: Tensor]()) { $0[$1.key] = $1.tensor.to(device: .cpu).contiguous() }
      for (key, tensor) in fc.stateDict() { state["fc." + key] = tensor.to(device: .cpu).contiguous() }
      return state
    }
  }

  /// The loss stopped being a number: the weights are not written.
  public struct DivergedError: Error, CustomStringConvertible {
    public let epoch: Int
    public let step: Int
    public let learningRate: Double
    public var description: String {
      "the pretraining loss became \(Double.nan) at epoch \(epoch), step \(step): the learning rate \(learningRate) is too high; lower --learning-rate"
    }
  }

  /// Trains and returns the classifier with each epoch's summary (`progress` sees each as it ends,
  /// and each `logEvery` steps the step, steps per epoch and running loss). Throws `DivergedError`
  /// when the loss is not finite.
  public func run(
    logEvery: Int = 50, step stepProgress: (Int, Int, Double) -> Void = { _, _, _ in }, progress: (Epoch) -> Void = { _ in }
  ) throws -> (classifier: Classifier, epochs: [Epoch]) {
    let s = settings
    let train = SyntheticShapes.classificationCrops(images: s.images, size: s.imageSize, cropSize: s.cropSize, seed: s.seed)
    let validation = SyntheticShapes.classificationCrops(
      images: s.validationImages, size: s.imageSize, cropSize: s.cropSize, seed: s.seed &+ 1)
    let classes = SyntheticShapes.cropClassNames.count
    let classifier = Generator(seed: s.seed).withCurrent { Classifier(backbone: backbone, classes: classes) }
    classifier.to(device: device)
    let decays = classifier.trainableParameters().filter { $0.tensor.rank > 1 }
    let flat = classifier.trainableParameters().filter { $0.tensor.rank <= 1 }
    // Weight decay on the convolution and linear weights only (biases and batch-norm scales excluded).
    let optimizer = SGD(
      groups: [
        ParameterGroup(parameters: decays, learningRate: s.learningRate, weightDecay: s.weightDecay),
        ParameterGroup(parameters: flat, learningRate: s.learningRate, weightDecay: 0),
      ], momentum: 0.9)
    let stepsPerEpoch = (train.count + s.batchSize - 1) / s.batchSize
    let warmup = Swift.max(1, stepsPerEpoch / 10)
    let schedule = WarmupSchedule(
      warmupSteps: warmup, startFactor: 0.01, then: CosineSchedule(totalSteps: Swift.max(1, stepsPerEpoch * s.epochs - warmup)))
    let transform = DETRTransform(mode: .evaluation)
    var random = SeededRandom(seed: s.seed, stream: 2, item: 0)
    var epochs: [Epoch] = []
    var globalStep = 0
    for epoch in 1...s.epochs {
      let start = Date()
      classifier.train()
      var order = Array(train.indices)
      for index in order.indices.reversed() where index > 0 { order.swapAt(index, random.integer(0, index)) }
      var (lossSum, correct) = (0.0, 0)
      for (stepInEpoch, first) in stride(from: 0, to: order.count, by: s.batchSize).enumerated() {
        let picked = order[first..<Swift.min(order.count, first + s.batchSize)].map { train[$0] }
        let flips = picked.map { _ in random.unit() < 0.5 }
        let (images, labels) = Self.batch(picked, flips: flips, transform: transform, device: device)
        optimizer.setLearningRates(schedule.learningRates(base: [s.learningRate, s.learningRate], atStep: globalStep))
        optimizer.zeroGrad()
        let logits = classifier(images)
        let loss = Functional.crossEntropy(logits, targets: labels)
        loss.backward()
        optimizer.step()
        globalStep += 1
        let value = loss.item(Double.self)
        guard value.isFinite else { throw DivergedError(epoch: epoch, step: stepInEpoch + 1, learningRate: s.learningRate) }
        lossSum += value * Double(picked.count)
        correct += withNoGrad { (logits.argmax(dim: 1) .== labels).to(.int64).sum().item(Int.self) }
        if logEvery > 0 && (stepInEpoch + 1) % logEvery == 0 { stepProgress(stepInEpoch + 1, stepsPerEpoch, value) }
      }
      let seconds = Date().timeIntervalSince(start)
      let summary = Epoch(
        epoch: epoch, loss: lossSum / Double(train.count), trainAccuracy: Double(correct) / Double(train.count),
        validationAccuracy: accuracy(of: classifier, on: validation, transform: transform),
        seconds: seconds, imagesPerSecond: Double(train.count) / seconds)
      epochs.append(summary)
      progress(summary)
    }
    return (classifier, epochs)
  }

  /// The share of `crops` the classifier labels right (batch norm in evaluation mode).
  public func accuracy(of classifier: Classifier, on crops: [SyntheticShapes.Crop], transform: DETRTransform) -> Double {
    classifier.eval()
    defer { classifier.train() }
    var correct = 0
    withInferenceMode {
      for first in stride(from: 0, to: crops.count, by: 256) {
        let picked = Array(crops[first..<Swift.min(crops.count, first + 256)])
        let (images, labels) = Self.batch(picked, flips: picked.map { _ in false }, transform: transform, device: device)
        correct += (classifier(images).argmax(dim: 1) .== labels).to(.int64).sum().item(Int.self)
      }
    }
    return Double(correct) / Double(Swift.max(1, crops.count))
  }

  /// Normalized images `[n, 3, s, s]` (flipped where asked) and labels `[n]` (int64).
  static func batch(
    _ crops: [SyntheticShapes.Crop], flips: [Bool], transform: DETRTransform, device: Device
  ) -> (images: Tensor, labels: Tensor) {
    let side = crops[0].image.width
    var pixels: [Float] = []
    pixels.reserveCapacity(crops.count * 3 * side * side)
    for (crop, flip) in zip(crops, flips) { pixels += transform.normalize(flip ? crop.image.flippedHorizontally() : crop.image) }
    let images = Tensor(pixels, shape: [crops.count, 3, side, side]).to(device: device)
    return (images, Tensor(crops.map { Int64($0.label) }).to(device: device))
  }
}
