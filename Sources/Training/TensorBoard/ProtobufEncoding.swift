/// The few protocol-buffer encodings TensorBoard's event messages need (proto3: fields at their
/// default value are left out, as every protobuf library writes them).
struct ProtobufMessage {
  private(set) var bytes: [UInt8] = []

  private mutating func varint(_ value: UInt64) {
    var value = value
    while value >= 0x80 {
      bytes.append(UInt8(value & 0x7F) | 0x80)
      value >>= 7
    }
    bytes.append(UInt8(value))
  }

  private mutating func key(_ field: Int, wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

  mutating func double(_ field: Int, _ value: Double) {
    guard value != 0 else { return }
    key(field, wireType: 1)
    withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
  }

  /// `inOneof`: a field of a `oneof` is written even at its default, as its presence is the choice.
  mutating func float(_ field: Int, _ value: Float, inOneof: Bool = false) {
    guard value != 0 || inOneof else { return }
    key(field, wireType: 5)
    withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
  }

  mutating func integer(_ field: Int, _ value: Int) {
    guard value != 0 else { return }
    key(field, wireType: 0)
    varint(UInt64(bitPattern: Int64(value)))
  }

  mutating func bytes(_ field: Int, _ value: [UInt8]) {
    guard !value.isEmpty else { return }
    key(field, wireType: 2)
    varint(UInt64(value.count))
    bytes.append(contentsOf: value)
  }

  mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

  mutating func message(_ field: Int, _ value: ProtobufMessage) {
    key(field, wireType: 2)
    varint(UInt64(value.bytes.count))
    bytes.append(contentsOf: value.bytes)
  }
}
