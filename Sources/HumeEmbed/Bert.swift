import COpenBLAS
import HumeLaneMath
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The BERT hyper-parameters, decoded from the model's own `config.json`.
public struct BertConfig: Decodable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var layerNormEps: Float
    public var hiddenAct: String
    public var positionEmbeddingType: String?

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case layerNormEps = "layer_norm_eps"
        case hiddenAct = "hidden_act"
        case positionEmbeddingType = "position_embedding_type"
    }

    /// Width of one attention head.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// Reads and checks `config.json`.
    /// - Throws: `EmbedError` `.invalidConfig` when the file is unreadable, not a BERT config, or
    ///   describes something this encoder does not implement (non-GELU activation, relative positions,
    ///   a hidden size not divisible by the head count).
    public static func load(from url: URL) throws -> BertConfig {
        let config: BertConfig
        do {
            config = try JSONDecoder().decode(BertConfig.self, from: Data(contentsOf: url))
        } catch {
            throw EmbedError(code: .invalidConfig, message: "Cannot read the BERT config \(url.path).", cause: error)
        }
        func bad(_ what: String) -> EmbedError {
            EmbedError(code: .invalidConfig, message: "The BERT config \(url.path) \(what).")
        }
        guard config.hiddenAct == "gelu" else { throw bad("has hidden_act \"\(config.hiddenAct)\"; only the exact erf \"gelu\" is supported") }
        guard (config.positionEmbeddingType ?? "absolute") == "absolute" else {
            throw bad("has position_embedding_type \"\(config.positionEmbeddingType!)\"; only \"absolute\" is supported")
        }
        guard config.hiddenSize > 0, config.numAttentionHeads > 0, config.hiddenSize % config.numAttentionHeads == 0 else {
            throw bad("has hidden_size \(config.hiddenSize) not divisible by num_attention_heads \(config.numAttentionHeads)")
        }
        guard config.numHiddenLayers > 0, config.intermediateSize > 0, config.vocabSize > 0,
              config.maxPositionEmbeddings > 0, config.typeVocabSize > 0 else {
            throw bad("has a non-positive size")
        }
        return config
    }
}

/// The checkpoint's tensor names (Hugging Face `BertModel` layout without the `bert.` prefix;
/// `pooler.*` is not used because sentence embeddings mean-pool the last hidden state).
enum BertWeightName {
    static let wordEmbeddings = "embeddings.word_embeddings.weight"
    static let positionEmbeddings = "embeddings.position_embeddings.weight"
    static let tokenTypeEmbeddings = "embeddings.token_type_embeddings.weight"
    static let embeddingNormWeight = "embeddings.LayerNorm.weight"
    static let embeddingNormBias = "embeddings.LayerNorm.bias"

    static func layer(_ i: Int, _ suffix: String) -> String { "encoder.layer.\(i).\(suffix)" }
    static let query = "attention.self.query"
    static let key = "attention.self.key"
    static let value = "attention.self.value"
    static let attentionOutput = "attention.output.dense"
    static let attentionNorm = "attention.output.LayerNorm"
    static let intermediate = "intermediate.dense"
    static let output = "output.dense"
    static let outputNorm = "output.LayerNorm"
}

/// Where each of one layer's parameters sits in the weight arena.
///
/// Linear weights are stored transposed, [in, out] (the checkpoint's `Linear` weights are [out, in]): OpenBLAS packs
/// an untransposed right-hand operand much faster, which is most of a small batch's time (at 12 tokens a
/// [384 × 1152] product takes 281 µs instead of 428 µs here; from 256 tokens on the two are equal).
struct BertLayerOffsets: Sendable {
    var qkvWeight = 0          // [H, 3H]: query, key, value columns side by side
    var qkvBias = 0            // [3H]
    var attentionOutWeight = 0 // [H, H]
    var attentionOutBias = 0   // [H]
    var attentionNormWeight = 0, attentionNormBias = 0
    var intermediateWeight = 0 // [H, I]
    var intermediateBias = 0   // [I]
    var outputWeight = 0       // [I, H]
    var outputBias = 0         // [H]
    var outputNormWeight = 0, outputNormBias = 0
}

/// A BERT encoder (post-LayerNorm, exact GELU) with mean pooling and L2 normalisation, run on CPU
/// with OpenBLAS. Immutable after loading, so one instance can serve concurrent callers; every call
/// allocates its own scratch.
public final class BertEncoder: Sendable {
    /// The model's hyper-parameters.
    public let config: BertConfig

