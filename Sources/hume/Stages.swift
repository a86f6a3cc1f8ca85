import HumeCore
import HumeStages
import HumeDenoiseStage
import HumeEditStage
import HumeEmbedStage
import HumeNoop
import HumeRetrieveStage
import HumeUploadStage
import HumeWorker

/// The stage implementation for a stage name.
func makeStage(_ name: String, workMs: Double, failRate: Double, concurrency: Int, batch: Int?, upload: UploadOptions? = nil) throws -> any Stage {
    if name.hasPrefix("noop") {
        return NoopStage(name: name, workMs: workMs, failRate: failRate, batchSize: batch, concurrency: max(1, concurrency))
    }
    if name == "retrieve" {
        return RetrieveStage(root: humePaths.databases, batchSize: batch ?? 16, concurrency: concurrency)
    }
    if name == "embed" {
        do { return try EmbedStage(name: name, modelDirectory: humePaths.model, batchSize: batch ?? 64) } catch {
            throw HumeError(.unknown, "The embed stage could not load its model (\(error)); run Ops/fetch-model.sh.")
        }
    }
    if name == "denoise" { return DenoiseStage(name: name, concurrency: max(1, concurrency), root: humePaths.databases) }
    if name == "edit" {
        do { return try EditStage(name: name, modelDirectory: humePaths.model, root: humePaths.databases) } catch {
            throw HumeError(.unknown, "The edit stage could not load its model (\(error)); run Ops/fetch-model.sh.")
        }
    }
    if name == "upload" { return try UploadStage(name: name, configuration: (upload ?? UploadOptions.parse([])).configuration(), concurrency: concurrency) }
    throw HumeError(.unknown, "Stage \"\(name)\" has no worker implementation in this build; available: noop, noop1…noop5, embed, retrieve, denoise, edit, upload.")
}
