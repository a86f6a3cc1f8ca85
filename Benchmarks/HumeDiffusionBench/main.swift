import HumeDiffusion
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Seconds per image for the local (ELS) denoiser under 20 DDIM steps, k = 16, one thread.
// Usage: hume-diffusion-bench [side ...] [--images N]
func now(_ clock: clockid_t = CLOCK_MONOTONIC) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

var args = Array(CommandLine.arguments.dropFirst())
var images = 5
if let i = args.firstIndex(of: "--images") { images = Int(args[i + 1])!; args.removeSubrange(i...(i + 1)) }
args.removeAll { $0 == "--dump" || $0 == "--unscaled-patches" }
if let i = args.firstIndex(of: "--emoji") { args.removeSubrange(i...(i + 1)) }
let sides = args.isEmpty ? [32, 64] : args.map { Int($0)! }
let k = 16, steps = 20
for side in sides {
    let neighbours = (0..<k).map { RGBImage.discs(side: side, seed: UInt64(side * 1000 + $0)) }
    let config = LocalDenoiserConfiguration.prototype(imageSide: side)
    let denoiser = try LocalEquivariantDenoiser(try ConditioningSet(neighbours), configuration: config)
    let sampler = try DDIMSampler(steps: steps)
    _ = try sampler.sample(denoiser: denoiser, seed: 0)   // warm-up
    var checksum: Float = 0
    var wall: [Double] = [], cpu: [Double] = []
    for seed in 1...images {
        let w0 = now(), c0 = now(CLOCK_THREAD_CPUTIME_ID)
        let out = try sampler.sample(denoiser: denoiser, seed: UInt64(seed))
        cpu.append(now(CLOCK_THREAD_CPUTIME_ID) - c0); wall.append(now() - w0)
        checksum += out.pixels.reduce(0, +)
    }
    let perImage = cpu.min()!
    print("side \(side): wall mean \(String(format: "%.4f", wall.reduce(0, +) / Double(images))) s, wall min \(String(format: "%.4f", wall.min()!)) s, thread-CPU min \(String(format: "%.4f", perImage)) s, mean \(String(format: "%.4f", cpu.reduce(0, +) / Double(images))) s")
    // FLOPs the method needs (no skipping), counted per neighbour lane from the code:
    //   squared difference + row prefix: 3 sub, 3 mul, 2 add, 1 add = 9 per D-map pixel computed;
    //   horizontal box difference + column prefix add: 2 per (D row, target column);
    //   vertical box 1, logit 2, max 1, exp 22 (arg 1, clamp 1, reduce 7, degree-6 poly 12, scale 1),
    //   softmax sum 1, weighted RGB mean 6: 33 per target pixel.
    var flops = 0.0
    let shiftsCount = (2 * config.window + 1) * (2 * config.window + 1)
    for abar in sampler.alphaBars.dropLast() {
        let half = config.patchSchedule.patchSize(for: NoiseLevel(alphaBar: abar)) / 2
        for dy in -config.window...config.window { for dx in -config.window...config.window {
            let ty = side - abs(dy), tx = side - abs(dx)
            let dRows = min(ty + 2 * half, side), dCols = min(tx + 2 * half, side)
            flops += Double(k) * (Double(dRows * dCols) * 9 + Double(dRows * tx) * 2 + Double(ty * tx) * 33)
        } }
    }
    let candidates = Double(shiftsCount * k * side * side * steps)
    print("side \(side): \(String(format: "%.4f", perImage)) s/image (thread CPU, best of \(images))  window ±\(config.window) shifts \(shiftsCount) k \(k) steps \(steps)  \(String(format: "%.3f", flops / 1e9)) GFLOP/image (\(String(format: "%.1f", flops / candidates)) per shift·neighbour·pixel·step)  \(String(format: "%.2f", flops / perImage / 1e9)) GFLOP/s  checksum \(checksum)")
}