    /// All parameters in one contiguous buffer; the offsets below index into it.
    private let arena: WeightArena
    private let wordEmbeddings: Int        // [V, H]
    private let positionAndType: Int       // [P, H]: position embedding + token type 0 embedding
    private let embeddingNormWeight: Int, embeddingNormBias: Int
    private let layers: [BertLayerOffsets]

    /// Loads the weights named by `BertWeightName` from a safetensors checkpoint.
    /// - Throws: `EmbedError` `.missingTensor` or `.shapeMismatch` naming the tensor, or
    ///   `.unsupportedDType`.
    public init(config: BertConfig, weights file: SafeTensorsFile) throws {
        self.config = config
        let h = config.hiddenSize, inter = config.intermediateSize
        var arena: [Float] = []

        func load(_ name: String, _ shape: [Int]) throws -> [Float] {
            let info = try file.info(name)
            guard info.shape == shape else {
                throw EmbedError(code: .shapeMismatch,
                                 message: "Tensor \"\(name)\" in \(file.path) has shape \(info.shape); config.json implies \(shape).")
            }
            return try file.floats(name)
        }
        func append(_ values: [Float]) -> Int {
            let offset = arena.count
            arena.append(contentsOf: values)
            return offset
        }

        wordEmbeddings = append(try load(BertWeightName.wordEmbeddings, [config.vocabSize, h]))
        var positions = try load(BertWeightName.positionEmbeddings, [config.maxPositionEmbeddings, h])
        let types = try load(BertWeightName.tokenTypeEmbeddings, [config.typeVocabSize, h])
        // token_type_ids are all 0 for single sentences: fold row 0 into every position row.
        for p in 0..<config.maxPositionEmbeddings {
            for j in 0..<h { positions[p * h + j] += types[j] }
        }
        positionAndType = append(positions)
        embeddingNormWeight = append(try load(BertWeightName.embeddingNormWeight, [h]))
        embeddingNormBias = append(try load(BertWeightName.embeddingNormBias, [h]))

        var layers: [BertLayerOffsets] = []
        for i in 0..<config.numHiddenLayers {
            func name(_ module: String, _ parameter: String) -> String {
                BertWeightName.layer(i, module + "." + parameter)
            }
            var o = BertLayerOffsets()
            let qkv = try load(name(BertWeightName.query, "weight"), [h, h]) + load(name(BertWeightName.key, "weight"), [h, h])
                + load(name(BertWeightName.value, "weight"), [h, h])
            o.qkvWeight = append(transposed(qkv, rows: 3 * h, columns: h))
            o.qkvBias = append(try load(name(BertWeightName.query, "bias"), [h]))
            _ = append(try load(name(BertWeightName.key, "bias"), [h]))
            _ = append(try load(name(BertWeightName.value, "bias"), [h]))
            o.attentionOutWeight = append(transposed(try load(name(BertWeightName.attentionOutput, "weight"), [h, h]), rows: h, columns: h))
            o.attentionOutBias = append(try load(name(BertWeightName.attentionOutput, "bias"), [h]))
            o.attentionNormWeight = append(try load(name(BertWeightName.attentionNorm, "weight"), [h]))
            o.attentionNormBias = append(try load(name(BertWeightName.attentionNorm, "bias"), [h]))
            o.intermediateWeight = append(transposed(try load(name(BertWeightName.intermediate, "weight"), [inter, h]), rows: inter, columns: h))
            o.intermediateBias = append(try load(name(BertWeightName.intermediate, "bias"), [inter]))
            o.outputWeight = append(transposed(try load(name(BertWeightName.output, "weight"), [h, inter]), rows: h, columns: inter))
            o.outputBias = append(try load(name(BertWeightName.output, "bias"), [h]))
            o.outputNormWeight = append(try load(name(BertWeightName.outputNorm, "weight"), [h]))
            o.outputNormBias = append(try load(name(BertWeightName.outputNorm, "bias"), [h]))
            layers.append(o)
        }
        self.layers = layers
        self.arena = WeightArena(arena)
    }

    /// Scratch buffers for one forward pass over at most `tokens` packed tokens.
    final class Workspace {
        let capacity: Int, maxSequence: Int
        let hidden, qkv, context, sum, intermediate, scores: UnsafeMutablePointer<Float>

        init(tokens: Int, maxSequence: Int, config: BertConfig) {
            capacity = tokens
            self.maxSequence = maxSequence
            let h = config.hiddenSize
            hidden = .allocate(capacity: tokens * h)
            qkv = .allocate(capacity: tokens * 3 * h)
            context = .allocate(capacity: tokens * h)
            sum = .allocate(capacity: tokens * h)
            intermediate = .allocate(capacity: tokens * config.intermediateSize)
            scores = .allocate(capacity: maxSequence * maxSequence)
        }

