/// An SVG chart of a forecast (`tslm forecast --plot`): a standalone SVG 1.1 document that a
/// browser opens as it is.
///
/// One panel shows one channel: the history as a dark line at x = 0..<n, the forecast as a blue
/// line at x = n..<n+h that starts from the last history point, the optional band (e.g. the
/// 10–90% quantiles) as a translucent area, the optional actual future values as a dashed line
/// (evaluation plots), a dotted vertical line at the forecast origin x = n − 1 (the last observed
/// step, where the forecast leaves the history), axes with "nice" ticks (steps of 1, 2 or 5 × 10^k,
/// 4 to 8 per axis where the span allows; x ticks are whole steps), grid lines, axis labels, the
/// title (the model name) and a legend. `multi` stacks one panel per channel.
///
/// Elements carry classes for tools and tests: `title`, `legend`, `channel`, `history`,
/// `forecast`, `band`, `actual`, `origin`, `frame`, `tick-x`, `tick-y`, `xlabel`, `ylabel`,
/// `legend-label`, `panel`.
public struct ForecastPlot: Sendable, Equatable {
    /// A forecast interval: per forecast step its lower and upper value.
    public struct Band: Sendable, Equatable {
        public var lower: [Float]
        public var upper: [Float]
        /// The legend text.
        public var label: String

        public init(lower: [Float], upper: [Float], label: String = "10–90%") {
            self.lower = lower
            self.upper = upper
            self.label = label
        }
    }

    /// The chart's title, e.g. the model name.
    public var title: String
    /// The channel's name, shown above its panel.
    public var channel: String
    /// The observed series, x = 0..<n; at least one value.
    public var history: [Float]
    /// The point forecast, x = n..<n+h; at least one value.
    public var forecast: [Float]
    /// An interval around the forecast, as many values as the forecast (a lower bound above the
    /// upper one is drawn as given).
    public var band: Band?
    /// The values that really followed the history, as many as the forecast (evaluation plots).
    public var actual: [Float]?
    public var xLabel: String?
    public var yLabel: String?

    public init(title: String, channel: String, history: [Float], forecast: [Float], band: Band? = nil,
                actual: [Float]? = nil, xLabel: String? = nil, yLabel: String? = nil) {
        self.title = title
        self.channel = channel
        self.history = history
        self.forecast = forecast
        self.band = band
        self.actual = actual
        self.xLabel = xLabel
        self.yLabel = yLabel
    }

    /// The sizes `svg` and `multi` accept, in pixels.
    public static let sizeLimit = 100_000

    /// This panel alone as an SVG document of `width` × `height` pixels (width ≥ 240,
    /// height ≥ 200). Throws `RuntimeError.invalidArgument` for an empty history or forecast,
    /// a value that is not finite, a band or actual series whose length differs from the
    /// forecast's, or a size out of range.
    public func svg(width: Int = 800, height: Int = 400) throws -> String {
        try Self.checkSize(width, name: "width", minimum: 240)
        try Self.checkSize(height, name: "height", minimum: 200)
        try validate(prefix: "")
        return Self.render([self], title: title, width: width, panelHeights: [height - Layout.header])
    }

    /// One panel per channel stacked vertically in one SVG document of `width` ×
    /// (`Layout.header` + panels.count × `panelHeight`) pixels (panelHeight ≥ 150), under one
    /// title (`title`, or the first panel's) and one legend. Each panel has its own axes; errors
    /// name the panel, e.g. `panels[2].history`.
    public static func multi(_ panels: [ForecastPlot], title: String? = nil, width: Int = 800,
                             panelHeight: Int = 280) throws -> String {
        guard let first = panels.first else {
            throw RuntimeError.invalidArgument(name: "panels", reason: "is empty")
        }
        try checkSize(width, name: "width", minimum: 240)
        try checkSize(panelHeight, name: "panelHeight", minimum: 150)
        guard panels.count <= sizeLimit / panelHeight else {
            throw RuntimeError.invalidArgument(
                name: "panels", reason: "\(panels.count) panels of \(panelHeight) pixels exceed \(sizeLimit) pixels")
        }
        for (i, p) in panels.enumerated() { try p.validate(prefix: "panels[\(i)].") }
        return render(panels, title: title ?? first.title, width: width,
                      panelHeights: Array(repeating: panelHeight, count: panels.count))
    }

