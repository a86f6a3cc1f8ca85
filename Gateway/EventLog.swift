import Foundation
import HumeCore
import HumeStages

/// What an event says about a finished job: its JSON's fields, without the job's output (an image stays in the
/// journal; GET the job for it). Made for every RESULT, turned into JSON only when a reader reads it.
struct ResultSummary: Sendable {
    var id: UInt64
    var status: JobStatus
    var key: String
    var batch: String?
    var error: String?
    /// A text output of at most 4,096 bytes.
    var output: String?
    var image: ImageSize?

    struct ImageSize: Sendable {
        var width: Int
        var height: Int
        var mask: Bool
    }

    init(_ r: ResultRecord, batch: String?) {
        id = r.jobID
        status = r.status
        key = r.key
        self.batch = batch
        switch r.status {
        case .done:
            if let h = StageImage.header(of: r.body) {
                image = ImageSize(width: h.width, height: h.height, mask: Self.hasMask(r.body, after: h.pixels))
            } else if r.body.count <= 4096 {
                output = String(validating: r.body, as: UTF8.self)
            }
        case .active:
            break
        default:
            error = String(decoding: r.body, as: UTF8.self)
        }
    }

    /// Whether a stage image's first section after its pixels is the edit's `MASK` (read from the tag, no copy).
    static func hasMask(_ body: [UInt8], after pixels: Range<Int>) -> Bool {
        body.count >= pixels.upperBound + 4 && body[pixels.upperBound ..< pixels.upperBound + 4].elementsEqual("MASK".utf8)
    }

    var json: String {
        var o: [String: JSON] = [
            "id": JSON(Int(id)), "key": .string(key), "status": .string(status.name), "url": .string("/v1/jobs/\(id)"),
            "batch": batch.map { .string($0) } ?? .null,
        ]
        if let error { o["error"] = .string(error) }
        if let output { o["output"] = .string(output) }
        if let image {
            var i: [String: JSON] = ["width": JSON(image.width), "height": JSON(image.height), "url": .string("/v1/jobs/\(id)/image")]
            if image.mask { i["mask_url"] = .string("/v1/jobs/\(id)/image?part=mask") }
            o["image"] = .object(i)
        }
        return JSON.object(o).serialized
    }
}

/// The results this gateway has seen, as numbered Server-Sent Events, in a ring of the last `capacity`.
///
/// An event's id is `<epoch>-<seq>`: `seq` counts from 1 in this gateway process and `epoch` is the process's start
/// time in milliseconds, so an id from an earlier process is recognised as such. A reader resumes after the id it
/// last saw (`Last-Event-ID`); when that id is from another process or has left the ring, the reader is told so with
/// a `gap` event and continues from the oldest event held. The id `0` asks for every event held.
final class EventLog: @unchecked Sendable {  // state guarded by `lock`
    struct Event: Sendable {
        var seq: UInt64
        var summary: ResultSummary
        var batch: String? { summary.batch }
    }

    let epoch: UInt64
    let capacity: Int
    private let lock = NSLock()
    private var ring: [Event] = []
    private var start = 0  // index of the oldest event in `ring` once it is full
    private var lastSeq: UInt64 = 0
    private var doorbells: [UInt64: AsyncStream<Void>.Continuation] = [:]
    private var nextBell: UInt64 = 0
    private var closed = false

    init(capacity: Int, epoch: UInt64 = UInt64(Date().timeIntervalSince1970 * 1000)) {
        self.capacity = max(1, capacity)
        self.epoch = epoch
        ring.reserveCapacity(min(self.capacity, 65_536))
    }

    func id(_ seq: UInt64) -> String { "\(epoch)-\(seq)" }

    /// Appends events (their `seq` is assigned here) and rings every reader's doorbell.
    func append(_ items: [ResultSummary]) {
        guard !items.isEmpty else { return }
        lock.lock()
        for item in items {
            lastSeq += 1
            let e = Event(seq: lastSeq, summary: item)
            if ring.count < capacity {
                ring.append(e)
            } else {
                ring[start] = e
                start = (start + 1) % capacity
            }
        }
        let bells = Array(doorbells.values)
        lock.unlock()
        for b in bells { b.yield() }
    }

    /// Where a reader with `lastEventID` resumes: the first seq to send, and whether events were lost in between.
    func resumePoint(after lastEventID: String?) -> (next: UInt64, gap: Bool) {
        lock.lock()
        defer { lock.unlock() }
        let oldest = ring.isEmpty ? lastSeq + 1 : ring[start].seq
        guard let text = lastEventID?.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
            return (lastSeq + 1, false)  // a new reader gets what happens from now on
        }
        if text == "0" { return (oldest, false) }  // "from the start": every event the ring still holds
        let parts = text.split(separator: "-")
        guard parts.count == 2, let e = UInt64(parts[0]), let s = UInt64(parts[1]), e == epoch, s <= lastSeq else {
            return (oldest, true)
        }
        return s + 1 >= oldest ? (s + 1, false) : (oldest, true)
    }

    /// Up to `limit` events from `seq` on (fewer when the ring does not reach back that far: check `first.seq`).
    func events(from seq: UInt64, limit: Int) -> [Event] {
        lock.lock()
        defer { lock.unlock() }
        guard !ring.isEmpty, seq <= lastSeq else { return [] }
        let oldest = ring[start].seq
        let first = max(seq, oldest)
        let n = min(limit, Int(lastSeq - first + 1))
        let offset = Int(first - oldest)
        return (0..<n).map { ring[(start + offset + $0) % ring.count] }
    }

    /// The oldest seq the ring still holds (the next seq when it is empty).
    var oldestSeq: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return ring.isEmpty ? lastSeq + 1 : ring[start].seq
    }

    /// A doorbell rung on every append (coalesced: one ring may stand for many events), and a way to take it down.
    func doorbell() -> (AsyncStream<Void>, @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        lock.lock()
        if closed {
            lock.unlock()
            continuation.finish()
            return (stream, {})
        }
        nextBell += 1
        let key = nextBell
        doorbells[key] = continuation
        lock.unlock()
        let remove: @Sendable () -> Void = { [weak self] in
            guard let self else { return }
            self.lock.lock()
            let c = self.doorbells.removeValue(forKey: key)
            self.lock.unlock()
            c?.finish()
        }
        return (stream, remove)
    }

    /// Ends every reader's stream, now and from now on: the gateway is shutting down, and an event stream left open
    /// would keep its graceful shutdown waiting for ever.
    func closeAll() {
        lock.lock()
        closed = true
        let bells = Array(doorbells.values)
        doorbells.removeAll()
        lock.unlock()
        for b in bells { b.finish() }
    }

    /// Rings every doorbell without an event (readers then send a keep-alive comment).
    func ringAll() {
        lock.lock()
        let bells = Array(doorbells.values)
        lock.unlock()
        for b in bells { b.yield() }
    }
}
