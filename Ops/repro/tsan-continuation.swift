// ThreadSanitizer reports a race that is not one when a continuation is resumed, from a plain thread, before the task
// that awaits it has suspended (README, "Under the sanitizers"; `BrokerLink.handOver` in the gateway works around it).
//   swiftc -sanitize=thread -O Ops/repro/tsan-continuation.swift -o /tmp/tsan-repro && /tmp/tsan-repro
//       → "WARNING: ThreadSanitizer: data race" on the dictionary written before `resume`
//   swiftc -sanitize=thread -O -D HANDOVER Ops/repro/tsan-continuation.swift -o /tmp/tsan-repro && /tmp/tsan-repro
//       → no report: a lock released before `resume` and taken after the await makes the order visible to TSan
import Foundation

final class Mailbox: @unchecked Sendable {  // `waiting` is guarded by `lock`
    let lock = NSLock()
    var waiting: [CheckedContinuation<[String: Int], Never>] = []
}
let box = Mailbox()

let replier = Thread {
    while true {
        let taken: [CheckedContinuation<[String: Int], Never>] = box.lock.withLock { defer { box.waiting.removeAll() }; return box.waiting }
        for c in taken {
            var reply: [String: Int] = [:]
            for i in 0..<20 { reply["k\(i)"] = i }  // written on this thread, read by the task after resume
            #if HANDOVER
            box.lock.withLock {}
            #endif
            c.resume(returning: reply)
        }
        usleep(100)
    }
}
replier.start()

@Sendable func ask() async -> [String: Int] {
    #if HANDOVER
    defer { box.lock.withLock {} }
    #endif
    return await withCheckedContinuation { c in
        box.lock.withLock { box.waiting.append(c) }
        usleep(300)  // the reply comes before this task suspends
    }
}

let total = await withTaskGroup(of: Int.self) { group in
    for _ in 0..<4 {
        group.addTask { var s = 0; for _ in 0..<2000 { s += await ask()["k7"] ?? 0 }; return s }
    }
    return await group.reduce(0, +)
}
print("read", total, "(expected 56000)")
