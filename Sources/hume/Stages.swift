import HumeCore
import HumeNoop
import HumeWorker

/// The stage implementation for a stage name.
func makeStage(_ name: String, workMs: Double, failRate: Double, concurrency: Int, batch: Int?) throws -> any Stage {
    if name.hasPrefix("noop") {
        return NoopStage(name: name, workMs: workMs, failRate: failRate, batchSize: batch, concurrency: max(1, concurrency))
    }
    throw HumeError(.unknown, "Stage \"\(name)\" has no worker implementation in this build; available: noop, noop1…noop5.")
}
