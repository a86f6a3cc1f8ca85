import Foundation
import HumeClient
import HumeCore
import HumeStages
import HumeData
import HumeFleet
import Testing

/// A stage image (PROTOCOL.md §11.5) of one colour.
func solidStageImage(side: Int, rgb: (UInt8, UInt8, UInt8), prompt: String) -> [UInt8] {
    let meta = Array(JSON.object(["prompt": .string(prompt)]).serialized.utf8)
    var b: [UInt8] = Array("HIMG".utf8) + [UInt8(side), 0, UInt8(side), 0, UInt8(meta.count), 0, 0, 0] + meta
    for _ in 0..<(side * side) { b += [rgb.0, rgb.1, rgb.2] }
    return b
}

@Suite("The broker's status page in headless Chromium", .serialized)
struct StatusPageBrowserTests {
    @Test("a browser renders the page: the stage table and the latest outputs' thumbnails appear on the screenshot",
          .timeLimit(.minutes(2)))
    func screenshot() throws {
        let chromium = "/usr/bin/chromium-headless-shell"
        guard FileManager.default.isExecutableFile(atPath: chromium) else {
            Issue.record("chromium-headless-shell is missing (Ops/setup.sh installs it)")
            return
        }
        let dir = tempDir("statuspage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = freePort()
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--metrics", "127.0.0.1:\(port)"])
        defer { fleet.stop() }
        try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)
        // Three magenta stage images through a noop stage (it echoes its input), as a denoise stage would make them.
        let jobs = (0..<3).map { JobSpec(key: "img-\($0)", data: solidStageImage(side: 32, rgb: (255, 0, 255), prompt: "magenta \($0)")) }
        let sub = BatchSubmitter(connection: try BrokerConnection(endpoint: fleet.endpoints.clients), batch: "page", route: ["noop"], jobs: jobs)
        let deadline = Date().addingTimeInterval(30)
        while !(try sub.run(timeoutMs: 200)) && Date() < deadline {}
        #expect(sub.finishedCount == 3)
        let (code, html) = try httpGet(port: port, path: "/")
        #expect(code == 200 && html.contains("magenta 2") && html.contains("id=\"stages\""))

        let shot = dir + "/page.png"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium)
        p.arguments = ["--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1400",
                       "--screenshot=\(shot)", "http://127.0.0.1:\(port)/"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        let until = Date().addingTimeInterval(60)
        while p.isRunning && Date() < until { usleep(100_000) }
        if p.isRunning { p.terminate() }
        let png = try #require(FileManager.default.contents(atPath: shot), "chromium wrote no screenshot")
        let image = try PNGCodec.decode([UInt8](png))
        #expect(image.width == 1200 && image.height == 1400)
        var magenta = 0, background = 0
        for i in stride(from: 0, to: image.pixels.count, by: image.channels) {
            let (r, g, b) = (image.pixels[i], image.pixels[i + 1], image.pixels[i + 2])
            if r > 240 && g < 16 && b > 240 { magenta += 1 }
            if r == 247 && g == 248 && b == 250 { background += 1 }
        }
        // Three 96×96 thumbnails were drawn (they are the only magenta on the page), on the page's own background.
        #expect(magenta >= 3 * 96 * 96 * 9 / 10 && magenta <= 3 * 96 * 96 * 11 / 10, "magenta pixels: \(magenta)")
        #expect(background > image.width * image.height / 4, "page background pixels: \(background)")
    }
}
