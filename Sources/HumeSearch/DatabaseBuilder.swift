import Foundation
import HumeCore
import HumeData
import HumeIndex

/// Builds and grows the databases users bring (`hume db create` / `add` / `remove`, Ops/DATABASES.md "User
/// databases"): PNGs, JPEGs and SVGs (drawn by `SVGRaster`) composited on white, padded square, stored at 32², 64² and 128², captions embedded, the index
/// built or extended.
///
/// **Atomicity.** `create` writes a hidden folder and renames it into place. `add` appends to the stores past the
/// committed count, writes the next generation's index file, and commits by renaming `generation.json`; a failure
/// before the commit truncates the stores back, and an interrupted `add` leaves a tail that readers ignore and the
/// next writer truncates. Writers serialise on `<root>/.lock` (flock), as Ops/build_db.py does.
public struct DatabaseBuilder: Sendable {
    /// The folder holding the databases.
    public let root: URL
    /// The caption embedder (the model the retriever embeds prompts with).
    public let embed: NeighbourSearch.Embed
    /// What embedded the captions (model and vocabulary digests), recorded in the generation.
    public let model: String
    /// Largest picture accepted, in pixels (default 40 million: a 6,300² square).
    public var maxPixels = 40_000_000
    /// Largest file accepted (default 64 MiB).
    public var maxFileBytes = 64 << 20
    /// Refuse the whole import when any picture is refused (default: skip it, with its sentence).
    public var strict = false
    /// Threads that decode and resize (default 2).
    public var threads = 2
    /// Told, after each chunk is read, how many of the pictures have been read and how many there are (a progress bar).
    public var progress: (@Sendable (_ read: Int, _ total: Int) -> Void)?
    /// What draws SVG pictures (default: `rsvg-convert` if installed; without it each SVG is refused in one sentence).
    public var svg = SVGRaster.installed()
    /// Pictures decoded at a time (default 512): their tiles are appended to the stores before the next ones are read,
    /// so memory holds one chunk's pixels however many pictures there are (a picture's three tiles are 63 KiB).
    var chunk = 512

    public init(root: URL, model: String, embed: @escaping NeighbourSearch.Embed) {
        self.root = root
        self.model = model
        self.embed = embed
    }

    /// Where a set of pictures comes from (recorded in `info.json`'s `attribution`, shown by the gallery).
    public typealias Source = Database.Attribution

    /// What an import did.
    public struct Report: Sendable {
        public var database: String
        /// Pictures added.
        public var added = 0
        /// One sentence per picture refused (corrupt, too large, duplicate, no caption, a name that is not UTF-8).
        public var refused: [String] = []
        /// Files that are not pictures (PNG, JPEG or SVG by name), left alone.
        public var ignored: [String] = []
        /// Items in the database afterwards, and its generation.
        public var count = 0
        /// The sides of the image stores written (`Database.sides`; an add to a database made before 128² stores
        /// keeps its 32² and 64² only).
        public var sides: [Int] = []
        public var generation = 0
        public var indexType = ""
        /// Seconds spent reading and resizing, embedding, indexing and writing, and in all.
        public var decodeSeconds = 0.0, embedSeconds = 0.0, indexSeconds = 0.0, totalSeconds = 0.0
    }

