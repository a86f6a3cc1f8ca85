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
