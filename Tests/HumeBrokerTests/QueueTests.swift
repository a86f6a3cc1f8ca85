@testable import HumeBroker
import HumeCore
import Testing

/// The broker's own containers, against plain references.
@Suite("Broker: stage queue and id map")
struct QueueTests {
    /// A deterministic generator, so a failure replays.
    struct SplitMix {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    @Test("the stage queue pops what a heap keyed by (255 - priority, arrival) pops, through growth, wrap-around and put-backs")
    func priorityOrder() {
        var rng = SplitMix(state: 42)
        var queue = PriorityFIFO<Int>()
        var reference: [(key: UInt64, value: Int)] = []  // kept sorted by key
        var arrival: UInt64 = 0
        func referencePush(_ priority: UInt8, _ seq: UInt64, _ value: Int) {
            let key = UInt64(255 - priority) << 48 | seq
            let at = reference.firstIndex { $0.key > key } ?? reference.count
            reference.insert((key, value), at: at)
        }
        var popped = 0
        for step in 0..<20_000 {
            let op = rng.next(10)
            if op < 6 {
                // Priorities from all four bitmap words, with some crowded into a few values so their rings wrap.
                let p = UInt8(rng.next(3) == 0 ? rng.next(256) : [0, 63, 64, 200][rng.next(4)])
                arrival += 1
                queue.pushBack(step, priority: p)
                referencePush(p, arrival, step)
            } else {
                let want = reference.first
                let got = queue.popFirst()
                #expect(got == want?.value, "step \(step)")
                guard let w = want else { continue }
                reference.removeFirst()
                popped += 1
                if op == 9 {
                    // Put back what was just popped (a full next stage): it must come out first again.
                    let p = UInt8(255 - (w.key >> 48))
                    queue.pushFront(w.value, priority: p)
                    reference.insert(w, at: 0)
                }
            }
            #expect(queue.count == reference.count)
        }
        while let w = reference.first {
            #expect(queue.popFirst() == w.value)
            reference.removeFirst()
        }
        #expect(queue.popFirst() == nil && queue.count == 0)
        #expect(popped > 5_000)
    }

    @Test("the id map stores, finds, replaces and removes like a dictionary, for sequential and scattered ids")
    func idMap() {
        var map = IDMap<Int>()
        var reference: [UInt64: Int] = [:]
        var rng = SplitMix(state: 7)
        for i in 0..<50_000 {
            let id: UInt64 = i % 2 == 0 ? UInt64(i) : UInt64(rng.next(1 << 30)) << 20
            switch rng.next(4) {
            case 0, 1:
                map[id] = i
                reference[id] = i
            case 2:
                #expect(map.removeValue(forKey: id) == reference.removeValue(forKey: id))
            default:
                #expect(map[id] == reference[id])
            }
        }
        #expect(map.count == reference.count)
        #expect(map.values.sorted() == reference.values.sorted())
    }
}
