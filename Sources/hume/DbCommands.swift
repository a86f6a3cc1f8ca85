import ArgumentParser
import Foundation
import HumeCore
import HumeData
import HumeSearch

// MARK: hume db

struct DbCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Databases of your own pictures: create, grow, list, inspect, remove.",
        discussion: """
            Pictures are PNG, JPEG or SVG files (.png, .jpg, .jpeg, .svg, .svgz; SVGs drawn by rsvg-convert into a 256-pixel \
            box) in a folder (and its subfolders: a first-level folder names the group of the \
            pictures in it). Captions come from --captions (JSON Lines or CSV: file, caption, and optionally keywords, \
            group, subgroup), else from the file name ("red-fox_2.png" is "red fox"), else from the nearest folder whose name says what it holds ("dogs/IMG_1234.jpg" is "dogs"). A running fleet uses a grown \
            database for every job that reaches a stage after the add returns, without a restart.
            """,
        subcommands: [DbCreate.self, DbAdd.self, DbList.self, DbInfo.self, DbRemove.self])
}

struct DbImportOptions: ParsableArguments {
    @Option(help: "The folder of PNG, JPEG and SVG pictures (read recursively).") var images: String
    @Option(help: "Captions: a .jsonl or .csv file naming each picture's file and caption.") var captions: String?
    @Option(help: "Where the pictures come from (recorded and shown in the gallery), e.g. \"Oxygen icons\".") var sourceName: String?
    @Option(help: "Their licence, an SPDX id, e.g. LGPL-3.0-or-later.") var licence: String?
    @Option(help: "Their upstream address.") var sourceUrl: String?
    @Option(help: "Their copyright line.") var copyright: String?
    @Flag(help: "Add nothing if any picture is refused (default: add the others and name each refused one).") var strict = false
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        if sourceName == nil, licence != nil || sourceUrl != nil || copyright != nil {
            throw ValidationError("--licence, --source-url and --copyright describe a source: give its --source-name too.")
        }
    }

    var source: Database.Attribution? {
        sourceName.map { Database.Attribution(name: $0, licence: licence ?? "", url: sourceUrl ?? "", copyright: copyright ?? "", count: 0) }
    }

    func builder() throws -> DatabaseBuilder {
        // The folder is checked before the model is loaded, so a mistyped folder is what the user hears of (the captions
        // file has been read already: `captionTable()`, first in `run`).
        try DatabaseBuilder.checkImagesFolder(images)
        let embedder = try loadEmbedder(threads: 2)  // first: a missing model is one sentence saying how to install it
        let stamp = "all-MiniLM-L6-v2 " + (try modelFingerprint())
        var b = DatabaseBuilder(root: humePaths.databases, model: stamp) { try embedder.embedFlat($0) }
        b.strict = strict
        let bar = ReadProgress()
        b.progress = { bar.update($0, of: $1) }
        return b
    }

    func report(_ r: DatabaseBuilder.Report, verb: String) {
        for s in r.refused { stderrLine("hume db: \(s)") }  // every one, on stderr, also with --json
        if !r.ignored.isEmpty {
            stderrLine("hume db: left alone \(r.ignored.count) file(s) that are not PNG, JPEG or SVG (\(r.ignored.prefix(3).joined(separator: ", "))\(r.ignored.count > 3 ? ", …" : "")).")
        }
        let rate = Double(r.added) / max(r.totalSeconds, 1e-9)
        if json {
            print(JSON.object([
                "database": .string(r.database), "added": JSON(r.added), "refused": JSON(r.refused.count),
                "first_refusals": .array(r.refused.prefix(5).map { .string($0) }),
                "ignored": JSON(r.ignored.count), "count": JSON(r.count), "generation": JSON(r.generation),
                "index_type": .string(r.indexType), "seconds": .number(r.totalSeconds), "read_seconds": .number(r.decodeSeconds),
                "embed_seconds": .number(r.embedSeconds), "index_seconds": .number(r.indexSeconds), "pictures_per_second": .number(rate),
            ]).serialized)
        } else {
            let refused = r.refused.isEmpty ? "" : ", \(r.refused.count) refused"
            print("hume db: \(verb) \(r.database): \(r.added) pictures\(refused); \(r.count) in all, generation \(r.generation), \(r.indexType) index; "
                  + "\(fmt(r.totalSeconds, 1)) s (read \(fmt(r.decodeSeconds, 1)), embed \(fmt(r.embedSeconds, 1)), index and write \(fmt(r.indexSeconds, 1))), \(Int(rate)) pictures/s.")
        }
    }

    func captionTable() throws -> CaptionTable? { try captions.map { try CaptionTable.load(path: $0) } }
}

struct DbCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Makes a database from a folder of PNG, JPEG and SVG pictures.")
    @Argument(help: "The new database's name (a–z, 0–9, '-', '_').") var name: String
    @OptionGroup var options: DbImportOptions

    func validate() throws {
        do { try DatabaseBuilder.checkName(name) } catch let e as HumeError { throw ValidationError(e.message) }
    }

    func run() throws {
        let captions = try options.captionTable()
        let r = try options.builder().create(name: name, images: options.images, captions: captions, source: options.source)
        options.report(r, verb: "created")
    }
}

