import Foundation
import HumeClient
import HumeCore
import HumeData
import HumeFleet

/// The README's main job (`hume demo`): a local fleet (broker and one worker per stage as real processes on
/// loopback, a SQLite journal), a prompt file through `embed → retrieve → denoise → upload` and a few edit jobs
/// through `edit → upload`, all uploaded to `file://OUT/images`; then, from the uploaded PNGs and their metadata,
/// `manifest.jsonl`, `contact-sheet.png` and an `index.html` gallery in OUT. The fleet is stopped at the end.
public struct Demo {
    public struct Options: Sendable {
        /// The prompt file: text lines or JSONL jobs (`Ops/examples/prompts.txt`).
        public var prompts: String
        /// Where the results go.
        public var out = "out"
        /// Edit jobs (sources taken from the emoji database), at most `EditPairs.all.count`.
        public var edits = 4
        /// Denoise worker processes.
        public var denoisers = 1
        /// Overrides for every job's `steps` and `size` (tests use tiny values).
        public var steps: Int?
        public var size: Int?
        /// Longest the batch may take, seconds.
        public var timeout: Double = 900
        /// The folder holding the image databases (`HumePaths.databases`).
        public var databases: URL
        public init(prompts: String, databases: URL) {
            self.prompts = prompts
            self.databases = databases
        }
    }

    /// (source caption in the emoji database, edit text).
    /// Edits as people write them ("with …", "make it …"). An edit text that names the whole target ("smiling face with
    /// sunglasses") can pick the plain "smiling face" as its donor: the editor looks for what the text adds, and such a
    /// text adds less than it says.
    public static let editPairs: [(String, String)] = [
        ("grinning face", "wearing sunglasses"),
        ("slightly smiling face", "with heart eyes"),
        ("red heart", "make it purple"),
        ("grinning face", "wearing a cowboy hat"),
        ("red apple", "make it green"),
        ("slightly smiling face", "wearing nerdy glasses"),
    ]

    /// What a run left behind.
    public struct Report: Sendable {
        public var jobs = 0
        public var done = 0
        public var failed = 0
        public var invalid = 0
        public var seconds = 0.0
        public var startupSeconds = 0.0
        public var manifest = ""
        public var gallery = ""
        public var contactSheet = ""
    }

    public var options: Options
    /// Progress: (finished, total).
    public var onProgress: ((Int, Int) -> Void)?
    /// One line of news.
    public var onNews: ((String) -> Void)?

    public init(options: Options) { self.options = options }

    /// One job as the demo tracks it.
    struct Job {
        var spec: JobSpec
        var kind: Gallery.Entry.Kind
        var text: String
        var database: String
        var line: Int?
        var source: String?
    }

