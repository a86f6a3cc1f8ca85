import ArgumentParser
import HumeCore
import HumeData
import HumeStages

/// The generation settings of every command that generates (`hume generate`, `hume eval fidelity`, `hume eval
/// generate`): declared once, turned into the one parameters type (`GenerateParameters`), and checked by its one
/// parser in `validate()`, so a bad value gets the sentence a worker would send, before anything loads.
struct GenerateOptions: ParsableArguments {
    @Option(help: "Database name.") var database = Database.defaultName
    @Option(name: .short, help: "Neighbours (1…\(GenerateParameters.maxK)).") var k = 16
    @Option(help: "Side: 32, 64 or 128 (128: the 64² image refined).") var size = GenerateParameters.defaultSize
    @Option(help: "DDIM steps of each refined level (sizes above 64).") var refineSteps = GenerateParameters.defaultRefineSteps
    @Option(help: "Time t a refined level starts from (0.05…1; lower keeps more of the coarse image).") var refineFrom = GenerateParameters.defaultRefineFrom
    @Option(help: "DDIM steps (1…200).") var steps = 20
    @Option(help: "γ: weight of the prompt's neighbours over a random background sample (absent: none).") var guidance: Double?
    @Option(help: "Similarity temperature: neighbour i gets log-weight −(s_best − sᵢ)/temperature (smaller: follow the best matches).")
    var temperature = GenerateParameters.defaultTemperature
    @Option(help: "Rank prior: neighbour i gets log-weight −focus·i (the first version's only weighting, 0.3).")
    var focus = GenerateParameters.defaultFocus
    @Option(help: "Log-weight bonus for the neighbours in their consensus subgroup (uses database labels; 0: off).")
    var consensus = GenerateParameters.defaultConsensus
    @Option(help: "Neighbours scored more than this below the best are not used (2 keeps all).")
    var margin = GenerateParameters.defaultMargin ?? 2
    @Option(help: "Silhouette overlap a neighbour needs with the one that sets the sample's shape (0: every neighbour).")
    var coherence = GenerateParameters.defaultCoherence ?? 0
    @Flag(inversion: .prefixedNo, help: "Mirror, scale and shift neighbours onto the shape-setting one first.") var register = true
    @Option(help: "Patch sizes as a multiple of the prototype's.") var patchScale = GenerateParameters.defaultPatchScale
    @Option(help: "Largest distance of a neighbour's mean ink colour from the shape-setting one's (RGB in [0, 1]; 2 keeps all; default: the stage's).")
    var colourAgreement: Double?
    @Option(help: "Largest difference of a neighbour's dark-rimmed share from the shape-setting one's (0…1; 1 keeps all; default: the stage's).")
    var outlineAgreement: Double?
    @Flag(inversion: .prefixedNo, help: "Recolour a sample whose body is not the colour the prompt names (\"a blue car\").")
    var promptColour = true

    /// The settings as the parameters type (seed 1; commands set their own).
    var parameters: GenerateParameters {
        var p = GenerateParameters()
        p.database = database; p.k = k; p.size = size; p.steps = steps; p.guidance = guidance
        p.temperature = temperature; p.focus = focus; p.consensus = consensus
        p.margin = margin; p.coherence = coherence; p.register = register; p.patchScale = patchScale
        p.colourAgreement = colourAgreement ?? GenerateParameters.defaultColourAgreement
        p.outlineAgreement = outlineAgreement ?? GenerateParameters.defaultOutlineAgreement
        p.refineSteps = refineSteps; p.refineFrom = refineFrom; p.promptColour = promptColour
        return p
    }

    /// Runs the settings through the parser every stage uses.
    func validate() throws {
        do { _ = try GenerateParameters(object: parameters.object) } catch let e as StageInputError {
            throw ValidationError(e.message)
        }
    }
}
