"""Checks that `tslm forecast` gives a demo model's PyTorch forecasts on the demo's test windows.

    python3 tools/check_demo_forecasts.py TSLM MODEL.tslm demo/forecast/airline.csv WINDOWS.json KEY [TOL]

WINDOWS.json is a demo's test_windows.json; KEY the path of the PyTorch forecast inside each
window ("forecasts.lstm" or "forecast"). For each window, the history before its
`forecast_start` is written to a CSV and forecast by tslm; exits 1 when the largest relative
difference exceeds TOL (default 1e-5). Used by tools/cli_test.sh.
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    tslm, model, series_csv, windows_json, key = sys.argv[1:6]
    tol = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-5
    lines = open(series_csv).read().split()
    header, series = lines[0], [float(v) for v in lines[1:]]
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for w in json.load(open(windows_json))["windows"]:
            path = os.path.join(tmp, f"history_{w['forecast_start']}.csv")
            with open(path, "w") as f:
                f.write(header + "\n" + "\n".join(repr(v) for v in series[:w["forecast_start"]]) + "\n")
            out = json.loads(subprocess.run([tslm, "forecast", "-m", model, "--series", path, "--json"],
                                            check=True, capture_output=True, text=True).stdout)
            want = w
            for part in key.split("."):
                want = want[part]
            worst = max(worst, max(abs(a - b) / abs(b) for a, b in zip(out["point"][0], want)))
    print(f"     max relative difference {worst:.2e}")
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
