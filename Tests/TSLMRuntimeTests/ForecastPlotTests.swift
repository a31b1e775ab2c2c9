import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import TSLMRuntime

/// `ForecastPlot`: the SVG parses as XML (Foundation's `XMLParser`), has the SVG root and
/// namespace, escapes text, draws what it is given and nothing more, and rejects bad input.
final class ForecastPlotTests: XCTestCase {
    /// One parsed element: its name, attributes, text, namespace and depth (root = 0).
    struct Element {
        var name: String
        var attributes: [String: String]
        var text = ""
        var namespace: String?
        var depth: Int
    }

    /// Parses `svg` with `XMLParser` (namespace processing on); fails the test when it is not
    /// well-formed XML. Elements in document order.
    final class Collector: NSObject, XMLParserDelegate {
        var elements: [Element] = []
        var open: [Int] = []
        var error: Error?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            open.append(elements.count)
            elements.append(Element(name: elementName, attributes: attributeDict, namespace: namespaceURI, depth: open.count - 1))
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            open.removeLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if let i = open.last { elements[i].text += string }
        }

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { error = parseError }
    }

    func parse(_ svg: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Element] {
        let parser = XMLParser(data: Data(svg.utf8))
        parser.shouldProcessNamespaces = true
        let collector = Collector()
        parser.delegate = collector
        let ok = parser.parse()
        XCTAssertTrue(ok, "not well-formed: \(String(describing: collector.error ?? parser.parserError))", file: file, line: line)
        XCTAssertNil(collector.error, file: file, line: line)
        return collector.elements
    }

    func elements(_ all: [Element], class cls: String) -> [Element] {
        all.filter { $0.attributes["class"] == cls }
    }

    func pointCount(_ e: Element) -> Int {
        (e.attributes["points"] ?? "").split(separator: " ").count
    }

    /// All coordinates of a polyline or polygon.
    func points(_ e: Element) -> [(Double, Double)] {
        (e.attributes["points"] ?? "").split(separator: " ").map { p in
            let xy = p.split(separator: ",").map { Double($0)! }
            return (xy[0], xy[1])
        }
    }

    let history: [Float] = (0..<48).map { Float(10 + 3 * sin(Double($0) * .pi / 6)) }
    let forecast: [Float] = (48..<60).map { Float(10 + 2.5 * sin(Double($0) * .pi / 6)) }

    func testWellFormedSVGWithRootNamespaceAndViewBox() throws {
        let plot = ForecastPlot(title: "lstm-demo", channel: "passengers", history: history, forecast: forecast,
                                xLabel: "month", yLabel: "thousands")
        let svg = try plot.svg(width: 640, height: 360)
        XCTAssertTrue(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\""))
        let all = try parse(svg)
        let root = try XCTUnwrap(all.first)
        XCTAssertEqual(root.name, "svg")
        XCTAssertEqual(root.depth, 0)
        XCTAssertEqual(root.namespace, "http://www.w3.org/2000/svg")
        XCTAssertTrue(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertEqual(root.attributes["version"], "1.1")
        XCTAssertEqual(root.attributes["viewBox"], "0 0 640 360")
        XCTAssertEqual(root.attributes["width"], "640")
        XCTAssertEqual(root.attributes["height"], "360")
        // Every element is in the SVG namespace, and exactly one is at depth 0.
        XCTAssertTrue(all.allSatisfy { $0.namespace == "http://www.w3.org/2000/svg" })
        XCTAssertEqual(all.filter { $0.depth == 0 }.count, 1)
        // A white background covering the whole view.
        let background = try XCTUnwrap(all.first { $0.name == "rect" })
        XCTAssertEqual(background.attributes["fill"], "#ffffff")
        XCTAssertEqual(background.attributes["width"], "640")
        XCTAssertEqual(elements(all, class: "frame").count, 1)
        XCTAssertEqual(elements(all, class: "xlabel").map(\.text), ["month"])
        XCTAssertEqual(elements(all, class: "ylabel").map(\.text), ["thousands"])
        XCTAssertEqual(elements(all, class: "channel").map(\.text), ["passengers"])
        // The origin line is dotted.
        XCTAssertNotNil(elements(all, class: "origin").first?.attributes["stroke-dasharray"])
    }

    func testTitleTextRoundTripsThroughEscaping() throws {
        let title = "a<b & \"c\" 'd' > e"
        let plot = ForecastPlot(title: title, channel: "x&y <z>", history: [1, 2, 3], forecast: [4, 5],
                                band: .init(lower: [3, 4], upper: [5, 6], label: "10–90% \"q\""),
                                xLabel: "t < 5", yLabel: "'°C'")
        let svg = try plot.svg()
        XCTAssertFalse(svg.contains("a<b"))
        XCTAssertTrue(svg.contains("a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt; e"))
        let all = try parse(svg)
        XCTAssertEqual(elements(all, class: "title").map(\.text), [title])
        XCTAssertEqual(all.first { $0.name == "title" }?.text, title)
        XCTAssertEqual(elements(all, class: "channel").map(\.text), ["x&y <z>"])
        XCTAssertEqual(elements(all, class: "xlabel").map(\.text), ["t < 5"])
        XCTAssertEqual(elements(all, class: "ylabel").map(\.text), ["'°C'"])
        XCTAssertEqual(elements(all, class: "legend").count, 1)
        XCTAssertEqual(elements(all, class: "legend-label").map(\.text), ["history", "forecast", "10–90% \"q\""])
    }

    func testControlCharactersDoNotBreakTheDocument() throws {
        let plot = ForecastPlot(title: "bad\u{1}name\u{0}", channel: "c\u{1F}", history: [1], forecast: [2])
        let all = try parse(try plot.svg())
        XCTAssertEqual(elements(all, class: "title").map(\.text), ["bad\u{FFFD}name\u{FFFD}"])
    }

    func testPolylinePointCountsAndContinuity() throws {
        let actual: [Float] = forecast.map { $0 + 0.5 }
        let plot = ForecastPlot(title: "m", channel: "c", history: history, forecast: forecast,
                                band: .init(lower: forecast.map { $0 - 1 }, upper: forecast.map { $0 + 1 }),
                                actual: actual)
        let all = try parse(try plot.svg())
        let h = try XCTUnwrap(elements(all, class: "history").first)
        let f = try XCTUnwrap(elements(all, class: "forecast").first)
        let a = try XCTUnwrap(elements(all, class: "actual").first)
        let band = try XCTUnwrap(elements(all, class: "band").first)
        XCTAssertEqual([h.name, f.name, a.name, band.name], ["polyline", "polyline", "polyline", "polygon"])
        XCTAssertEqual(pointCount(h), history.count)
        // The forecast and the actual values start at the last history point.
        XCTAssertEqual(pointCount(f), forecast.count + 1)
        XCTAssertEqual(pointCount(a), actual.count + 1)
        // The band: the origin, the upper bounds forward, the lower bounds backward.
        XCTAssertEqual(pointCount(band), 2 * forecast.count + 1)
        let hp = points(h), fp = points(f), ap = points(a), bp = points(band)
        XCTAssertEqual(fp[0].0, hp.last!.0)
        XCTAssertEqual(fp[0].1, hp.last!.1)
        XCTAssertEqual(ap[0].0, hp.last!.0)
        XCTAssertEqual(bp[0].0, hp.last!.0)
        // x increases along the lines; higher values are drawn higher (smaller y).
        XCTAssertTrue(zip(hp, hp.dropFirst()).allSatisfy { $0.0 < $1.0 })
        XCTAssertTrue(zip(fp, fp.dropFirst()).allSatisfy { $0.0 < $1.0 })
        for i in 0..<forecast.count {
            XCTAssertLessThan(bp[1 + i].1, fp[1 + i].1)  // upper above the forecast
            XCTAssertGreaterThan(bp[bp.count - 1 - i].1, fp[1 + i].1)  // lower below it
            XCTAssertEqual(bp[bp.count - 1 - i].0, fp[1 + i].0)
        }
        // The dotted origin line stands at the last history point.
        let origin = try XCTUnwrap(elements(all, class: "origin").first)
        XCTAssertEqual(Double(origin.attributes["x1"]!), hp.last!.0)
        // The actual line is dashed, and the legend lists the four series.
        XCTAssertNotNil(a.attributes["stroke-dasharray"])
        let legendTexts = elements(all, class: "legend-label").map(\.text)
        XCTAssertEqual(legendTexts, ["history", "forecast", "10–90%", "actual"])
        // Everything lies inside the frame.
        let frame = try XCTUnwrap(elements(all, class: "frame").first)
        let fx = Double(frame.attributes["x"]!)!, fy = Double(frame.attributes["y"]!)!
        let fw = Double(frame.attributes["width"]!)!, fh = Double(frame.attributes["height"]!)!
        for (x, y) in hp + fp + ap + bp {
            XCTAssertTrue(x >= fx - 1e-9 && x <= fx + fw + 1e-9 && y >= fy - 1e-9 && y <= fy + fh + 1e-9, "(\(x), \(y))")
        }
    }

    func testBandAndActualOnlyWhenGiven() throws {
        let plain = try parse(try ForecastPlot(title: "m", channel: "c", history: history, forecast: forecast).svg())
        XCTAssertTrue(elements(plain, class: "band").isEmpty)
        XCTAssertFalse(plain.contains { $0.name == "polygon" })
        XCTAssertTrue(elements(plain, class: "actual").isEmpty)
        XCTAssertEqual(plain.filter { $0.name == "polyline" }.count, 2)
        XCTAssertEqual(elements(plain, class: "legend-label").map(\.text), ["history", "forecast"])

        let banded = try parse(try ForecastPlot(title: "m", channel: "c", history: history, forecast: forecast,
                                                band: .init(lower: forecast, upper: forecast, label: "80%")).svg())
        XCTAssertEqual(elements(banded, class: "band").count, 1)
        XCTAssertEqual(elements(banded, class: "legend-label").map(\.text), ["history", "forecast", "80%"])
    }

    func testTickLabelsArePresentAndNice() throws {
        // History 0..<48 and 12 forecast steps: x spans 0...59, y spans 7...13.
        let all = try parse(try ForecastPlot(title: "m", channel: "c", history: history, forecast: forecast).svg())
        let xs = elements(all, class: "tick-x").map(\.text)
        let ys = elements(all, class: "tick-y").map(\.text)
        XCTAssertEqual(xs, ["0", "10", "20", "30", "40", "50", "60"])
        XCTAssertEqual(ys, ["7", "8", "9", "10", "11", "12", "13"])
        XCTAssertTrue((4...8).contains(xs.count))
        XCTAssertTrue((4...8).contains(ys.count))
    }

    func testNiceAxes() {
        func labels(_ lo: Double, _ hi: Double, whole: Bool = false) -> [String] {
            PlotAxis.nice(min: lo, max: hi, wholeSteps: whole).labels
        }
        XCTAssertEqual(labels(0, 1), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(labels(0.13, 0.87), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(labels(-3.2, 4.1), ["-4", "-2", "0", "2", "4", "6"])
        XCTAssertEqual(labels(0, 0.0015), ["0.0000", "0.0005", "0.0010", "0.0015"])
        XCTAssertEqual(labels(1e-5, 4e-5), ["1.0e-5", "1.5e-5", "2.0e-5", "2.5e-5", "3.0e-5", "3.5e-5", "4.0e-5"].map {
            $0.replacingOccurrences(of: ".0e", with: "e")
        })
        XCTAssertEqual(labels(0, 3e8), ["0", "5e7", "1e8", "1.5e8", "2e8", "2.5e8", "3e8"])
        XCTAssertEqual(labels(1_234_000, 1_236_500), ["1234000", "1234500", "1235000", "1235500", "1236000", "1236500"])
        // A constant series is widened to ±10%.
        XCTAssertEqual(labels(5, 5), ["4.4", "4.6", "4.8", "5.0", "5.2", "5.4", "5.6"])
        XCTAssertEqual(labels(0, 0), ["-1.0", "-0.5", "0.0", "0.5", "1.0"])
        // Whole steps on the x axis: never fractional, even for a two-step span.
        XCTAssertEqual(labels(0, 1, whole: true), ["0", "1"])
        XCTAssertEqual(labels(0, 5, whole: true), ["0", "1", "2", "3", "4", "5"])
        XCTAssertEqual(labels(0, 1023, whole: true), ["0", "200", "400", "600", "800", "1000", "1200"])
        // 4–8 ticks, covering the data, distinct labels, for Float data of any magnitude and span.
        var seed: UInt64 = 7
        func next() -> UInt64 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return seed >> 11
        }
        for _ in 0..<5000 {
            let magnitude = pow(10, Double(next() % 80) / 2 - 20)
            let a = Float((Double(next()) / Double(1 << 53) - 0.5) * magnitude)
            let relative = pow(10, Double(next() % 20) / 2 - 8)
            let b = Float(Double(a) + Double(next()) / Double(1 << 53) * max(Double(a.magnitude), magnitude) * relative)
            let (lo, hi) = (Double(min(a, b)), Double(max(a, b)))
            let axis = PlotAxis.nice(min: lo, max: hi, wholeSteps: false)
            let tolerance = 1e-6 * (axis.hi - axis.lo)
            XCTAssertTrue((4...8).contains(axis.ticks.count), "\(lo)...\(hi): \(axis.ticks)")
            XCTAssertLessThanOrEqual(axis.lo, lo + tolerance, "\(lo)...\(hi): \(axis.ticks)")
            XCTAssertGreaterThanOrEqual(axis.hi, hi - tolerance, "\(lo)...\(hi): \(axis.ticks)")
            XCTAssertEqual(Set(axis.labels).count, axis.labels.count, "\(lo)...\(hi): \(axis.labels)")
        }
    }

    func testNumberFormatting() {
        XCTAssertEqual(PlotNumber.fixed(0.30000000000000004, decimals: 1), "0.3")
        XCTAssertEqual(PlotNumber.fixed(-0.04, decimals: 1), "0.0")
        XCTAssertEqual(PlotNumber.fixed(-2.5, decimals: 2), "-2.50")
        XCTAssertEqual(PlotNumber.fixed(1234567.0, decimals: 0), "1234567")
        XCTAssertEqual(PlotNumber.fixed(0.0005, decimals: 4), "0.0005")
        XCTAssertEqual(PlotNumber.exponential(1.5e-5, mantissaDecimals: 1), "1.5e-5")
        XCTAssertEqual(PlotNumber.exponential(2e8, mantissaDecimals: 3), "2e8")
        XCTAssertEqual(PlotNumber.exponential(-3.25e12, mantissaDecimals: 2), "-3.25e12")
        XCTAssertEqual(PlotNumber.exponential(9.99e9, mantissaDecimals: 1), "1e10")
        XCTAssertEqual(PlotNumber.exponential(3.4028234663852886e38, mantissaDecimals: 2), "3.4e38")
        XCTAssertEqual(PlotNumber.exponential(1.401298464324817e-45, mantissaDecimals: 1), "1.4e-45")
        XCTAssertEqual(PlotNumber.decimalExponent(1000), 3)
        XCTAssertEqual(PlotNumber.decimalExponent(999.9999), 2)
        XCTAssertEqual(PlotNumber.decimalExponent(0.001), -3)
        XCTAssertEqual(PlotNumber.decimalExponent(0.00099), -4)
        XCTAssertEqual(ForecastPlot.coord(12.5), "12.5")
        XCTAssertEqual(ForecastPlot.coord(100), "100")
        XCTAssertEqual(ForecastPlot.coord(-0.001), "0")
        XCTAssertEqual(ForecastPlot.coord(33.3333), "33.33")
    }

    func testExtremeValuesStillDrawFiniteCoordinates() throws {
        let cases: [([Float], [Float])] = [
            ([Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude], [0]),
            ([Float.leastNonzeroMagnitude], [Float.leastNonzeroMagnitude]),
            ([1e-4, 2e-4, 1.5e-4], [1.7e-4]),
            ([1e9, 1e9 + 64], [1e9 + 128]),
            ([7], [7]),
        ]
        for (h, f) in cases {
            let all = try parse(try ForecastPlot(title: "m", channel: "c", history: h, forecast: f).svg())
            for e in all where e.name == "polyline" {
                XCTAssertTrue(points(e).allSatisfy { $0.0.isFinite && $0.1.isFinite }, "\(h) \(f)")
            }
            let ys = elements(all, class: "tick-y").map(\.text)
            XCTAssertTrue(ys.count >= 4 && ys.count <= 8, "\(h): \(ys)")
            XCTAssertFalse(ys.contains { $0.contains("nan") || $0.contains("inf") })
        }
    }

    func testMultiStacksOnePanelPerChannel() throws {
        let channels = ["temperature", "humidity", "pressure"]
        let panels = channels.enumerated().map { i, name in
            ForecastPlot(title: "time-llm <gpt2>", channel: name, history: history.map { $0 * Float(i + 1) },
                         forecast: forecast.map { $0 * Float(i + 1) },
                         band: i == 1 ? .init(lower: forecast.map { $0 * 2 - 1 }, upper: forecast.map { $0 * 2 + 1 }) : nil,
                         xLabel: "step")
        }
        let svg = try ForecastPlot.multi(panels, width: 700, panelHeight: 250)
        let all = try parse(svg)
        XCTAssertEqual(all[0].attributes["viewBox"], "0 0 700 \(ForecastPlot.Layout.header + 3 * 250)")
        XCTAssertEqual(elements(all, class: "title").map(\.text), ["time-llm <gpt2>"])
        XCTAssertEqual(elements(all, class: "channel").map(\.text), channels)
        XCTAssertEqual(elements(all, class: "panel").count, 3)
        XCTAssertEqual(elements(all, class: "history").count, 3)
        XCTAssertEqual(elements(all, class: "forecast").count, 3)
        XCTAssertEqual(elements(all, class: "band").count, 1)
        // Panels do not overlap: each frame lies below the previous one.
        let frames = elements(all, class: "frame")
        let tops = frames.map { Double($0.attributes["y"]!)! }
        let bottoms = frames.map { Double($0.attributes["y"]!)! + Double($0.attributes["height"]!)! }
        XCTAssertEqual(frames.count, 3)
        for i in 1..<3 { XCTAssertGreaterThan(tops[i], bottoms[i - 1]) }
        XCTAssertEqual(Set(frames.map { $0.attributes["x"]! }).count, 1)  // aligned x axes
        XCTAssertEqual(elements(all, class: "tick-y").count >= 12, true)
        // The legend is drawn once and lists the band because one panel has it.
        XCTAssertEqual(elements(all, class: "legend-label").filter { $0.text == "10–90%" }.count, 1)
        // A title argument overrides the panels' one.
        let titled = try parse(try ForecastPlot.multi(panels, title: "other"))
        XCTAssertEqual(elements(titled, class: "title").map(\.text), ["other"])
    }

    func testBadInputThrows() {
        func check(_ plot: ForecastPlot, _ name: String, width: Int = 800, height: Int = 400,
                   file: StaticString = #filePath, line: UInt = #line) {
            assertThrows(RuntimeError.self, try plot.svg(width: width, height: height), file: file, line: line) {
                if case let .invalidArgument(n, _) = $0 { n == name } else { false }
            }
        }
        let good = ForecastPlot(title: "m", channel: "c", history: [1, 2, 3], forecast: [4, 5])
        var p = good
        p.history = []
        check(p, "history")
        p = good
        p.forecast = []
        check(p, "forecast")
        p = good
        p.history[1] = .nan
        check(p, "history")
        p = good
        p.forecast[0] = .infinity
        check(p, "forecast")
        p = good
        p.band = .init(lower: [1, 2, 3], upper: [4, 5])
        check(p, "band.lower")
        p.band = .init(lower: [1, 2], upper: [4])
        check(p, "band.upper")
        p.band = .init(lower: [1, .nan], upper: [4, 5])
        check(p, "band.lower")
        p = good
        p.actual = [1]
        check(p, "actual")
        p.actual = [1, -.infinity]
        check(p, "actual")
        check(good, "width", width: 0)
        check(good, "width", width: -5)
        check(good, "height", height: 10)
        check(good, "height", height: Int.max)
        XCTAssertNoThrow(try good.svg())

        assertThrows(RuntimeError.self, try ForecastPlot.multi([])) { $0 == .invalidArgument(name: "panels", reason: "is empty") }
        var bad = good
        bad.history[0] = .nan
        assertThrows(RuntimeError.self, try ForecastPlot.multi([good, bad])) {
            if case let .invalidArgument(n, _) = $0 { n == "panels[1].history" } else { false }
        }
        assertThrows(RuntimeError.self, try ForecastPlot.multi([good], panelHeight: 20)) {
            if case let .invalidArgument(n, _) = $0 { n == "panelHeight" } else { false }
        }
        assertThrows(RuntimeError.self, try ForecastPlot.multi(Array(repeating: good, count: 1000), panelHeight: 200)) {
            if case let .invalidArgument(n, _) = $0 { n == "panels" } else { false }
        }
    }

    /// Writes an example to $TSLM_PLOT_EXAMPLE (when set) for a look in a browser.
    func testWriteExampleWhenAsked() throws {
        guard let path = ProcessInfo.processInfo.environment["TSLM_PLOT_EXAMPLE"] else { return }
        let actual = forecast.map { $0 + 0.4 }
        let plot = ForecastPlot(title: "lstm-airline (q8_0)", channel: "passengers", history: history, forecast: forecast,
                                band: .init(lower: forecast.map { $0 - 1.2 }, upper: forecast.map { $0 + 1.2 }),
                                actual: actual, xLabel: "month", yLabel: "thousands")
        try plot.svg().write(toFile: path, atomically: true, encoding: .utf8)
        let multi = try ForecastPlot.multi([plot, ForecastPlot(title: "x", channel: "tiny", history: [1e-4, 3e-4], forecast: [2e-4],
                                                               yLabel: "volts")])
        try multi.write(toFile: path + ".multi.svg", atomically: true, encoding: .utf8)
    }
}