    // MARK: - Checks

    static func checkSize(_ value: Int, name: String, minimum: Int) throws {
        guard value >= minimum, value <= sizeLimit else {
            throw RuntimeError.invalidArgument(name: name, reason: "\(value) must be in \(minimum)...\(sizeLimit)")
        }
    }

    func validate(prefix: String) throws {
        func finite(_ values: [Float], _ name: String) throws {
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                throw RuntimeError.invalidArgument(
                    name: prefix + name, reason: "value \(values[i]) at index \(i) is not finite")
            }
        }
        func sameLength(_ values: [Float], _ name: String) throws {
            guard values.count == forecast.count else {
                throw RuntimeError.invalidArgument(
                    name: prefix + name, reason: "has \(values.count) values, the forecast has \(forecast.count)")
            }
        }
        guard !history.isEmpty else { throw RuntimeError.invalidArgument(name: prefix + "history", reason: "is empty") }
        guard !forecast.isEmpty else { throw RuntimeError.invalidArgument(name: prefix + "forecast", reason: "is empty") }
        try finite(history, "history")
        try finite(forecast, "forecast")
        if let band {
            try sameLength(band.lower, "band.lower")
            try sameLength(band.upper, "band.upper")
            try finite(band.lower, "band.lower")
            try finite(band.upper, "band.upper")
        }
        if let actual {
            try sameLength(actual, "actual")
            try finite(actual, "actual")
        }
    }

    // MARK: - Layout and drawing

    enum Layout {
        /// Title and legend above the panels.
        static let header = 52
        /// The channel's name above a panel's plot area.
        static let panelHeading = 24
        static let right = 24
        static let tickLength = 5.0
        static let charWidth = 7
    }

    enum Style {
        static let font = "DejaVu Sans, Helvetica, Arial, sans-serif"
        static let history = "#222222"
        static let forecast = "#1f6fc5"
        static let band = "#1f6fc5"
        static let bandOpacity = "0.22"
        static let actual = "#444444"
        static let actualDash = "6 4"
        static let origin = "#888888"
        static let grid = "#e6e6e6"
        static let frame = "#555555"
        static let text = "#222222"
    }

    /// One panel's axes, computed before drawing (the left margin depends on the tick labels).
    struct PanelAxes {
        var x: PlotAxis
        var y: PlotAxis
    }

    static func axes(of p: ForecastPlot) -> PanelAxes {
        let n = p.history.count, h = p.forecast.count
        var lo = Double.infinity, hi = -Double.infinity
        func include(_ values: [Float]) {
            for v in values {
                lo = Swift.min(lo, Double(v))
                hi = Swift.max(hi, Double(v))
            }
        }
        include(p.history)
        include(p.forecast)
        if let band = p.band {
            include(band.lower)
            include(band.upper)
        }
        if let actual = p.actual { include(actual) }
        return PanelAxes(x: PlotAxis.nice(min: 0, max: Double(n + h - 1), wholeSteps: true),
                         y: PlotAxis.nice(min: lo, max: hi, wholeSteps: false))
    }

    static func render(_ panels: [ForecastPlot], title: String, width: Int, panelHeights: [Int]) -> String {
        let allAxes = panels.map(axes(of:))
        // One left margin for all panels, so that their x axes line up.
        let widestTick = allAxes.map { $0.y.labels.map(\.count).max() ?? 1 }.max() ?? 1
        let hasYLabel = panels.contains { !($0.yLabel ?? "").isEmpty }
        let left = Swift.max(56, 18 + (hasYLabel ? 20 : 0) + Layout.charWidth * widestTick)
        let height = Layout.header + panelHeights.reduce(0, +)

        var s = ""
        s += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(width)\" height=\"\(height)\""
        s += " viewBox=\"0 0 \(width) \(height)\" font-family=\"\(Style.font)\">\n"
        s += "<title>\(xmlEscape(title))</title>\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>\n"
        s += "<text class=\"title\" x=\"\(left)\" y=\"22\" font-size=\"16\" font-weight=\"bold\" fill=\"\(Style.text)\">"
        s += "\(xmlEscape(title))</text>\n"
        legend(into: &s, panels: panels, x: left)
        var top = Layout.header
        for (i, p) in panels.enumerated() {
            p.draw(into: &s, axes: allAxes[i], left: left, right: width - Layout.right,
                   top: top, height: panelHeights[i])
            top += panelHeights[i]
        }
        s += "</svg>\n"
        return s
    }

    static func legend(into s: inout String, panels: [ForecastPlot], x: Int) {
        let y = 42.0, mid = 38.0
        var x = Double(x)
        s += "<g class=\"legend\" font-size=\"12\" fill=\"\(Style.text)\">\n"
        func item(_ label: String, swatch: String) {
            s += swatch
            s += "<text class=\"legend-label\" x=\"\(coord(x + 28))\" y=\"\(coord(y))\">\(xmlEscape(label))</text>\n"
            x += Double(28 + Layout.charWidth * label.count + 18)
        }
        func line(_ color: String, width: Double, dash: String?) -> String {
            "<line x1=\"\(coord(x))\" y1=\"\(coord(mid))\" x2=\"\(coord(x + 22))\" y2=\"\(coord(mid))\" stroke=\"\(color)\""
                + " stroke-width=\"\(coord(width))\"" + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + "/>\n"
        }
        item("history", swatch: line(Style.history, width: 1.5, dash: nil))
        item("forecast", swatch: line(Style.forecast, width: 2, dash: nil))
        if let band = panels.first(where: { $0.band != nil })?.band {
            item(band.label, swatch: "<rect x=\"\(coord(x))\" y=\"\(coord(mid - 5))\" width=\"22\" height=\"10\""
                + " fill=\"\(Style.band)\" fill-opacity=\"\(Style.bandOpacity)\"/>\n")
        }
        if panels.contains(where: { $0.actual != nil }) {
            item("actual", swatch: line(Style.actual, width: 1.5, dash: Style.actualDash))
        }
        s += "</g>\n"
    }

    /// Draws this panel in the band of rows top..<top+height, plot area from `left` to `right`.
    func draw(into s: inout String, axes: PanelAxes, left: Int, right: Int, top: Int, height: Int) {
        let coord = Self.coord, xmlEscape = Self.xmlEscape
        let hasXLabel = !(xLabel ?? "").isEmpty
        let plotLeft = Double(left), plotRight = Double(right)
        let plotTop = Double(top + Layout.panelHeading)
        let plotBottom = Double(top + height - (hasXLabel ? 46 : 28))
        let xa = axes.x, ya = axes.y
        func px(_ x: Double) -> Double { plotLeft + (x - xa.lo) / (xa.hi - xa.lo) * (plotRight - plotLeft) }
        func py(_ y: Double) -> Double { plotBottom - (y - ya.lo) / (ya.hi - ya.lo) * (plotBottom - plotTop) }
        func points(_ xs: [Int], _ ys: [Float]) -> String {
            var out = ""
            for (x, y) in zip(xs, ys) {
                if !out.isEmpty { out += " " }
                out += coord(px(Double(x))) + "," + coord(py(Double(y)))
            }
            return out
        }
        let n = history.count, h = forecast.count
        let last = history[n - 1]
        let future = Array((n - 1)..<(n + h))

        s += "<g class=\"panel\">\n"
        s += "<text class=\"channel\" x=\"\(left)\" y=\"\(top + 16)\" font-size=\"13\" font-weight=\"bold\""
        s += " fill=\"\(Style.text)\">\(xmlEscape(channel))</text>\n"
        s += "<rect x=\"\(left)\" y=\"\(coord(plotTop))\" width=\"\(right - left)\" height=\"\(coord(plotBottom - plotTop))\" fill=\"#ffffff\"/>\n"

        // Grid.
        s += "<g class=\"grid\" stroke=\"\(Style.grid)\" stroke-width=\"1\">\n"
        for t in xa.ticks {
            let x = coord(px(t))
            s += "<line x1=\"\(x)\" y1=\"\(coord(plotTop))\" x2=\"\(x)\" y2=\"\(coord(plotBottom))\"/>\n"
        }
        for t in ya.ticks {
            let y = coord(py(t))
            s += "<line x1=\"\(coord(plotLeft))\" y1=\"\(y)\" x2=\"\(coord(plotRight))\" y2=\"\(y)\"/>\n"
        }
        s += "</g>\n"

        // Data: band, origin, actual, history, forecast (the forecast on top).
        if let band {
            let upper = points(Array(n..<(n + h)), band.upper)
            let lower = points(Array(n..<(n + h)).reversed(), band.lower.reversed())
            s += "<polygon class=\"band\" points=\"\(points([n - 1], [last])) \(upper) \(lower)\""
            s += " fill=\"\(Style.band)\" fill-opacity=\"\(Style.bandOpacity)\" stroke=\"none\"/>\n"
        }
        let ox = coord(px(Double(n - 1)))
        s += "<line class=\"origin\" x1=\"\(ox)\" y1=\"\(coord(plotTop))\" x2=\"\(ox)\" y2=\"\(coord(plotBottom))\""
        s += " stroke=\"\(Style.origin)\" stroke-width=\"1\" stroke-dasharray=\"2 3\"/>\n"
        if let actual {
            s += "<polyline class=\"actual\" points=\"\(points(future, [last] + actual))\" fill=\"none\""
            s += " stroke=\"\(Style.actual)\" stroke-width=\"1.5\" stroke-dasharray=\"\(Style.actualDash)\"/>\n"
        }
        s += "<polyline class=\"history\" points=\"\(points(Array(0..<n), history))\" fill=\"none\""
        s += " stroke=\"\(Style.history)\" stroke-width=\"1.5\" stroke-linejoin=\"round\"/>\n"
        s += "<polyline class=\"forecast\" points=\"\(points(future, [last] + forecast))\" fill=\"none\""
        s += " stroke=\"\(Style.forecast)\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n"

        // Frame, ticks, labels.
        s += "<rect class=\"frame\" x=\"\(left)\" y=\"\(coord(plotTop))\" width=\"\(right - left)\""
        s += " height=\"\(coord(plotBottom - plotTop))\" fill=\"none\" stroke=\"\(Style.frame)\" stroke-width=\"1\"/>\n"
        s += "<g font-size=\"11\" fill=\"\(Style.text)\">\n"
        for (t, label) in zip(xa.ticks, xa.labels) {
            let x = coord(px(t))
            s += "<line x1=\"\(x)\" y1=\"\(coord(plotBottom))\" x2=\"\(x)\" y2=\"\(coord(plotBottom + Layout.tickLength))\""
            s += " stroke=\"\(Style.frame)\"/>\n"
            s += "<text class=\"tick-x\" x=\"\(x)\" y=\"\(coord(plotBottom + 18))\" text-anchor=\"middle\">\(xmlEscape(label))</text>\n"
        }
        for (t, label) in zip(ya.ticks, ya.labels) {
            let y = coord(py(t))
            s += "<line x1=\"\(coord(plotLeft - Layout.tickLength))\" y1=\"\(y)\" x2=\"\(coord(plotLeft))\" y2=\"\(y)\""
            s += " stroke=\"\(Style.frame)\"/>\n"
            s += "<text class=\"tick-y\" x=\"\(coord(plotLeft - 8))\" y=\"\(coord(py(t) + 4))\" text-anchor=\"end\">"
            s += "\(xmlEscape(label))</text>\n"
        }
        s += "</g>\n"
        if let xLabel, !xLabel.isEmpty {
            s += "<text class=\"xlabel\" x=\"\(coord((plotLeft + plotRight) / 2))\" y=\"\(coord(plotBottom + 38))\""
            s += " font-size=\"12\" text-anchor=\"middle\" fill=\"\(Style.text)\">\(xmlEscape(xLabel))</text>\n"
        }
        if let yLabel, !yLabel.isEmpty {
            let cy = coord((plotTop + plotBottom) / 2)
            s += "<text class=\"ylabel\" x=\"16\" y=\"\(cy)\" transform=\"rotate(-90 16 \(cy))\" font-size=\"12\""
            s += " text-anchor=\"middle\" fill=\"\(Style.text)\">\(xmlEscape(yLabel))</text>\n"
        }
        s += "</g>\n"
    }

    // MARK: - Text

    /// `text` for XML character data and attribute values: &, <, >, " and ' as entities;
    /// characters XML 1.0 forbids (C0 controls other than tab, line feed and carriage return;
    /// U+FFFE, U+FFFF) as U+FFFD.
    static func xmlEscape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for u in text.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                if u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }

    /// A pixel coordinate: at most 2 decimals, trailing zeros dropped.
    static func coord(_ v: Double) -> String { PlotNumber.trimmed(PlotNumber.fixed(v, decimals: 2)) }
}