    /// Runs the whole job.
    /// - Throws: `HumeError` with one sentence: missing data (run `Ops/prepare-data.sh`), an unreadable prompt
    ///   file, a fleet that does not start, or a batch that does not finish within the timeout.
    public func run() throws -> Report {
        let fm = FileManager.default
        // What can fail on the user's input or a missing set-up fails before the last run's gallery is touched.
        let data = try UserFile.read(options.prompts, what: "the prompt file")
        let available = Set(Database.available(root: options.databases))
        for name in [Database.defaultName, "emoji"] where !available.contains(name) {
            throw HumeError(.invalidInput, "The \(name) image database is not built in \(options.databases.path); run Ops/prepare-data.sh (or Ops/demo.sh, which does).")
        }
        try fm.createDirectory(atPath: options.out, withIntermediateDirectories: true)
        let out = URL(fileURLWithPath: options.out).standardizedFileURL.path
        for d in ["images", "neighbours", "sources"] {
            try? fm.removeItem(atPath: out + "/" + d)
            try fm.createDirectory(atPath: out + "/" + d, withIntermediateDirectories: true)
        }
        let dest = "file://" + out + "/images"
        var report = Report()

        // The jobs: every line of the prompt file, then the edits.
        let (jobs, invalid) = try makeJobs(text: String(decoding: data, as: UTF8.self), dest: dest, out: out)
        report.invalid = invalid.count
        for (line, message) in invalid { onNews?("line \(line) of \(options.prompts) is skipped: \(message)") }
        let needed = Set(jobs.map(\.database)).union([Database.defaultName, "emoji"])
        // A line naming a database that does not exist fails on its own, with the retrieve stage's sentence.
        for name in needed.subtracting(available).sorted() {
            onNews?("no image database \"\(name)\" in \(options.databases.path): the jobs naming it will fail")
        }
        for name in needed.intersection(available) {
            let db = try Database(named: name, root: options.databases)
            guard fm.fileExists(atPath: db.indexPath.path) else {
                throw HumeError(.invalidInput, "The caption index of \"\(name)\" is not built; run Ops/prepare-data.sh (or hume index \(name)).")
            }
        }

        // The fleet: real processes on loopback ports, the journal in OUT/.fleet.
        let started = Date()
        let fleetDir = out + "/.fleet"
        try? fm.removeItem(atPath: fleetDir)
        let fleet = try LocalFleet(directory: fleetDir)
        defer { fleet.stop() }
        let hasEdits = jobs.contains { $0.kind == .edit }
        var stages = ["embed", "retrieve", "upload"] + Array(repeating: "denoise", count: max(1, options.denoisers))
        if hasEdits { stages.append("edit") }
        for s in stages {
            try fleet.startWorker(s, arguments: s == "upload" ? ["--allow", "file://" + out + "/images"] : [])
        }
        onNews?("fleet: broker and \(stages.count) workers (\(stages.joined(separator: ", "))); logs in \(fleetDir)")
        do { try fleet.waitForWorkers(stages.count, timeoutMs: 60_000) } catch {
            throw HumeError(.timeout, "The workers did not all join within 60 s; see the logs in \(fleetDir).")
        }
        report.startupSeconds = Date().timeIntervalSince(started)

        // Two batches on two connections: generation and edits have different routes.
        let generate = jobs.filter { $0.kind == .generate }
        let edits = jobs.filter { $0.kind == .edit }
        var submitters: [(BatchSubmitter, [Job])] = []
        if !generate.isEmpty {
            let s = BatchSubmitter(connection: try BrokerConnection(endpoint: fleet.endpoints.clients), batch: "demo",
                                   route: ["embed", "retrieve", "denoise", "upload"], jobs: generate.map(\.spec))
            submitters.append((s, generate))
        }
        if !edits.isEmpty {
            let s = BatchSubmitter(connection: try BrokerConnection(endpoint: fleet.endpoints.clients), batch: "demo-edits",
                                   route: ["edit", "upload"], jobs: edits.map(\.spec))
            submitters.append((s, edits))
        }
        var refusal: String?
        for (s, _) in submitters { s.onRefused = { _, m in refusal = refusal ?? m } }
        let total = jobs.count
        report.jobs = total
        let batchStart = Date()
        var finished = Array(repeating: false, count: submitters.count)
        while finished.contains(false) {
            for (i, (s, _)) in submitters.enumerated() where !finished[i] {
                finished[i] = try s.run(timeoutMs: 100)
            }
            onProgress?(submitters.reduce(0) { $0 + $1.0.finishedCount }, total)
            if Date().timeIntervalSince(batchStart) > options.timeout {
                throw HumeError(.timeout, "The demo batch did not finish within \(Int(options.timeout)) s; see the logs in \(fleetDir).")
            }
        }
        report.seconds = Date().timeIntervalSince(batchStart)
        if let refusal { onNews?("the broker refused some jobs: \(refusal)") }

        // What came back, from the uploaded PNGs themselves.
        var entries: [Gallery.Entry] = []
        var manifest: [String] = []
        var results: [PixelImage] = []
        var databases: [String: (Database, ImageStore)] = [:]
        func open(_ name: String) throws -> (Database, ImageStore) {
            if let d = databases[name] { return d }
            let db = try Database(named: name, root: options.databases)
            let d = (db, try db.images(side: 64))
            databases[name] = d
            return d
        }
        for (s, group) in submitters {
            for (i, job) in group.enumerated() {
                var line: [String: JSON] = ["key": .string(job.spec.key), "kind": .string(job.kind.rawValue),
                                            "text": .string(job.text), "database": .string(job.database)]
                if let l = job.line { line["line"] = JSON(l) }
                var entry = Gallery.Entry(kind: job.kind, text: job.text, database: job.database, result: nil, source: job.source)
                guard let r = s.results[i] else {
                    line["status"] = .string("pending")
                    entry.error = "No result (the batch was interrupted)."
                    entries.append(entry)
                    manifest.append(JSON.object(line).serialized)
                    report.failed += 1
                    continue
                }
                line["job"] = .number(Double(r.jobID))
                line["status"] = .string(r.status.name)
                guard r.status == .done, let o = try? JSON.parse(r.body), let url = o["url"]?.string, let path = Demo.filePath(url) else {
                    let why = String(decoding: r.body, as: UTF8.self)
                    line["error"] = .string(why)
                    entry.error = why
                    entries.append(entry)
                    manifest.append(JSON.object(line).serialized)
                    report.failed += 1
                    continue
                }
                report.done += 1
                let relative = Demo.relative(path, to: out)
                line["image"] = .string(relative)
                line["url"] = .string(url)
                for k in ["bytes", "sha256", "width", "height"] { if let v = o[k] { line[k] = v } }
                entry.result = relative
                if let m = o["mask_url"]?.string, let mp = Demo.filePath(m) {
                    entry.mask = Demo.relative(mp, to: out)
                    line["mask"] = .string(entry.mask!)
                }
                let png = [UInt8](fm.contents(atPath: path) ?? Data())
                let meta = Dictionary((try? PNGCodec.textChunks(png)) ?? [], uniquingKeysWith: { a, _ in a })
                var metadata: [String: JSON] = [:]
                for (k, v) in meta where k != "Software" { metadata[k] = (try? JSON.parse(v)) ?? .string(v) }
                line["metadata"] = .object(metadata)
                let ids = (metadata["neighbours"]?.array ?? []).compactMap(\.int)
                let similarities = (metadata["similarities"]?.array ?? []).compactMap(\.double)
                let used = Set((metadata["used"]?.array ?? []).compactMap(\.int)), shapeFrom = metadata["shape_from"]?.int
                if job.kind == .generate, let (db, store) = try? open(job.database) {
                    for (n, id) in ids.enumerated() where id >= 0 && id < db.count {
                        let name = "neighbours/\(job.database)-\(id).png"
                        if !fm.fileExists(atPath: out + "/" + name) {
                            let png = try PNGCodec.encode(PixelImage(width: 64, height: 64, channels: 3, pixels: try store.copy(id: id)))
                            _ = fm.createFile(atPath: out + "/" + name, contents: Data(png))
                        }
                        // The caption, the drawing's style and how well it matched the prompt (what weighed it).
                        let item = db.items[id]
                        var caption = item.caption + (item.style.isEmpty ? "" : " (\(item.style))")
                        if n < similarities.count { caption = String(format: "%.2f ", similarities[n]) + caption }
                        // Which neighbours the sample was made from, and the one that set its shape.
                        if id == shapeFrom { caption += " · shape" } else if used.contains(id) { caption += " · used" }
                        entry.neighbours.append((name, caption))
                    }
                }
                for k in ["seed", "k", "steps", "size"] { if let v = metadata[k] { entry.details.append((k, v.string ?? v.serialized)) } }
                // How an edit was made: the colour of a recolour, or the picture its part was transplanted from.
                if let colour = metadata["recolour"]?.string { entry.details.append(("recolour", colour)) }
                // A sample recoloured to the colour its prompt names ("a blue car" from the red racing car).
                if let colour = metadata["prompt_colour"]?.string, metadata["recoloured"]?.bool == true {
                    entry.details.append(("recoloured", colour))
                }
                if let t = metadata["transplant"]?.int, let (db, _) = try? open(job.database), (0..<db.count).contains(t) {
                    entry.details.append(("part from", db.items[t].caption))
                    // A donor of another kind gave only what it adds to its base (PROTOCOL.md §11.4).
                    if let b = metadata["transplant_cut_by"]?.int, (0..<db.count).contains(b) {
                        entry.details.append(("what it adds to", db.items[b].caption))
                    }
                }
                if let sha = o["sha256"]?.string { entry.details.append(("sha256", String(sha.prefix(12)) + "…")) }
                entries.append(entry)
                manifest.append(JSON.object(line).serialized)
                if let image = try? PNGCodec.decode(png) { results.append(image) }
            }
        }
        report.manifest = out + "/manifest.jsonl"
        try writeFileAtomically(Array((manifest.joined(separator: "\n") + "\n").utf8), to: report.manifest)
        report.contactSheet = out + "/contact-sheet.png"
        if !results.isEmpty {
            // Tiles at the largest result's size (the generation size: 128 by default), at least 64.
            let sheetSide = max(64, results.map(\.width).max() ?? 64)
            let sheet = try ContactSheet.compose(results.map { Demo.tile($0, side: sheetSide) }, side: sheetSide, columns: 10)
            try Data(try PNGCodec.encode(sheet)).write(to: URL(fileURLWithPath: report.contactSheet))
        }
        report.gallery = out + "/index.html"
        let summary = "\(report.done) of \(total) jobs done (\(generate.count) prompts, \(edits.count) edits) in "
            + String(format: "%.1f s", report.seconds) + (report.failed > 0 ? "; \(report.failed) failed" : "")
        // Credits: every image source of the databases the results came from, with its licence.
        var credits: [String] = []
        for name in Set(jobs.map(\.database)).sorted() {
            guard let db = try? Database(named: name, root: options.databases) else { continue }
            credits += db.attribution.map { "\(name): \($0.line)" }
        }
        try writeFileAtomically(Array(Gallery.html(title: "Hume demo", summary: summary, entries: entries, credits: credits).utf8), to: report.gallery)
        return report
    }

