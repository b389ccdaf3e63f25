#!/usr/bin/env python
"""Screenshots of a run's report.html and the runs index at 1366 px and 390 px, and a check of both pages.

Why: the pages are read in a browser, on a laptop and on a phone; whether a table
overflows or an image fails to render can only be seen there. This opens each page in
headless Chromium (Debian packages ``chromium`` and ``chromium-driver``), once per
width (390 px as a phone: device-metrics emulation), and:

* measures, in the browser, the document's ``scrollWidth`` against the viewport's width
  (horizontal overflow) and whether every ``<img>`` decoded (a script run in the page
  through chromedriver, see :class:`Browser`);
* takes a full-page screenshot;
* checks the HTML itself with :func:`pokewatch.analysis.report.page_problems`: no ``<NA>``, no
  ``nan``, no pandas index column (``tests/test_report.py`` runs the same check).

Prints one line per page and width, writes ``checks.json`` next to the PNGs, and exits
1 when any check fails: overflow at 1366 px, an image that did not render, or a
problem in the HTML. Overflow at 390 px is reported too; there a wide table scrolls
inside its own box, so only the document's own width counts.

Examples:
    .venv/bin/python scripts/screenshots.py                          # runs/latest and runs/index.html
    .venv/bin/python scripts/screenshots.py --runs-dir /tmp/runs --out /tmp/shots --run 2025-10-08
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pokewatch import config  # noqa: E402
from pokewatch.analysis import report  # noqa: E402
from pokewatch.run.folder import INDEX, RunFolder  # noqa: E402

WIDTHS = (1366, 390)
#: The flags the environment's Chromium probe used; each session gets a fresh --user-data-dir.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
#: Run in the page: how wide the document is against the viewport, how tall, which images failed,
#: and the first elements that stick out of the window (outside boxes that scroll on their own).
MEASURE = """
var root = document.documentElement, images = Array.prototype.slice.call(document.images);
return {scrollWidth: root.scrollWidth, viewport: window.innerWidth, scrollHeight: root.scrollHeight,
  images: images.length,
  broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.alt || i.src.slice(0, 40); }),
  widest: Array.prototype.slice.call(document.querySelectorAll("body *")).filter(function (e) {
    return e.getBoundingClientRect().right > window.innerWidth + 1
           && !e.closest(".pw-scroll, .jp-OutputArea-output");
  }).slice(0, 5).map(function (e) { return e.tagName + "." + e.className; })};
"""


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(f"none of {', '.join(names)} found; install them with: "
                     "apt-get install -y chromium chromium-driver")


class Browser:
    """Headless Chromium driven through chromedriver's W3C WebDriver HTTP API (``requests`` only).

    chromedriver, not Chromium's own ``--window-size``, because a desktop window cannot be
    narrower than 500 px: a phone's 390 px viewport needs device-metrics emulation
    (``Emulation.setDeviceMetricsOverride``), and a full-page screenshot needs
    ``Page.captureScreenshot`` beyond the viewport; both are DevTools commands that
    chromedriver forwards.
    """

    def __init__(self) -> None:
        import requests

        self.http = requests.Session()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.driver = subprocess.Popen([_binary("chromedriver"), f"--port={self.port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        self.profile = tempfile.mkdtemp(prefix="pw-chromium-")
        for _ in range(100):
            try:
                if self.http.get(f"{self.url}/status", timeout=1).json()["value"]["ready"]:
                    break
            except (requests.RequestException, ValueError, KeyError):
                time.sleep(0.1)
        options = {"binary": _binary("chromium", "chromium-browser", "google-chrome"),
                   "args": [*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"]}
        session = self._post("/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}})
        self.session = f"/session/{session['sessionId']}"

    def _post(self, path: str, body: dict) -> dict:
        reply = self.http.post(f"{self.url}{path}", json=body, timeout=120).json()
        value = reply.get("value")
        if isinstance(value, dict) and "error" in value:
            raise RuntimeError(f"WebDriver {path}: {value['error']}: {value.get('message', '')[:300]}")
        return value

    def cdp(self, command: str, **params) -> dict:
        return self._post(f"{self.session}/goog/cdp/execute", {"cmd": command, "params": params})

    def open(self, page: Path, width: int, height: int = 900) -> dict:
        """Load ``page`` in a ``width`` px viewport (a phone's below 600 px) and measure it."""
        self.cdp("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                 mobile=width < 600)
        self._post(f"{self.session}/url", {"url": page.as_uri()})
        return self._post(f"{self.session}/execute/sync", {"script": MEASURE, "args": []})

    def screenshot(self, out: Path, width: int, height: int) -> Path:
        shot = self.cdp("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": width, "height": min(height, 20000), "scale": 1})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        return out

    def close(self) -> None:
        try:
            self.http.delete(f"{self.url}{self.session}", timeout=30)
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=30)
            shutil.rmtree(self.profile, ignore_errors=True)


def check(browser: Browser, page: Path, name: str, out: Path, widths=WIDTHS) -> list[dict]:
    """Measure, screenshot and check one page at every width; one result per width."""
    problems = report.page_problems(page.read_text(encoding="utf-8"))
    results = []
    for width in widths:
        seen = browser.open(page, width)
        png = browser.screenshot(out / f"{name}-{width}.png", width, seen["scrollHeight"])
        overflow = seen["scrollWidth"] > seen["viewport"]
        failed = list(problems) + [f"image not rendered: {b}" for b in seen["broken"]]
        if overflow and width >= 1366:
            failed.append(f"overflows: {seen['scrollWidth']} px wide in a {seen['viewport']} px window "
                          f"(widest: {', '.join(seen['widest']) or '?'})")
        results.append({"page": str(page), "width": width, "screenshot": str(png), "ok": not failed,
                        "problems": failed, "overflow_px": max(0, seen["scrollWidth"] - seen["viewport"]),
                        **seen})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", metavar="DIR", help="runs folder (default: $POKEWATCH_RUNS_DIR or runs/)")
    parser.add_argument("--run", default="latest", help="the run whose report.html to check (default latest)")
    parser.add_argument("--out", metavar="DIR", help="where the PNGs go (default: <runs>/screenshots)")
    parser.add_argument("--width", type=int, action="append", help=f"viewport widths (default {WIDTHS})")
    args = parser.parse_args(argv)
    root = Path(args.runs_dir).expanduser().resolve() if args.runs_dir else config.runs_dir()
    out = Path(args.out).expanduser().resolve() if args.out else root / "screenshots"
    pages = [(RunFolder(root / args.run).report, f"report-{args.run}"), (root / INDEX, "index")]
    missing = [str(p) for p, _ in pages if not p.exists()]
    if missing:
        print(f"missing: {', '.join(missing)}; run 'make pipeline' first", file=sys.stderr)
        return 2
    results = []
    browser = Browser()
    try:
        for page, name in pages:
            results += check(browser, page.resolve(), name, out, tuple(args.width or WIDTHS))
    finally:
        browser.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "checks.json").write_text(json.dumps(results, indent=2))
    for r in results:
        verdict = "ok" if r["ok"] else "FAIL: " + "; ".join(r["problems"])
        print(f"{Path(r['page']).name:<12} {r['width']:>5} px  {r['scrollWidth']:>5} px wide, "
              f"{r['scrollHeight']:>6} px tall, {r['images']} image(s)  {r['screenshot']}  {verdict}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
