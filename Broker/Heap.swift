/// A binary min-heap of (key, value) pairs; O(log n) push and pop, no allocation once grown.
struct MinHeap<Value> {
    private var keys: [UInt64] = []
    private var values: [Value] = []

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    var minKey: UInt64? { keys.first }
    var min: (key: UInt64, value: Value)? { keys.isEmpty ? nil : (keys[0], values[0]) }

    mutating func push(_ key: UInt64, _ value: Value) {
        keys.append(key)
        values.append(value)
        var i = keys.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if keys[parent] <= keys[i] { break }
            keys.swapAt(parent, i)
            values.swapAt(parent, i)
            i = parent
        }
    }

    @discardableResult
    mutating func pop() -> (key: UInt64, value: Value)? {
        guard !keys.isEmpty else { return nil }
        let top = (keys[0], values[0])
        let lastKey = keys.removeLast()
        let lastValue = values.removeLast()
        if !keys.isEmpty {
            keys[0] = lastKey
            values[0] = lastValue
            var i = 0
            let n = keys.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && keys[l] < keys[m] { m = l }
                if r < n && keys[r] < keys[m] { m = r }
                if m == i { break }
                keys.swapAt(i, m)
                values.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// A stage's queue: highest priority first, first in, first out within a priority, the order a heap keyed by
/// (255 - priority, arrival) gives, but O(1) per push and pop: one ring per priority and a bitmap of the non-empty
/// ones. (The heap's pop was the broker's costliest step after SQLite's, about 900 instructions a job.)
struct PriorityFIFO<Value> {
    private var rings = [Ring](repeating: Ring(), count: 256)  // index: priority
    private var nonEmpty: [UInt64] = [0, 0, 0, 0]  // bit p: ring p holds something
    private(set) var count = 0

    /// A growable ring buffer.
    struct Ring {
        var slots: [Value?] = []
        var head = 0
        var count = 0

        mutating func grow() {
            let old = slots
            slots = [Value?](repeating: nil, count: max(16, old.count * 2))
            for i in 0..<count { slots[i] = old[(head + i) % old.count] }
            head = 0
        }

        mutating func pushBack(_ v: Value) {
            if count == slots.count { grow() }
            slots[(head + count) % slots.count] = v
            count += 1
        }

        mutating func pushFront(_ v: Value) {
            if count == slots.count { grow() }
            head = (head + slots.count - 1) % slots.count
            slots[head] = v
            count += 1
        }

        mutating func popFront() -> Value? {
            guard count > 0 else { return nil }
            let v = slots[head]
            slots[head] = nil
            head = (head + 1) % slots.count
            count -= 1
            return v
        }
    }

    /// Behind everything of its priority.
    mutating func pushBack(_ v: Value, priority: UInt8) {
        rings[Int(priority)].pushBack(v)
        mark(priority)
    }

    /// Ahead of everything of its priority (to put back what was just popped).
    mutating func pushFront(_ v: Value, priority: UInt8) {
        rings[Int(priority)].pushFront(v)
        mark(priority)
    }

    private mutating func mark(_ p: UInt8) {
        nonEmpty[Int(p) >> 6] |= 1 << UInt64(p & 63)
        count += 1
    }

    /// The first of the highest priority present.
    mutating func popFirst() -> Value? {
        for w in stride(from: 3, through: 0, by: -1) where nonEmpty[w] != 0 {
            let p = w << 6 | (63 - nonEmpty[w].leadingZeroBitCount)
            let v = rings[p].popFront()
            if rings[p].count == 0 { nonEmpty[w] &= ~(1 << UInt64(p & 63)) }
            count -= 1
            return v
        }
        return nil
    }
}