    /// The jobs of a prompt file plus the edit jobs; lines that are not valid jobs come back with their reasons.
    func makeJobs(text: String, dest: String, out: String) throws -> ([Job], [(Int, String)]) {
        var jobs: [Job] = []
        let base = (options.prompts as NSString).deletingLastPathComponent
        let parsed = JobLines.parseFile(text, batch: "demo", baseDirectory: base.isEmpty ? nil : base)
        for (lineNo, parsedSpec) in parsed.jobs {
            var spec = parsedSpec
            var params = try JSON.parse(spec.params).object ?? [:]
            params["dest"] = .string(dest)
            params["name"] = .string(String(format: "%03d-", lineNo) + Demo.slug(params["prompt"]?.string ?? ""))
            if params["seed"] == nil { params["seed"] = JSON(lineNo) }
            if let s = options.steps { params["steps"] = JSON(s) }
            if let s = options.size { params["size"] = JSON(s) }
            spec.params = JSON.object(params).bytes
            jobs.append(Job(spec: spec, kind: .generate, text: params["prompt"]?.string ?? "",
                            database: params["database"]?.string ?? Database.defaultName, line: lineNo))
        }
        let pairs = Demo.editPairs.prefix(max(0, options.edits))
        if !pairs.isEmpty {
            let db = try Database(named: "emoji", root: options.databases)
            // The sources at the largest size the database stores (an edit is made at 128² by default).
            let side = db.hasImages(side: 128) ? 128 : 64
            let store = try db.images(side: side)
            for (n, (caption, edit)) in pairs.enumerated() {
                guard let id = db.items.firstIndex(where: { $0.caption == caption }) else { continue }
                let png = try PNGCodec.encode(PixelImage(width: side, height: side, channels: 3, pixels: try store.copy(id: id)))
                let source = "sources/" + String(format: "%02d-", n + 1) + Demo.slug(caption) + ".png"
                _ = FileManager.default.createFile(atPath: out + "/" + source, contents: Data(png))
                var params: [String: JSON] = ["edit": .string(edit), "caption": .string(caption), "database": .string("emoji"),
                                              "seed": JSON(n + 1), "dest": .string(dest),
                                              "name": .string(String(format: "edit-%02d-", n + 1) + Demo.slug(edit))]
                if let s = options.steps { params["steps"] = JSON(s) }
                if let s = options.size { params["size"] = JSON(s) }
                let spec = JobSpec(key: "demo-edits:\(n + 1)", params: JSON.object(params).bytes, data: png)
                jobs.append(Job(spec: spec, kind: .edit, text: "\(caption) → \(edit)", database: "emoji", source: source))
            }
        }
        return (jobs, parsed.invalid.map { ($0.line, $0.message) })
    }