    /// Database names: 1–64 characters of a–z, 0–9, `-` and `_`, starting with a letter or digit.
    public static func checkName(_ name: String) throws {
        let ok = !name.isEmpty && name.count <= 64 && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
        } && !(name.first == "-" || name.first == "_")
        guard ok else {
            throw HumeError(.invalidInput, "\"\(name)\" is not a database name: use 1–64 characters of a–z, 0–9, '-' and '_', starting with a letter or digit.")
        }
    }

    // MARK: Create

    /// Creates database `name` from the PNG and JPEG pictures under `images` (recursively; a first-level folder's name becomes the
    /// group of the pictures in it unless the captions give one).
    /// - Throws: `HumeError` with one sentence: a bad name, an existing database, an unreadable folder, no picture
    ///   accepted, or (strict) the first refusal.
    public func create(name: String, images: String, captions: CaptionTable?, source: Source?) throws -> Report {
        try Self.checkName(name)
        let started = DispatchTime.now().uptimeNanoseconds
        return try withLock {
            let dir = root.appendingPathComponent(name)
            guard !FileManager.default.fileExists(atPath: dir.path) else {
                throw HumeError(.invalidInput, "A database named \"\(name)\" already exists in \(root.path); grow it with `hume db add`, or remove it first.")
            }
            var report = Report(database: name)
            report.sides = Database.sides
            let tmp = root.appendingPathComponent(".tmp-\(name)-\(getpid())")
            try? FileManager.default.removeItem(at: tmp)
            try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
            do {
                let batch = try prepare(images: images, captions: captions, existing: [:], firstID: 0, sides: report.sides, storesIn: tmp,
                                        report: &report)
                let t0 = DispatchTime.now().uptimeNanoseconds
                let vectors = try embedTexts(batch.map(\.retrievalText))
                report.embedSeconds = seconds(since: t0)
                let t1 = DispatchTime.now().uptimeNanoseconds
                try append(batch, vectors: vectors, to: tmp)
                let kind = IndexKind.forCount(batch.count)
                let index = try VectorIndex(dimension: Database.dimension, kind: kind, count: batch.count)
                try index.train(andAdd: vectors)
                let generation = DatabaseGeneration(number: 1, count: batch.count, indexFile: "index-1.faiss", indexType: kind.rawValue, model: model)
                try index.write(to: tmp.appendingPathComponent(generation.indexFile).path)
                var sources: [Source] = []
                if var s = source { s.count = batch.count; sources.append(s) }
                try writeInfo(name: name, count: batch.count, sides: report.sides, sources: sources, createdAt: isoNow(), to: tmp)
                try writeGeneration(generation, to: tmp)
                report.indexSeconds = seconds(since: t1)
                guard rename(tmp.path, dir.path) == 0 else {
                    throw HumeError(.system, "Cannot move the new database into \(dir.path): \(String(cString: strerror(errno))).")
                }
                report.added = batch.count
                report.count = batch.count
                report.generation = 1
                report.indexType = kind.rawValue
            } catch {
                try? FileManager.default.removeItem(at: tmp)
                throw error
            }
            report.totalSeconds = seconds(since: started)
            return report
        }
    }

    // MARK: Add

    /// Adds the PNG and JPEG pictures under `images` to database `name` (made by `create`): new images and vectors are appended, the
    /// index is extended (rebuilt from the stored vectors only when the database outgrows its index type), and the
    /// new generation is committed by one rename. Pictures already in the database are refused as duplicates.
    public func add(name: String, images: String, captions: CaptionTable?, source: Source?) throws -> Report {
        try Self.checkName(name)
        let started = DispatchTime.now().uptimeNanoseconds
        return try withLock {
            let db = try Database(named: name, root: root)
            guard let old = db.generation else {
                throw HumeError(.invalidInput, "The database \"\(name)\" was built by Ops/build-db.sh; hume db add grows databases made with hume db create.")
            }
            guard old.model == model else {
                throw HumeError(.invalidInput, "The database \"\(name)\" was embedded by another model (\(old.model)); recreate it to add to it with this one (\(model)).")
            }
            let dir = db.directory
            try truncateTail(dir: dir, count: old.count)
            var existing: [String: String] = [:]
            for (id, item) in db.items.enumerated() { if let d = item.digest { existing[d] = "id \(id) (\(item.source))" } }
            var report = Report(database: name)
            // A database made before 128² stores has none: its pictures are not kept, so the new ones go in at 32² and
            // 64² only, and it stays whole (asking it for 128 says to create it again). Every store it has must hold the
            // committed items exactly, or the new ones would land at the wrong ids.
            report.sides = [32, 64] + (db.hasImages(side: 128) ? [128] : [])
            for side in report.sides { _ = try db.images(side: side) }
            // From here until the commit, everything written past the committed count is cut off again on failure.
            var committed = false
            let nextIndexFile = "index-\(old.number + 1).faiss"
            defer {
                if !committed {
                    try? truncateTail(dir: dir, count: old.count)
                    try? FileManager.default.removeItem(at: dir.appendingPathComponent(nextIndexFile))
                }
            }
            let batch = try prepare(images: images, captions: captions, existing: existing, firstID: old.count, sides: report.sides,
                                    storesIn: dir, report: &report)
            let next = DatabaseGeneration(number: old.number + 1, count: old.count + batch.count,
                                          indexFile: nextIndexFile, indexType: "", model: model)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let vectors = try embedTexts(batch.map(\.retrievalText))
            report.embedSeconds = seconds(since: t0)
            let t1 = DispatchTime.now().uptimeNanoseconds
            try append(batch, vectors: vectors, to: dir)
            let kind = IndexKind.forCount(next.count)
            let index: VectorIndex
            if kind.rawValue == old.indexType {
                index = try VectorIndex.read(path: dir.appendingPathComponent(old.indexFile).path, mmap: false)
                try vectors.withUnsafeBufferPointer { try index.add($0) }
            } else {
                // Outgrew its index type: a new index over the stored vectors (no picture is read or embedded again).
                let all = Array(try db.embeddings().all) + vectors
                index = try VectorIndex(dimension: Database.dimension, kind: kind, count: next.count)
                try index.train(andAdd: all)
            }
            var generation = next
            generation.indexType = kind.rawValue
            try index.write(to: dir.appendingPathComponent(generation.indexFile).path)
            try writeGeneration(generation, to: dir)
            committed = true
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(old.indexFile))
            var sources = db.attribution
            if var s = source {
                if let i = sources.firstIndex(where: { $0.name == s.name }) { sources[i].count += batch.count } else { s.count = batch.count; sources.append(s) }
            }
            try writeInfo(name: name, count: next.count, sides: report.sides, sources: sources, createdAt: db.createdAt ?? isoNow(), to: dir)
            report.indexSeconds = seconds(since: t1)
            report.added = batch.count
            report.count = next.count
            report.generation = generation.number
            report.indexType = kind.rawValue
            report.totalSeconds = seconds(since: started)
            return report
        }
    }

    // MARK: Remove

    /// Removes database `name` (one `hume db` made). Workers that have it open keep their mapping until they next
    /// look; then jobs naming it fail with the unknown-database sentence.
    public static func remove(name: String, root: URL) throws {
        try checkName(name)
        let db = try Database(named: name, root: root)
        guard db.generation != nil else {
            throw HumeError(.invalidInput, "The database \"\(name)\" is built from Debian packages by Ops/prepare-data.sh, not by hume db; it is not removed.")
        }
        try lock(root: root) {
            let trash = root.appendingPathComponent(".old-\(name)-\(getpid())")
            guard rename(db.directory.path, trash.path) == 0 else {
                throw HumeError(.system, "Cannot remove \(db.directory.path): \(String(cString: strerror(errno))).")
            }
            try FileManager.default.removeItem(at: trash)
        }
    }

    // MARK: Reading pictures

    /// A picture ready to store.
    struct Prepared: Sendable {
        var item: DatabaseItem
        /// RGB tiles, one per side asked for (in that order): 32², 64², 128².
        var tiles: [[UInt8]]
    }

    /// Checks that `images` is a folder, so a caller can say so before loading anything.
    /// - Throws: `HumeError(.invalidInput)`: "The images folder … cannot be used: there is no such folder" (or "it is a
    ///   file, not a folder").
    public static func checkImagesFolder(_ images: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: images, isDirectory: &isDirectory) else {
            throw HumeError(.invalidInput, "The images folder \(images) cannot be used: there is no such folder.")
        }
        guard isDirectory.boolValue else {
            throw HumeError(.invalidInput, "The images folder \(images) cannot be used: it is a file, not a folder.")
        }
    }

    /// Lists, decodes, checks and resizes the pictures under `images`, in path order, and appends the tiles of those
    /// accepted to the stores of `sides` in `dir` (past whatever they hold; the caller commits them, or cuts them off);
    /// returns their items, with ids from `firstID`. Refusals go to `report` (or throw, when strict).
    func prepare(images: String, captions: CaptionTable?, existing: [String: String], firstID: Int, sides: [Int], storesIn dir: URL,
                 report: inout Report) throws -> [DatabaseItem] {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try Self.checkImagesFolder(images)
        let listing = try Self.listFiles(images)
        var refused = listing.badNames.map { "A file name in \(images) is not UTF-8 (\($0)); rename it to add it." }
        let pictures = listing.files.filter(Self.isPicture)
        report.ignored = listing.files.filter { !Self.isPicture($0) }
        let stores = sides.map { dir.appendingPathComponent("images\($0).rgb") }
        var batch: [DatabaseItem] = []
        var seen = existing
        for start in stride(from: 0, to: pictures.count, by: max(1, chunk)) {
            let paths = Array(pictures[start..<min(pictures.count, start + max(1, chunk))])
            // Decode and resize on `threads` threads; results keep path order.
            let results = Slots<Result<Prepared, HumeError>>(paths.count)
            let workers = max(1, min(threads, paths.count))
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var i = w
                while i < paths.count {
                    results.slots[i] = Result { try readPicture(paths[i], in: images, captions: captions, sides: sides) }.mapError {
                        ($0 as? HumeError) ?? HumeError(.invalidInput, "\(paths[i]): \($0)")
                    }
                    i += workers
                }
            }
            var accepted: [Prepared] = []
            for (i, path) in paths.enumerated() {
                switch results.slots[i]! {
                case .failure(let e): refused.append(e.message)
                case .success(var p):
                    let digest = p.item.digest ?? ""
                    if let first = seen[digest] {
                        refused.append("\(path) is the same picture as \(first); it is not added twice.")
                        continue
                    }
                    seen[digest] = path
                    p.item.id = firstID + batch.count
                    batch.append(p.item)
                    accepted.append(p)
                }
            }
            // Synced once, below, rather than per chunk.
            for (k, store) in stores.enumerated() { try appendBytes(accepted.flatMap { $0.tiles[k] }, to: store, sync: false) }
            progress?(start + paths.count, pictures.count)
        }
        for store in stores { try syncFile(store) }
        report.refused = refused
        report.decodeSeconds = seconds(since: t0)
        if strict, let first = refused.first {
            throw HumeError(.invalidInput, first + (refused.count > 1 ? " (and \(refused.count - 1) more refusals; nothing was added)" : " Nothing was added."))
        }
        guard !batch.isEmpty else {
            let why = refused.first.map { " The first refusal: \($0)" } ?? ""
            throw HumeError(.invalidInput, "No picture under \(images) could be added (\(pictures.count) PNG, JPEG or SVG files, \(refused.count) refused).\(why)")
        }
        return batch
    }

    /// One picture: read, decoded (composited on white), checked, padded square and resized to each of `sides`, each
    /// from the square (as Ops/build_db.py does; never one size from another).
    func readPicture(_ relative: String, in folder: String, captions: CaptionTable?, sides: [Int]) throws -> Prepared {
        let path = folder + "/" + relative
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path), let size = attrs[.size] as? Int else {
            throw HumeError(.invalidInput, "\(relative) cannot be read.")
        }
        guard size <= maxFileBytes else {
            throw HumeError(.invalidInput, "\(relative) is \(size) bytes; pictures up to \(maxFileBytes >> 20) MiB are accepted.")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw HumeError(.invalidInput, "\(relative) cannot be read.") }
        var bytes = [UInt8](data)
        // An SVG is drawn first; a PNG or JPEG named .svg is read as what it is.
        if SVGRaster.isSVG(relative), !PNGCodec.isPNG(bytes), !JPEGCodec.isJPEG(bytes) { bytes = try svg.draw(path, relative: relative) }
        let image: PixelImage
        do {
            // By content, not by name: a JPEG named .png is read as the JPEG it is.
            image = try PictureCodec.decode(bytes, limits: PictureLimits(maxDimension: 1 << 16, maxBytes: maxFileBytes, maxPixels: maxPixels))
        } catch let e as HumeError {
            throw HumeError(.invalidInput, "\(relative) is not a picture Hume can read: " + e.message.prefix(1).lowercased() + e.message.dropFirst())
        }
        var text = captions?.text(for: relative)
        if text == nil, let captions {
            throw HumeError(.invalidInput, "\(relative) has no caption in \(captions.source); add a line for it.")
        }
        if text == nil {
            guard let c = PictureText.caption(fromPath: relative) else {
                throw HumeError(.invalidInput, "\(relative) has no caption: neither its name nor its folders' have a word that says what it shows (a number, a code, a camera's name), and no captions file was given (--captions).")
            }
            text = PictureText(caption: c)
        }
        var t = text!
        let parts = relative.split(separator: "/")
        if t.group.isEmpty, parts.count > 1 { t.group = String(parts[0]) }
        let square = ImageResize.padSquare(image.pixels, width: image.width, height: image.height)
        var digestInput = [UInt8]()
        digestInput.reserveCapacity(8 + image.pixels.count)
        for v in [image.width, image.height] { withUnsafeBytes(of: UInt32(v).littleEndian) { digestInput.append(contentsOf: $0) } }
        digestInput.append(contentsOf: image.pixels)
        let item = DatabaseItem(id: 0, caption: t.caption, keywords: t.keywords, group: t.group, subgroup: t.subgroup,
                                concept: t.caption, split: "train", source: relative, digest: SHA256.hex(SHA256.hash(digestInput)),
                                side: max(image.width, image.height))
        return Prepared(item: item, tiles: ImageResize.lanczos(square.pixels, side: square.side, to: sides))
    }

    /// Whether a file is taken as a picture: PNG, JPEG and SVG, by name (`.png`, `.jpg`, `.jpeg`, `.svg`, `.svgz`, any
    /// case).
    static func isPicture(_ path: String) -> Bool {
        let lower = path.lowercased()
        return lower.hasSuffix(".png") || lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") || SVGRaster.isSVG(lower)
    }

    /// Regular files under `dir`, relative, sorted; hidden entries skipped; names that are not UTF-8 reported with
    /// their bytes escaped.
    static func listFiles(_ dir: String) throws -> (files: [String], badNames: [String]) {
        var files: [String] = [], bad: [String] = []
        func walk(_ rel: String) throws {
            let path = rel.isEmpty ? dir : dir + "/" + rel
            guard let d = opendir(path) else {
                throw HumeError(.invalidInput, "The folder \(path) cannot be read: \(String(cString: strerror(errno))).")
            }
            defer { closedir(d) }
            while let e = readdir(d) {
                var nameBytes = withUnsafeBytes(of: &e.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
                guard nameBytes.first != UInt8(ascii: ".") else { continue }
                guard let name = String(validating: nameBytes, as: UTF8.self) else {
                    nameBytes = nameBytes.prefix(80).map { $0 }
                    let shown = nameBytes.map { (0x20..<0x7f).contains($0) ? String(UnicodeScalar($0)) : String(format: "\\x%02X", $0) }.joined()
                    bad.append((rel.isEmpty ? "" : rel + "/") + shown)
                    continue
                }
                let child = rel.isEmpty ? name : rel + "/" + name
                var st = stat()
                guard stat(dir + "/" + child, &st) == 0 else { continue }
                if (st.st_mode & S_IFMT) == S_IFDIR { try walk(child) } else if (st.st_mode & S_IFMT) == S_IFREG { files.append(child) }
            }
        }
        try walk("")
        return (files.sorted(), bad.sorted())
    }

    // MARK: Writing

    func embedTexts(_ texts: [String]) throws -> [Float] {
        // Pictures often share a caption ("red fox" for red-fox_1.png … red-fox_9.png): each text is embedded once.
        var unique: [String: Int] = [:], order: [String] = []
        for t in texts where unique[t] == nil { unique[t] = order.count; order.append(t) }
        var vectors: [Float] = []
        vectors.reserveCapacity(order.count * Database.dimension)
        for start in stride(from: 0, to: order.count, by: 256) {
            vectors += try embed(Array(order[start..<min(order.count, start + 256)]))
        }
        let d = Database.dimension
        var out = [Float]()
        out.reserveCapacity(texts.count * d)
        for t in texts { let u = unique[t]!; out += vectors[(u * d)..<((u + 1) * d)] }
        return out
    }

    /// Appends the batch's manifest lines and vectors to the files in `dir` (created when missing); `prepare` has
    /// appended its pixels.
    func append(_ batch: [DatabaseItem], vectors: [Float], to dir: URL) throws {
        var manifest = [UInt8]()
        for item in batch {
            manifest += item.json.bytes
            manifest.append(UInt8(ascii: "\n"))
        }
        try appendBytes(manifest, to: dir.appendingPathComponent("manifest.jsonl"))
        try vectors.withUnsafeBytes { try appendBytes(Array($0), to: dir.appendingPathComponent("embeddings.f32")) }
    }

    func appendBytes(_ bytes: [UInt8], to url: URL, sync: Bool = true) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HumeError(.system, "Cannot open \(url.path): \(String(cString: strerror(errno))).") }
        defer { close(fd) }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            guard n > 0 else { throw HumeError(.system, "Cannot write \(url.path): \(String(cString: strerror(errno))).") }
            off += n
        }
        if sync { guard fsync(fd) == 0 else { throw HumeError(.system, "Cannot sync \(url.path): \(String(cString: strerror(errno))).") } }
    }

    /// Flushes a file written without `sync` to disk.
    func syncFile(_ url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HumeError(.system, "Cannot open \(url.path): \(String(cString: strerror(errno))).") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw HumeError(.system, "Cannot sync \(url.path): \(String(cString: strerror(errno))).") }
    }

    /// Cuts every store back to its first `count` items (what an interrupted or failed `add` left past the commit).
    func truncateTail(dir: URL, count: Int) throws {
        let manifest = dir.appendingPathComponent("manifest.jsonl")
        if let data = FileManager.default.contents(atPath: manifest.path) {
            var lines = 0, end = 0
            for (i, b) in data.enumerated() where b == UInt8(ascii: "\n") {
                lines += 1
                if lines == count { end = i + 1; break }
            }
            if count == 0 { end = 0 }
            if end < data.count { try cut(manifest, to: end) }
        }
        // Every store side, also one the database lacks (cut does nothing to a file that is not there).
        for (file, per) in Database.sides.map({ ("images\($0).rgb", $0 * $0 * 3) }) + [("embeddings.f32", Database.dimension * 4)] {
            try cut(dir.appendingPathComponent(file), to: count * per)
        }
    }

    func cut(_ url: URL, to size: Int) throws {
        var st = stat()
        guard stat(url.path, &st) == 0, Int(st.st_size) > size else { return }
        guard truncate(url.path, off_t(size)) == 0 else {
            throw HumeError(.system, "Cannot truncate \(url.path): \(String(cString: strerror(errno))).")
        }
    }

    func writeGeneration(_ g: DatabaseGeneration, to dir: URL) throws {
        try writeFileAtomically(g.json.bytes + [UInt8(ascii: "\n")], to: dir.appendingPathComponent(DatabaseGeneration.fileName).path)
    }

    func writeInfo(name: String, count: Int, sides: [Int], sources: [Source], createdAt: String, to dir: URL) throws {
        let info = JSON.object([
            "name": .string(name), "count": JSON(count), "sizes": .array(sides.map { JSON($0) }), "version": JSON(1),
            "origin": .string("hume db"), "created_at": .string(createdAt), "updated_at": .string(isoNow()),
            "attribution": .array(sources.map { s in
                .object(["name": .string(s.name), "licence": .string(s.licence), "url": .string(s.url),
                         "copyright": .string(s.copyright), "count": JSON(s.count)])
            }),
        ])
        try writeFileAtomically(info.bytes + [UInt8(ascii: "\n")], to: dir.appendingPathComponent("info.json").path)
    }

    func withLock<T>(_ body: () throws -> T) throws -> T { try Self.lock(root: root, body) }

    static func lock<T>(root: URL, _ body: () throws -> T) throws -> T {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let fd = open(root.appendingPathComponent(".lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HumeError(.system, "Cannot open \(root.path)/.lock: \(String(cString: strerror(errno))).") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw HumeError(.system, "Cannot lock \(root.path)/.lock: \(String(cString: strerror(errno))).") }
        sweepAbandoned(root: root)
        return try body()
    }

    /// Removes the `.tmp-NAME-PID` folders (and files) of writers that died before renaming them into place: every
    /// writer holds the lock while its own exists, so under the lock one whose process is gone is abandoned.
    static func sweepAbandoned(root: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return }
        for name in names where name.hasPrefix(".tmp-") {
            guard let pid = name.split(separator: "-").last.flatMap({ Int32($0) }), pid > 0, pid != getpid(),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: root.appendingPathComponent(name))
        }
    }

    func seconds(since t: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9 }
}

func isoNow() -> String {
    let f = ISO8601DateFormatter()
    return f.string(from: Date())
}

/// One slot per index, each written by exactly one thread of a `concurrentPerform` and read after it returns.
final class Slots<T>: @unchecked Sendable {
    // Safe: disjoint indices per thread (no shared array header is written); reads happen after the threads join.
    let slots: UnsafeMutableBufferPointer<T?>
    init(_ n: Int) {
        slots = .allocate(capacity: n)
        slots.initialize(repeating: nil)
    }
    deinit {
        _ = slots.deinitialize()
        slots.deallocate()
    }
}
