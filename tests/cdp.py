"""A minimal headless-Chromium driver over the DevTools protocol, for the browser tests.

It opens a local file, waits for the load event, and reports console messages, exceptions,
JavaScript dialogs (a script that ran), broken images and a screenshot.
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

    def open(self, path: Path) -> PageReport:
        events: list = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self._send(f"{domain}.enable", events=events)
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
        shot = self._send("Page.captureScreenshot", {"format": "png"})
        rep.screenshot = base64.b64decode(shot["data"])
        return rep


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