    /// Lower-case ASCII letters and digits joined by single dashes, at most 40 characters ("smiling-face").
    static func slug(_ s: String) -> String {
        var out = ""
        for c in s.lowercased().unicodeScalars {
            if (c >= "a" && c <= "z") || (c >= "0" && c <= "9") { out.unicodeScalars.append(c) } else if !out.isEmpty && !out.hasSuffix("-") { out += "-" }
        }
        while out.hasSuffix("-") { out.removeLast() }
        let cut = String(out.prefix(40))
        return cut.isEmpty ? "prompt" : cut
    }

    /// The local path of a `file://` URL, percent-decoded.
    static func filePath(_ url: String) -> String? {
        guard url.hasPrefix("file://") else { return nil }
        return String(url.dropFirst(7)).removingPercentEncoding
    }

    static func relative(_ path: String, to base: String) -> String {
        path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : path
    }

    /// An image as a `side × side` RGB tile: nearest-neighbour scaled.
    static func tile(_ image: PixelImage, side: Int) -> [UInt8] {
        var t = [UInt8](repeating: 255, count: side * side * 3)
        let c = image.channels
        for y in 0..<side {
            let sy = y * image.height / side
            for x in 0..<side {
                let sx = x * image.width / side
                for k in 0..<3 { t[(y * side + x) * 3 + k] = image.pixels[(sy * image.width + sx) * c + min(k, c - 1)] }
            }
        }
        return t
    }

}
