import Foundation

/// `--nproc-per-node N`: starts N workers of the same command on this machine, as torchrun does (the
/// same environment variables, a free port on the loopback address), and watches them. When one
/// fails the others are stopped and the failure is reported naming its rank. SIGINT and SIGTERM to the
/// launcher go on to the workers (each runs in a process group of its own, so a terminal's Ctrl-C
/// reaches only the launcher); a worker stops by itself if the launcher dies (`stopsWithItsLauncher`).
struct WorkerLauncher {
  /// Set in each worker's environment: the launcher's pid.
  static let launcherVariable = "SWIFT_DETR_LAUNCHER_PID"
  let count: Int
  /// The command line of a worker: this one without `--nproc-per-node`.
  let arguments: [String]
  /// Intra-op threads per worker (`OMP_NUM_THREADS`) unless the environment sets it: the cores shared out.
  var threadsPerWorker: Int { Swift.max(1, ProcessInfo.processInfo.activeProcessorCount / count) }
  /// How long stopped workers get to exit after SIGTERM before SIGKILL.
  var gracePeriod: TimeInterval = 10

  /// The worker arguments: `arguments` without `--nproc-per-node N` (or `=N`).
  static func workerArguments(_ arguments: [String]) -> [String] {
    var result: [String] = []
    var skipNext = false
    for argument in arguments {
      if skipNext {
        skipNext = false
        continue
      }
      if argument == "--nproc-per-node" {
        skipNext = true
      } else if !argument.hasPrefix("--nproc-per-node=") {
        result.append(argument)
      }
    }
    return result
  }

  /// A TCP port that is free on the loopback address now.
  static func freePort() throws -> Int {
    let socketHandle = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socketHandle >= 0 else { throw CommandFailure("cannot open a socket to find a free port: set MASTER_PORT") }
    defer { close(socketHandle) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(socketHandle, $0, length) == 0 && getsockname(socketHandle, $0, &length) == 0
      }
    }
    guard bound else { throw CommandFailure("cannot find a free port on 127.0.0.1: set MASTER_PORT") }
    return Int(UInt16(bigEndian: address.sin_port))
  }

  /// Starts the workers and waits for all; throws naming the first that failed (the others are stopped).
  func run() throws {
    let environment = ProcessInfo.processInfo.environment
    let port = try environment["MASTER_PORT"].flatMap(Int.init) ?? Self.freePort()
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var workers: [Process] = []
    func stopAll() {
      for worker in workers where worker.isRunning { kill(worker.processIdentifier, SIGTERM) }
      let deadline = Date().addingTimeInterval(gracePeriod)
      while workers.contains(where: \.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
      for worker in workers where worker.isRunning { kill(worker.processIdentifier, SIGKILL) }
      for worker in workers { worker.waitUntilExit() }
    }
    for rank in 0..<count {
      let worker = Process()
      worker.executableURL = executable
      worker.arguments = arguments
      var variables = environment
      variables["RANK"] = "\(rank)"
      variables["LOCAL_RANK"] = "\(rank)"
      variables["WORLD_SIZE"] = "\(count)"
      variables["LOCAL_WORLD_SIZE"] = "\(count)"
      variables["MASTER_ADDR"] = environment["MASTER_ADDR"] ?? "127.0.0.1"
      variables["MASTER_PORT"] = "\(port)"
      variables[Self.launcherVariable] = "\(getpid())"
      if variables["OMP_NUM_THREADS"] == nil { variables["OMP_NUM_THREADS"] = "\(threadsPerWorker)" }
      worker.environment = variables
      do {
        try worker.run()
      } catch {
        stopAll()
        throw CommandFailure("could not start worker \(rank) (\(executable.path)): \(error.localizedDescription)")
      }
      workers.append(worker)
    }
    // Signals to the launcher go on to the workers, which stop; the launcher then reports how.
    final class Received: @unchecked Sendable {
      private let lock = NSLock()
      private var number: Int32?
      var value: Int32? { lock.withLock { number } }
      func set(_ value: Int32) { lock.withLock { number = value } }
    }
    let received = Received()
    let pids = workers.map(\.processIdentifier)
    let signals = [SIGINT, SIGTERM].map { number in
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        received.set(number)
        for pid in pids { kill(pid, number) }
      }
      source.resume()
      return source
    }
    defer { signals.forEach { $0.cancel() } }
    while true {
      if let number = received.value {
        stopAll()
        throw CommandFailure("stopped by \(number == SIGINT ? "SIGINT" : "SIGTERM"): the workers were stopped. Continue with --resume")
      }
      if let failed = workers.indices.first(where: { !workers[$0].isRunning && !Self.succeeded(workers[$0]) }) {
        let worker = workers[failed]
        let how = Self.describeExit(worker)
        stopAll()
        throw CommandFailure(
          "worker rank \(failed) of \(count) (pid \(worker.processIdentifier)) \(how); the other workers were stopped. Continue with --resume")
      }
      if workers.allSatisfy({ !$0.isRunning }) { return }
      Thread.sleep(forTimeInterval: 0.1)
    }
  }

  /// In a worker the launcher started: ask the kernel to send SIGKILL when the launcher dies (even by
  /// SIGKILL), so that no worker is left training alone.
  static func stopsWithItsLauncher() {
    guard let text = ProcessInfo.processInfo.environment[launcherVariable], let launcher = Int32(text) else { return }
    // prctl(PR_SET_PDEATHSIG, SIGKILL): Glibc's Swift module leaves <sys/prctl.h> out, so it is looked up.
    typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
    let setParentDeathSignal: Int32 = 1
    if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") {
      _ = unsafeBitCast(symbol, to: Prctl.self)(setParentDeathSignal, UInt(SIGKILL), 0, 0, 0)
    }
    // The launcher may have died before the call: then this process already has another parent.
    if getppid() != launcher { exit(1) }
  }

  static func succeeded(_ worker: Process) -> Bool {
    worker.terminationReason == .exit && worker.terminationStatus == 0
  }

  static func describeExit(_ worker: Process) -> String {
    if worker.terminationReason == .uncaughtSignal {
      let signal = worker.terminationStatus
      let names: [Int32: String] = [SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS"]
      return "was killed by signal \(signal)" + (names[signal].map { " (\($0)\(signal == SIGKILL ? ", e.g. by the out-of-memory killer" : ""))" } ?? "")
    }
    return "exited with status \(worker.terminationStatus)"
  }
}
