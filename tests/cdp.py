"""A minimal headless-Chromium driver over the DevTools protocol, for the browser tests.

It opens a local file, waits for the load event, and reports console messages, exceptions,
JavaScript dialogs (a script that ran), broken images and a screenshot. ``open`` takes a
viewport width (a phone is emulated below 600 px) and a media type (``"print"``); ``layout``
measures what a reader would see as broken: sideways scrolling, tables or figures running past
the page, images without alt text, headings out of order.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import websocket


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PageReport:
    console: list = field(default_factory=list)  # (level, text)
    exceptions: list = field(default_factory=list)
    dialogs: list = field(default_factory=list)
    requests: list = field(default_factory=list)  # URLs the page asked for
    broken_images: int = -1
    images: int = -1
    text: str = ""
    screenshot: bytes = b""
    layout: dict = field(default_factory=dict)  # see LAYOUT_JS


class Browser:
    """``with Browser() as b: report = b.open(path)``"""

    def __init__(self):
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium is not installed")
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="cnb-chrome-")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", f"--user-data-dir={self.profile}", "--remote-debugging-address=127.0.0.1",
             f"--remote-debugging-port={self.port}", "--window-size=1100,1400", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        self._id = 0

    def __enter__(self):
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json", timeout=2) as r:
                    targets = json.load(r)
                page = next(t for t in targets if t.get("type") == "page")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        return self

    def __exit__(self, *exc):
        try:
            if self.ws:
                self.ws.close()
        finally:
            self.proc.kill()
            self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def _send(self, method, params=None, events=None):
        self._id += 1
        my = self._id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if events is not None and "method" in msg:
                events.append(msg)

    def open(self, path: Path, width: int = 1100, height: int = 1400, media: str = "",
             full_page: bool = False) -> PageReport:
        """Load ``path`` at a viewport ``width`` x ``height`` (a phone below 600 px) in ``media``."""
        events: list = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self._send(f"{domain}.enable", events=events)
        self._send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                           "mobile": width < 600}, events=events)
        self._send("Emulation.setEmulatedMedia", {"media": media}, events=events)
        self._send("Page.navigate", {"url": Path(path).resolve().as_uri()}, events=events)
        deadline = time.time() + 30
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            events.append(msg)
            if msg.get("method") == "Page.loadEventFired":
                break
        time.sleep(0.3)  # let late console messages arrive
        self.ws.settimeout(0.5)
        try:
            while True:
                events.append(json.loads(self.ws.recv()))
        except Exception:
            pass
        self.ws.settimeout(30)
        rep = PageReport()
        for e in events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled":
                rep.console.append((p.get("type"), " ".join(str(a.get("value", "")) for a in p.get("args", []))))
            elif m == "Log.entryAdded":
                entry = p.get("entry", {})
                rep.console.append((entry.get("level"), entry.get("text", "")))
            elif m == "Runtime.exceptionThrown":
                rep.exceptions.append(p.get("exceptionDetails", {}).get("text", ""))
            elif m == "Page.javascriptDialogOpening":
                rep.dialogs.append(p.get("message"))
                self._send("Page.handleJavaScriptDialog", {"accept": True})
            elif m == "Network.requestWillBeSent":
                rep.requests.append(p.get("request", {}).get("url", ""))
        # evaluated by the browser itself, so the page's no-script policy does not apply
        js = ("JSON.stringify({n: document.images.length, broken: Array.from(document.images)"
              ".filter(i => !i.complete || i.naturalWidth === 0).length, text: document.body.innerText})")
        res = self._send("Runtime.evaluate", {"expression": js, "returnByValue": True})
        data = json.loads(res["result"]["value"])
        rep.images, rep.broken_images, rep.text = data["n"], data["broken"], data["text"]
        res = self._send("Runtime.evaluate", {"expression": LAYOUT_JS, "returnByValue": True})
        rep.layout = json.loads(res["result"]["value"])
        params = {"format": "png"}
        if full_page:
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": width, "scale": 1,
                                                              "height": min(rep.layout["height"], 16000)})
        shot = self._send("Page.captureScreenshot", params)
        rep.screenshot = base64.b64decode(shot["data"])
        return rep

    def print_pdf(self, paper_inches: tuple[float, float] = (8.27, 11.69)) -> bytes:
        """The open page printed as Chromium prints it, with its own @page rules winning."""
        res = self._send("Page.printToPDF", {"paperWidth": paper_inches[0], "paperHeight": paper_inches[1],
                                             "preferCSSPageSize": True, "printBackground": True})
        return base64.b64decode(res["data"])


#: measured in the page: the document's width against the viewport's, each table, figure and
#: output block running past the viewport, images and their alt text, the heading levels in order
LAYOUT_JS = """JSON.stringify((() => {
  const vw = document.documentElement.clientWidth;
  const past = sel => Array.from(document.querySelectorAll(sel)).filter(e => {
      const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > vw + 1 || r.left < -1); })
    .map(e => e.tagName + '.' + e.className + ': ' + (e.innerText || e.alt || '').slice(0, 60));
  const clipped = Array.from(document.querySelectorAll('.output, table, td, th')).filter(e =>
      e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
    .map(e => e.tagName + '.' + e.className + ': ' + (e.innerText || '').slice(0, 60));
  return {viewport: vw, document: document.documentElement.scrollWidth, body: document.body.scrollWidth,
          past: past('table, figure, img, pre, dl, p, h1, h2, h3, li'), clipped: clipped,
          alts: Array.from(document.images).map(i => i.getAttribute('alt')),
          image_widths: Array.from(document.images).map(i => i.getBoundingClientRect().width),
          headings: Array.from(document.querySelectorAll('h1, h2, h3, h4, h5, h6')).map(h => +h.tagName[1]),
          height: document.documentElement.scrollHeight};
})())"""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_chromium() -> str:
    """The browser's path; the calling test skips without one, or fails in CI (where it must be)."""
    import pytest  # imported here: cdp is also used as a plain helper module

    path = chromium_path()
    if path is None:
        if in_ci():
            pytest.fail("chromium is required in CI (make test installs Debian's chromium)")
        pytest.skip("chromium not installed")
    return path