/// An axis with "nice" ticks: steps of 1, 2 or 5 × 10^k, the range widened to whole steps.
struct PlotAxis: Equatable {
    /// The drawn range: the first and last tick.
    var lo: Double
    var hi: Double
    var ticks: [Double]
    var labels: [String]
    /// The step is mult × 10^exponent, mult in {1, 2, 5}.
    var mult: Int
    var exponent: Int

    /// The axis for data in min...max (finite, min ≤ max): the smallest step that needs at most 8
    /// ticks, which then needs at least 4 (fewer only when `wholeSteps` keeps the step ≥ 1 on a
    /// span under 3). A single value v is widened to v ± max(|v|/10, …) first.
    static func nice(min: Double, max: Double, wholeSteps: Bool) -> PlotAxis {
        var lo = min, hi = max
        if !(hi > lo) {
            let pad = lo == 0 ? 1 : lo.magnitude / 10
            lo -= pad
            hi += pad
        }
        let span = hi - lo
        var k = PlotNumber.decimalExponent(span / 8)
        if wholeSteps { k = Swift.max(k, 0) }
        for _ in 0..<64 {
            for mult in [1, 2, 5] {
                let step = PlotNumber.scaled(Double(mult), k)
                let first = (lo / step + 1e-9).rounded(.down)
                let last = (hi / step - 1e-9).rounded(.up)
                guard first.magnitude < 1e15, last.magnitude < 1e15 else { continue }
                let count = Int(last) - Int(first) + 1
                if count >= 2, count <= 8 {
                    let ticks = (Int(first)...Int(last)).map { PlotNumber.scaled(Double($0 * mult), k) }
                    return PlotAxis(lo: ticks[0], hi: ticks[ticks.count - 1], ticks: ticks,
                                    labels: PlotNumber.tickLabels(ticks, stepExponent: k),
                                    mult: mult, exponent: k)
                }
            }
            k += 1
        }
        // Not reached for finite input; two ticks at the ends keep the drawing defined.
        return PlotAxis(lo: lo, hi: hi, ticks: [lo, hi],
                        labels: [lo, hi].map { PlotNumber.label($0, stepExponent: PlotNumber.decimalExponent(span)) },
                        mult: 1, exponent: 0)
    }
}

