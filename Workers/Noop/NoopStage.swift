import Foundation
import HumeStages

/// A stage that does no real work: it echoes its input after an optional simulated work time, and fails on
/// demand. Tests, the demo and the benchmarks route jobs through one or several of these.
///
/// - An input containing `#poison` fails retryably every time (it ends dead-lettered).
/// - An input containing `#invalid` fails permanently (bad input).
/// - `failRate` fails that fraction of attempts retryably, chosen by a hash of (job, attempt), so reruns agree.
public struct NoopStage: Stage {
    public let name: String
    public let workMs: Double
    public let failRate: Double
    public let batchSize: Int
    public let concurrency: Int

    public init(name: String = "noop", workMs: Double = 0, failRate: Double = 0, batchSize: Int? = nil, concurrency: Int = 1) {
        self.name = name
        self.workMs = workMs
        self.failRate = failRate
        // With no work time a worker batches widely; with a work time it holds one task per thread. 1024 tasks a
        // batch (credit 2048 with the prefetch): the credit has to cover a broker round trip, and at 256 (credit 512)
        // a zero-work worker waited on the broker's rounds — 81k-92k jobs/s against 104k-110k at 1024, in 3
        // interleaved pairs of `hume bench broker --stages 1 --tasks 100000 --workers 1 --worker-batch 256|1024`.
        self.batchSize = batchSize ?? (workMs > 0 ? 1 : 1024)
        self.concurrency = concurrency
    }

    static let poison = Array("#poison".utf8)
    static let invalid = Array("#invalid".utf8)

    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        if workMs > 0 { usleep(UInt32(workMs * 1000 * Double(tasks.count))) }
        return tasks.map { t in
            if contains(t.input, Self.invalid) { return .permanent("The input asks to be refused (#invalid).") }
            if contains(t.input, Self.poison) { return .retryable("Simulated crash on a poison input (#poison).") }
            if failRate > 0 {
                var h = t.jobID &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(t.attempt) &* 0xBF58_476D_1CE4_E5B9
                h ^= h >> 31
                if Double(h % 1_000_000) / 1_000_000 < failRate { return .retryable("Simulated failure (fail rate \(failRate)).") }
            }
            return .ok(t.input)
        }
    }

    func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard hay.count >= needle.count, let first = needle.first else { return false }
        var i = 0
        while i + needle.count <= hay.count {
            if hay[i] == first && hay[i..<i + needle.count].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}
