import CCurl
import Foundation
import Testing

@Suite("CCurl bridge")
struct CurlBridgeTests {
    /// curl_global_init runs once per process, before the first handle.
    static let globalInit: CURLcode = hume_curl_global_init_all()

    /// Collects the body that the write callback receives.
    final class Sink {
        var bytes: [UInt8] = []
    }

    static let write: curl_write_callback = { data, size, count, userdata in
        guard let data, let userdata else { return 0 }
        let sink = Unmanaged<Sink>.fromOpaque(userdata).takeUnretainedValue()
        let length = size * count
        data.withMemoryRebound(to: UInt8.self, capacity: length) {
            sink.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
        }
        return length
    }

    /// Fetches `url` with a fresh easy handle; returns the result code, the body and the reported size.
    static func fetch(_ url: String) throws -> (code: CURLcode, body: [UInt8], size: curl_off_t) {
        try #require(globalInit == CURLE_OK)
        let handle = try #require(curl_easy_init())
        defer { curl_easy_cleanup(handle) }
        let sink = Sink()
        #expect(hume_curl_easy_setopt_string(handle, CURLOPT_URL, url) == CURLE_OK)
        #expect(hume_curl_easy_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, write) == CURLE_OK)
        let code = withExtendedLifetime(sink) {
            _ = hume_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
            _ = hume_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            return curl_easy_perform(handle)
        }
        var size: curl_off_t = -1
        #expect(hume_curl_easy_getinfo_off_t(handle, CURLINFO_SIZE_DOWNLOAD_T, &size) == CURLE_OK)
        return (code, sink.bytes, size)
    }

    @Test("curl_version_info describes a libcurl that speaks file:// and https://")
    func versionInfo() throws {
        let info = try #require(hume_curl_version_info())
        let version = String(cString: try #require(info.pointee.version))
        #expect(version.first?.isNumber == true)
        var protocols: Set<String> = []
        var cursor = try #require(info.pointee.protocols)
        while let name = cursor.pointee {
            protocols.insert(String(cString: name))
            cursor += 1
        }
        #expect(protocols.isSuperset(of: ["file", "http", "https"]))
    }

    @Test("an easy handle fetches a temporary file through a file:// URL")
    func fetchFileURL() throws {
        let contents = Array("Hume fetches this over file://\n".utf8) + (0..<200).map { UInt8($0) }
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("hume-curl-\(UUID().uuidString).bin")
        try Data(contents).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }

        let result = try Self.fetch(url.absoluteString)
        #expect(result.code == CURLE_OK, "\(String(cString: curl_easy_strerror(result.code)))")
        #expect(result.body == contents)
        #expect(result.size == curl_off_t(contents.count))
    }

    @Test("a missing file is reported as CURLE_FILE_COULDNT_READ_FILE")
    func missingFile() throws {
        let result = try Self.fetch("file:///nonexistent/hume-\(UUID().uuidString)")
        #expect(result.code == CURLE_FILE_COULDNT_READ_FILE)
        #expect(result.body.isEmpty)
    }
}