// --dump: write a contact sheet (PPM) of 16 neighbours, the whole-image sample and 4 ELS samples at 32².
if CommandLine.arguments.contains("--dump") {
    let side = 32
    let neighbours = (0..<16).map { RGBImage.discs(side: side, seed: UInt64(side * 1000 + $0)) }
    let set = try ConditioningSet(neighbours)
    let sampler = try DDIMSampler(steps: 20)
    let local = try LocalEquivariantDenoiser(set, configuration: .prototype(imageSide: side))
    var tiles = neighbours
    tiles.append(try sampler.sample(denoiser: PosteriorMeanDenoiser(set), seed: 1))
    for seed in 1...7 { tiles.append(try sampler.sample(denoiser: local, seed: UInt64(seed))) }
    let cols = 8, rows = (tiles.count + cols - 1) / cols
    var ppm = Array("P6 \(cols * side) \(rows * side) 255\n".utf8)
    var sheet = [UInt8](repeating: 0, count: cols * side * rows * side * 3)
    for (t, tile) in tiles.enumerated() {
        let bytes = tile.rgb8()
        for y in 0..<side { for x in 0..<side { for c in 0..<3 {
            sheet[(((t / cols) * side + y) * cols * side + (t % cols) * side + x) * 3 + c] = bytes[(y * side + x) * 3 + c]
        } } }
    }
    ppm += sheet
    _ = FileManager.default.createFile(atPath: "/tmp/diffusion/sheet.ppm", contents: Data(ppm))
    print("wrote /tmp/diffusion/sheet.ppm")
}

// --emoji DIR: real stickers. For a few held-out (test-split) items, take 16 training images of the same
// subgroup as stand-in neighbours, time the sampler on them, and write a contact sheet per size:
// row = 16 neighbours | held-out item, whole-image sample, 6 ELS samples.
if let flag = CommandLine.arguments.firstIndex(of: "--emoji") {
    let dir = CommandLine.arguments[flag + 1]
    struct Item { let id: Int; let subgroup: String; let split: String; let caption: String }
    let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
    let items: [Item] = manifest.split(separator: "\n").compactMap { line in
        guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        return Item(id: o["id"] as! Int, subgroup: o["subgroup"] as! String, split: o["split"] as! String,
                    caption: o["caption"] as! String)
    }
    for side in [32, 64] {
        let blob = try Data(contentsOf: URL(fileURLWithPath: dir + "/images\(side).rgb"))
        let stride = side * side * 3
        func image(_ id: Int) throws -> RGBImage {
            try RGBImage(width: side, height: side, rgb8: [UInt8](blob[(id * stride)..<((id + 1) * stride)]))
        }
        var config = LocalDenoiserConfiguration.prototype(imageSide: side)
        if CommandLine.arguments.contains("--unscaled-patches") { config.patchSchedule = .prototype }
        let sampler = try DDIMSampler(steps: 20)
        var rows: [[RGBImage]] = []
        var cpu: [Double] = []
        var picked = 0
        for query in items where query.split == "test" && picked < 4 {
            let pool = items.filter { $0.split == "train" && $0.subgroup == query.subgroup }
            guard pool.count >= 16 else { continue }
            picked += 1
            let neighbours = try pool.prefix(16).map { try image($0.id) }
            let set = try ConditioningSet(neighbours)
            let local = try LocalEquivariantDenoiser(set, configuration: config)
            var row = neighbours
            row.append(try image(query.id))
            row.append(try sampler.sample(denoiser: PosteriorMeanDenoiser(set), seed: 1))
            for seed in 1...6 {
                let c0 = now(CLOCK_THREAD_CPUTIME_ID)
                row.append(try sampler.sample(denoiser: local, seed: UInt64(seed)))
                cpu.append(now(CLOCK_THREAD_CPUTIME_ID) - c0)
            }
            rows.append(row)
            print("emoji \(side)²: '\(query.caption)' (\(query.subgroup)), neighbours: \(pool.prefix(16).map(\.caption).prefix(4).joined(separator: ", "))…")
        }
        print("emoji \(side)²: thread-CPU per image min \(String(format: "%.4f", cpu.min()!)) s, mean \(String(format: "%.4f", cpu.reduce(0, +) / Double(cpu.count))) s")
        let cols = rows[0].count
        var ppm = Array("P6 \(cols * side) \(rows.count * side) 255\n".utf8)
        var sheet = [UInt8](repeating: 0, count: cols * side * rows.count * side * 3)
        for (r, row) in rows.enumerated() {
            for (t, tile) in row.enumerated() {
                let bytes = tile.rgb8()
                for y in 0..<side { for x in 0..<side { for c in 0..<3 {
                    sheet[((r * side + y) * cols * side + t * side + x) * 3 + c] = bytes[(y * side + x) * 3 + c]
                } } }
            }
        }
        ppm += sheet
        _ = FileManager.default.createFile(atPath: "/tmp/diffusion/emoji\(side).ppm", contents: Data(ppm))
    }
}
