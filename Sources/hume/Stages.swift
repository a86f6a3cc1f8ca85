import HumeCore
import HumeStages
import HumeDenoiseStage
import HumeEditStage
import HumeEmbed
import HumeEmbedStage
import HumeNoop
import HumeRetrieveStage
import HumeUploadStage
import HumeWorker

/// One sentence for a text model that would not load: a missing file already says how to install it
/// (`EmbedError.modelNotFound`); anything else names the folder and says how to install the model again.
func modelUnavailable(_ error: any Error, for who: String = "Hume") -> HumeError {
    if let e = error as? EmbedError, e.code == .modelNotFound {
        return HumeError(.unknown, "\(who) cannot start without its text model: \(e.message)")
    }
    return HumeError(.unknown, "\(who) could not load all-MiniLM-L6-v2 from \(humePaths.model.path): \(error); run Ops/fetch-model.sh to install it again.")
}

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
            throw modelUnavailable(error, for: "The embed stage")
        }
    }
    if name == "denoise" { return DenoiseStage(name: name, concurrency: max(1, concurrency), root: humePaths.databases) }
    if name == "edit" {
        do { return try EditStage(name: name, modelDirectory: humePaths.model, root: humePaths.databases) } catch {
            throw modelUnavailable(error, for: "The edit stage")
        }
    }
    if name == "upload" { return try UploadStage(name: name, configuration: (upload ?? UploadOptions.parse([])).configuration(), concurrency: concurrency) }
    throw HumeError(.unknown, "Stage \"\(name)\" has no worker implementation in this build; available: noop, noop1…noop5, embed, retrieve, denoise, edit, upload.")
}
