import HumeCore
import HumeNoop
import HumeRetrieveStage
import HumeWorker

/// The stage implementation for a stage name.
func makeStage(_ name: String, workMs: Double, failRate: Double, concurrency: Int, batch: Int?) throws -> any Stage {
    if name.hasPrefix("noop") {
        return NoopStage(name: name, workMs: workMs, failRate: failRate, batchSize: batch, concurrency: max(1, concurrency))
    }
    if name == "retrieve" {
        return RetrieveStage(batchSize: batch ?? 16, concurrency: concurrency)
    }
    throw HumeError(.unknown, "Stage \"\(name)\" has no worker implementation in this build; available: noop, noop1…noop5, retrieve.")
}
