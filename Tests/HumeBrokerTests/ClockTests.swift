import Foundation
@testable import HumeBroker
import Testing

@Suite("Broker: clock")
struct ClockTests {
    @Test("the loop's clock starts at the wall time and then moves only with the monotonic clock")
    func anchored() {
        let clock = AnchoredClock(wall: 1_700_000_000_000, monotonic: 5_000)
        #expect(clock.now(monotonic: 5_000) == 1_700_000_000_000)
        #expect(clock.now(monotonic: 6_250) == 1_700_000_001_250)
        // The real clock: starts within a second of the wall clock and never goes backwards.
        let real = AnchoredClock()
        let start = real.now()
        #expect(abs(Int64(start) - Int64(wallMillis())) < 1_000)
        var last = start
        for _ in 0..<1_000 {
            let t = real.now()
            #expect(t >= last)
            last = t
        }
    }
}