struct DbAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Adds a folder of PNG, JPEG and SVG pictures to a database made with create.")
    @Argument(help: "The database's name.") var name: String
    @OptionGroup var options: DbImportOptions

    func run() throws {
        let captions = try options.captionTable()
        _ = try Database(named: name, root: humePaths.databases)  // an unknown name is refused before the model loads
        let r = try options.builder().add(name: name, images: options.images, captions: captions, source: options.source)
        options.report(r, verb: "added to")
        if !r.sides.contains(128) {
            stderrLine("hume db: \(name) was made before databases held 128×128 images, so it has 32² and 64² only; to generate from it at 128, remove it and create it again from its pictures.")
        }
    }
}

/// The pictures read so far, as a progress bar on stderr (`ProgressBar`: in place on a terminal, a line every few seconds
/// otherwise), shown only for imports of more than one chunk.
final class ReadProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var bar: ProgressBar?
    private let start = Date()

    func update(_ read: Int, of total: Int) {
        lock.lock()
        defer { lock.unlock() }
        if bar == nil { bar = ProgressBar(total: total, enabled: read < total, label: "hume db: reading ", start: start) }
        if read < total { bar?.update(read) } else { bar?.finish(read) }
    }
}

/// One database's facts for list and info.
func databaseFacts(_ db: Database) -> JSON {
    var o: [String: JSON] = ["name": .string(db.name), "count": JSON(db.count),
                             "origin": .string(db.generation == nil ? "built from Debian packages (Ops/prepare-data.sh)" : "hume db")]
    if let g = db.generation {
        o["generation"] = JSON(g.number)
        o["index_type"] = .string(g.indexType)
        o["model"] = .string(g.model)
    } else if let stamp = try? String(contentsOf: db.indexStampPath, encoding: .utf8) {
        o["index_type"] = .string(stamp.split(separator: " ").first { $0.hasPrefix("kind=") }.map { String($0.dropFirst(5)) } ?? "")
    }
    if let created = db.createdAt { o["created_at"] = .string(created) }
    if let updated = db.info?["updated_at"]?.string { o["updated_at"] = .string(updated) }
    let groups = Set(db.items.map(\.group).filter { !$0.isEmpty })
    o["groups"] = JSON(groups.count)
    o["sizes"] = .array(Database.sides.filter { db.hasImages(side: $0) }.map { JSON($0) })
    // Pictures whose source is under 64 px a side: enlarged more than twice in a 128² sticker (nil: sizes not recorded).
    let sides = db.items.compactMap(\.side)
    if !sides.isEmpty { o["pictures_under_64"] = JSON(sides.filter { $0 < 64 }.count) }
    var bytes = 0
    for f in (try? FileManager.default.contentsOfDirectory(atPath: db.directory.path)) ?? [] {
        bytes += ((try? FileManager.default.attributesOfItem(atPath: db.directory.appendingPathComponent(f).path))?[.size] as? Int) ?? 0
    }
    o["bytes"] = JSON(bytes)
    o["attribution"] = .array(db.attribution.map { .string($0.line) })
    return .object(o)
}

struct DbList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Lists the databases on this machine.")
    @Flag(help: "Print JSON lines.") var json = false

    func run() throws {
        let names = Database.available(root: humePaths.databases)
        if names.isEmpty { stderrLine("hume db: no databases in \(humePaths.databases.path); run Ops/prepare-data.sh or hume db create.") }
        if !json { print("name            pictures  index  origin") }
        for name in names {
            guard let db = try? Database(named: name, root: humePaths.databases) else {
                print("\(name.padding(toLength: 15, withPad: " ", startingAt: 0)) (unreadable: run hume db info \(name))")
                continue
            }
            let f = databaseFacts(db)
            if json { print(f.serialized); continue }
            print(name.padding(toLength: 15, withPad: " ", startingAt: 0) + " " + String(db.count).leftPad(8) + "  "
                  + (f["index_type"]?.string ?? "-").padding(toLength: 5, withPad: " ", startingAt: 0) + "  " + (f["origin"]?.string ?? ""))
        }
    }
}

struct DbInfo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Shows one database: size, version, labels, sources and licences.")
    @Argument(help: "The database's name.") var name: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let db = try Database(named: name, root: humePaths.databases)
        let f = databaseFacts(db)
        if json { print(f.serialized); return }
        print("\(db.name): \(db.count) pictures, \(f["origin"]?.string ?? "")")
        print("  folder      \(db.directory.path) (\(fmt(Double(f["bytes"]?.int ?? 0) / 1_048_576, 1)) MiB)")
        if let g = db.generation { print("  generation  \(g.number), \(g.indexType) index \(g.indexFile), captions embedded by \(g.model)") }
        if let c = f["created_at"]?.string { print("  created     \(c)" + (f["updated_at"]?.string.map { ", updated \($0)" } ?? "")) }
        print("  groups      \(f["groups"]?.int ?? 0)")
        print("  sizes       " + (f["sizes"]?.array ?? []).compactMap(\.int).map { "\($0)²" }.joined(separator: ", "))
        if let small = f["pictures_under_64"]?.int, small > 0 {
            print("  small       \(small) pictures under 64 px: blurred in 128² stickers; of a thing also drawn larger, the larger is used")
        }
        for a in db.attribution { print("  source      \(a.line)") }
        if db.attribution.isEmpty { print("  source      (none recorded)") }
        for item in db.items.prefix(5) { print("  e.g.        #\(item.id) \(item.caption)" + (item.group.isEmpty ? "" : "  [\(item.group)]")) }
    }
}

struct DbRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Removes a database made with hume db create.")
    @Argument(help: "The database's name.") var name: String

    func run() throws {
        try DatabaseBuilder.remove(name: name, root: humePaths.databases)
        print("hume db: removed \(name).")
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