        deinit {
            hidden.deallocate(); qkv.deallocate(); context.deallocate()
            sum.deallocate(); intermediate.deallocate(); scores.deallocate()
        }
    }

    /// Makes a workspace big enough for `tokens` packed tokens in sequences of at most `maxSequence`.
    func makeWorkspace(tokens: Int, maxSequence: Int) -> Workspace {
        Workspace(tokens: max(tokens, 1), maxSequence: max(maxSequence, 1), config: config)
    }

    /// Encodes sequences packed back to back (no padding: every operation but attention is per
    /// token, and attention runs per sequence over its own tokens, which is exactly BERT with padded
    /// keys masked out) and writes one mean-pooled, L2-normalised vector per sequence.
    ///
    /// - Parameters:
    ///   - ids: Token ids of all sequences, concatenated; each id must be below `vocabSize`.
    ///   - lengths: Length of each sequence (at least 1, at most `maxPositionEmbeddings`).
    ///   - output: Receives `lengths.count * hiddenSize` floats.
    ///   - workspace: Scratch with room for `ids.count` tokens and the longest sequence.
    func encode(ids: UnsafeBufferPointer<Int32>, lengths: [Int], into output: UnsafeMutablePointer<Float>,
                workspace ws: Workspace) {
        let t = ids.count
        precondition(t <= ws.capacity && lengths.reduce(0, +) == t)
        let h = config.hiddenSize, inter = config.intermediateSize
        let heads = config.numAttentionHeads, dh = config.headSize
        let eps = config.layerNormEps

        let w = UnsafePointer(arena.base)

        // Embeddings: word + (position + type 0), then LayerNorm.
        var row = 0
        for length in lengths {
            for p in 0..<length {
                let id = Int(ids[row])
                precondition(id >= 0 && id < config.vocabSize, "token id \(id) outside the vocabulary")
                let word = w + wordEmbeddings + id * h
                let position = w + positionAndType + p * h
                let out = ws.hidden + row * h
                for j in 0..<h { out[j] = word[j] + position[j] }
                row += 1
            }
        }
        layerNorm(ws.hidden, rows: t, width: h, weight: w + embeddingNormWeight,
                  bias: w + embeddingNormBias, eps: eps)

        let scale = 1 / Float(dh).squareRoot()
        for layer in layers {
            // Q, K, V for every token in one GEMM: qkv = hidden · Wqkv + b.
            fillRows(ws.qkv, rows: t, with: w + layer.qkvBias, width: 3 * h)
            gemm(m: t, n: 3 * h, k: h, a: ws.hidden, weight: w + layer.qkvWeight, c: ws.qkv)

            // Attention, per sequence and head, over that sequence's own tokens only.
            var start = 0
            for length in lengths {
                for head in 0..<heads {
                    let q = ws.qkv + start * 3 * h + head * dh
                    let k = q + h
                    let v = q + 2 * h
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                                Int32(length), Int32(length), Int32(dh),
                                scale, q, Int32(3 * h), k, Int32(3 * h), 0, ws.scores, Int32(length))
                    softmaxRows(ws.scores, rows: length, width: length)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                Int32(length), Int32(dh), Int32(length),
                                1, ws.scores, Int32(length), v, Int32(3 * h),
                                0, ws.context + start * h + head * dh, Int32(h))
                }
                start += length
            }

            // Attention output: sum = hidden + b + context · Woᵀ; hidden = LayerNorm(sum).
            addRows(ws.sum, ws.hidden, bias: w + layer.attentionOutBias, rows: t, width: h)
            gemm(m: t, n: h, k: h, a: ws.context, weight: w + layer.attentionOutWeight, c: ws.sum)
            layerNorm(ws.sum, rows: t, width: h, weight: w + layer.attentionNormWeight,
                      bias: w + layer.attentionNormBias, eps: eps)