/// Number formatting without Foundation.
enum PlotNumber {
    static let exactPowers: [Double] = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                                        1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

    /// 10^k for k ≥ 0 (exact up to 10^22).
    static func power(_ k: Int) -> Double {
        if k <= 22 { return exactPowers[Swift.max(k, 0)] }
        var p = exactPowers[22], rest = k - 22
        while rest > 0, p.isFinite {
            let e = Swift.min(rest, 22)
            p *= exactPowers[e]
            rest -= e
        }
        return p
    }

    /// v × 10^k, dividing for negative k (so that e.g. 3 × 10^-1 is the double nearest 0.3).
    static func scaled(_ v: Double, _ k: Int) -> Double {
        k >= 0 ? v * power(k) : v / power(-k)
    }

    /// ⌊log10 |v|⌋ for finite nonzero v; 0 for 0 and non-finite v.
    static func decimalExponent(_ v: Double) -> Int {
        let m = v.magnitude
        guard m > 0, m.isFinite else { return 0 }
        var e = Int((Double(Int(m.exponent)) * 0.301_029_995_663_981_2).rounded(.down))
        for _ in 0..<8 where scaled(1, e) > m { e -= 1 }
        for _ in 0..<8 where scaled(1, e + 1) <= m { e += 1 }
        return e
    }