            // Feed-forward: GELU(sum · W1ᵀ + b1) · W2ᵀ + b2 + sum, then LayerNorm.
            fillRows(ws.intermediate, rows: t, with: w + layer.intermediateBias, width: inter)
            gemm(m: t, n: inter, k: h, a: ws.sum, weight: w + layer.intermediateWeight, c: ws.intermediate)
            gelu(ws.intermediate, count: t * inter)
            addRows(ws.hidden, ws.sum, bias: w + layer.outputBias, rows: t, width: h)
            gemm(m: t, n: h, k: inter, a: ws.intermediate, weight: w + layer.outputWeight, c: ws.hidden)
            layerNorm(ws.hidden, rows: t, width: h, weight: w + layer.outputNormWeight,
                      bias: w + layer.outputNormBias, eps: eps)
        }

        // Mean over every token of each sequence ([CLS] and [SEP] included), then L2 normalise.
        var start = 0
        for (s, length) in lengths.enumerated() {
            let out = output + s * h
            out.initialize(repeating: 0, count: h)
            for r in start..<(start + length) {
                let src = ws.hidden + r * h
                for j in 0..<h { out[j] += src[j] }
            }
            let inverse = 1 / Float(length)
            var squares: Float = 0
            for j in 0..<h {
                out[j] *= inverse
                squares += out[j] * out[j]
            }
            let norm = max(squares.squareRoot(), 1e-12)
            for j in 0..<h { out[j] /= norm }
            start += length
        }
    }
}

/// The parameters in memory of their own, on 2 MiB pages where the kernel allows (`MADV_HUGEPAGE`).
///
/// A sentence of a dozen tokens reads all 42 MB of layer weights once per call, and OpenBLAS's packing walks them
/// across rows, a walk that crosses a 4 KiB page every few cache lines. Measured with `hume bench embed` on the 29
/// short fixture prompts, five interleaved pairs: batch 1 faster in all five, median 116 against 109 sentences/s.
final class WeightArena: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    private let mapping: UnsafeMutableRawPointer?
    private let mappedBytes: Int

    init(_ values: [Float]) {
        let huge = 2 << 20
        let bytes = max(values.count * MemoryLayout<Float>.stride, 1)
        let length = (bytes + huge - 1) / huge * huge + huge
        let raw = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        if let raw, raw != MAP_FAILED {
            let aligned = (Int(bitPattern: raw) + huge - 1) / huge * huge
            let start = UnsafeMutableRawPointer(bitPattern: aligned)!
            #if os(Linux)
            _ = madvise(start, length - huge, MADV_HUGEPAGE)
            #endif
            mapping = raw
            mappedBytes = length
            base = start.bindMemory(to: Float.self, capacity: max(values.count, 1))
        } else {
            mapping = nil
            mappedBytes = 0
            base = .allocate(capacity: max(values.count, 1))
        }
        values.withUnsafeBufferPointer { if let source = $0.baseAddress { base.initialize(from: source, count: values.count) } }
    }

    deinit {
        if let mapping { munmap(mapping, mappedBytes) } else { base.deallocate() }
    }
}

// MARK: - Kernels

/// c[m, n] += a[m, k] · weight[k, n] (the weight already transposed to [in, out]).
@inline(__always)
private func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                  c: UnsafeMutablePointer<Float>) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                1, a, Int32(k), weight, Int32(n), 1, c, Int32(n))
}

/// A row-major [rows, columns] matrix as [columns, rows].
func transposed(_ x: [Float], rows: Int, columns: Int) -> [Float] {
    precondition(x.count == rows * columns)
    var out = [Float](repeating: 0, count: x.count)
    for r in 0..<rows {
        for c in 0..<columns { out[c * rows + r] = x[r * columns + c] }
    }
    return out
}

/// Copies `row` into each of `rows` rows of `out`.
private func fillRows(_ out: UnsafeMutablePointer<Float>, rows: Int, with row: UnsafePointer<Float>, width: Int) {
    for r in 0..<rows { (out + r * width).update(from: row, count: width) }
}

/// out[r, :] = input[r, :] + bias for each row.
private func addRows(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                     rows: Int, width: Int) {
    for r in 0..<rows {
        let o = out + r * width, x = input + r * width
        for j in 0..<width { o[j] = x[j] + bias[j] }
    }
}