    /// v with exactly `decimals` decimals (0...15); nil when |v| × 10^decimals reaches 9 × 10^18.
    static func fixedOrNil(_ v: Double, decimals: Int) -> String? {
        let d = Swift.min(Swift.max(decimals, 0), 15)
        let r = (v.magnitude * power(d)).rounded()
        guard r.isFinite, r < 9e18 else { return nil }
        let n = UInt64(r)
        let unit = UInt64(power(d))
        var digits = String(n / unit)
        if d > 0 {
            let frac = String(n % unit)
            digits += "." + String(repeating: "0", count: d - frac.count) + frac
        }
        return (v < 0 && n != 0 ? "-" : "") + digits
    }

    /// `fixedOrNil`, falling back to the exponent form for numbers too large for it.
    static func fixed(_ v: Double, decimals: Int) -> String {
        fixedOrNil(v, decimals: decimals) ?? exponential(v, mantissaDecimals: 6)
    }

    /// "1.5e-5", "2e8", "-3.25e12": the mantissa in [1, 10) with at most `mantissaDecimals`
    /// decimals, trailing zeros dropped; "0" for 0.
    static func exponential(_ v: Double, mantissaDecimals: Int) -> String {
        guard v.isFinite else { return v.isNaN ? "NaN" : (v < 0 ? "-inf" : "inf") }
        guard v != 0 else { return "0" }
        let d = Swift.min(Swift.max(mantissaDecimals, 0), 15)
        var e = decimalExponent(v)
        var mantissa = (scaled(v.magnitude, -e) * power(d)).rounded()
        if mantissa >= power(d + 1) {  // 9.99… rounded up to 10
            e += 1
            mantissa = (scaled(v.magnitude, -e) * power(d)).rounded()
        }
        let body = trimmed(fixedOrNil(mantissa / power(d), decimals: d) ?? "1")
        return (v < 0 ? "-" : "") + body + "e" + String(e)
    }

    /// Drops trailing zeros after a decimal point, and the point when nothing follows it.
    static func trimmed(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = Substring(s)
        while t.last == "0" { t.removeLast() }
        if t.last == "." { t.removeLast() }
        return t == "-0" ? "0" : String(t)
    }

    /// A tick label for a step of mult × 10^k: fixed with max(0, −k) decimals, or the
    /// exponent form with as many mantissa decimals as the step needs.
    static func label(_ v: Double, stepExponent k: Int, exponentForm: Bool = false) -> String {
        if exponentForm {
            return exponential(v, mantissaDecimals: decimalExponent(v) - k)
        }
        return fixed(v, decimals: -k)
    }

    /// The labels of one axis: all fixed when the largest |tick| is in [10^-3, 10^7) (or all
    /// ticks are 0), all in the exponent form otherwise, so that one axis reads in one style.
    static func tickLabels(_ ticks: [Double], stepExponent k: Int) -> [String] {
        let largest = ticks.map(\.magnitude).max() ?? 0
        let exponentForm = largest != 0 && !(largest >= 1e-3 && largest < 1e7)
        return ticks.map { label($0, stepExponent: k, exponentForm: exponentForm) }
    }
}