/// In-place LayerNorm over each row (biased variance, as PyTorch), eight lanes at a time.
private func layerNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, weight: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>, eps: Float) {
    let n = Float(width)
    let vectorWidth = width & ~7
    for r in 0..<rows {
        let row = x + r * width
        var lanes = SIMD8<Float>()
        var j = 0
        while j < vectorWidth {
            lanes += UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
            j += 8
        }
        var sum = lanes.sum()
        while j < width { sum += row[j]; j += 1 }
        let mean = sum / n

        var squareLanes = SIMD8<Float>()
        let meanLanes = SIMD8<Float>(repeating: mean)
        j = 0
        while j < vectorWidth {
            let d = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self) - meanLanes
            squareLanes += d * d
            j += 8
        }
        var squares = squareLanes.sum()
        while j < width { let d = row[j] - mean; squares += d * d; j += 1 }

        let inverseStd = 1 / (squares / n + eps).squareRoot()
        let scaleLanes = SIMD8<Float>(repeating: inverseStd)
        j = 0
        while j < vectorWidth {
            let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
            let g = UnsafeRawPointer(weight + j).loadUnaligned(as: SIMD8<Float>.self)
            let b = UnsafeRawPointer(bias + j).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(row + j).storeBytes(of: (v - meanLanes) * scaleLanes * g + b, as: SIMD8<Float>.self)
            j += 8
        }
        while j < width { row[j] = (row[j] - mean) * inverseStd * weight[j] + bias[j]; j += 1 }
    }
}

/// In-place numerically stable softmax over each row, eight lanes at a time (libm's scalar `expf` was a twentieth
/// of a short sentence's time, and a scalar maximum a tenth of a 256-token sentence's). A row's last `width % 8`
/// values go through the lanes too, the unused lanes held at -∞ for the maximum and at 0 for the sum.
func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
    let full = width & ~7, tail = width - full
    let tailMask = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .< SIMD8<Int32>(repeating: Int32(tail))
    for r in 0..<rows {
        let row = x + r * width
        var maxLanes = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j < full {
            let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
            maxLanes.replace(with: v, where: v .> maxLanes)
            j += 8
        }
        var tailLanes = SIMD8<Float>(repeating: -.infinity)
        for t in 0..<tail { tailLanes[t] = row[full + t] }
        maxLanes.replace(with: tailLanes, where: tailLanes .> maxLanes)
        let m = SIMD8<Float>(repeating: maxLanes.max())

        var sumLanes = SIMD8<Float>()
        j = 0
        while j < full {
            let e = LaneMath.exp(UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self) - m)
            UnsafeMutableRawPointer(row + j).storeBytes(of: e, as: SIMD8<Float>.self)
            sumLanes += e
            j += 8
        }
        var tailExp = LaneMath.exp(tailLanes - m)
        tailExp.replace(with: 0, where: .!tailMask)
        sumLanes += tailExp
        let inverse = SIMD8<Float>(repeating: 1 / sumLanes.sum())
        j = 0
        while j < full {
            let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(row + j).storeBytes(of: v * inverse, as: SIMD8<Float>.self)
            j += 8
        }
        tailExp *= inverse
        for t in 0..<tail { row[full + t] = tailExp[t] }
    }
}

/// In-place GELU in its exact form, x · ½ · (1 + erf(x / √2)), eight lanes at a time.
///
/// erf is a rational approximation x·P(x²)/Q(x²) on [-4, 4] (beyond which erf is ±1 in Float),
/// fitted for Hume by weighted least squares (Ops/fit-erf.py): its error against the true erf is
/// under 4e-7 when evaluated in Float, about three ulps of 1, against one for libm's `erff`,
/// which is scalar and cost a sixth of the whole forward pass.
func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let v = UnsafeMutableRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(x + i).storeBytes(of: geluLanes(v), as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        x[i] = geluLanes(SIMD8<Float>(repeating: x[i]))[0]
        i += 1
    }
}

@inline(__always)
private func geluLanes(_ v: SIMD8<Float>) -> SIMD8<Float> {
    0.5 * v * (1 + erfLanes(v * 0.70710678118654752))
}

/// erf on eight lanes: x·P(x²)/Q(x²) with x clamped to [-4, 4].
@inline(__always)
func erfLanes(_ input: SIMD8<Float>) -> SIMD8<Float> {
    // Comparisons and masked replacement inline; `clamped` calls stdlib generics that do not.
    var x = input
    x.replace(with: 4, where: x .> 4)
    x.replace(with: -4, where: x .< -4)
    let t = x * x
    var p = SIMD8<Float>(repeating: 1.9746291385625003e-06)
    p = p * t + 0.00028801524469035736
    p = p * t + 0.0040033459716337025
    p = p * t + 0.05346658707122083
    p = p * t + 0.19624466833362658
    p = p * t + 1.1283789773856827
    var q = SIMD8<Float>(repeating: 3.747735959404308e-05)
    q = q * t + 0.0012162485624828828
    q = q * t + 0.015443874383207292
    q = q * t + 0.1164743415294483
    q = q * t + 0.5072484767360138
    q = q * t + 1
    var y = x * p / q
    y.replace(with: 1, where: y .> 1)
    y.replace(with: -1, where: y .< -1)
    return y
}
