"""Print rendered reports to PDF in headless Chromium: one PDF beside each HTML page.

The pages are printed as a reader's browser would print them, with the report's own print
stylesheet (``coachnb/templates/report/static/report.css``): portrait reports, the landscape
team overview, the running head and page numbers. Chromium is driven over the DevTools protocol
through a pipe (``--remote-debugging-pipe``): no port is opened and no extra package is needed.
It is Debian's ``chromium`` (``apt-get install chromium``), or the browser ``COACHNB_CHROMIUM``
names. Every PDF is written atomically (:func:`coachnb.fsutil.atomic_write_bytes`): a reader
sees the previous file or the new one, never part of one; without a browser nothing is written
and :class:`PdfError` says what to install.
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import CoachnbError
from .fsutil import atomic_write_bytes

#: executables tried in order when ``COACHNB_CHROMIUM`` names none
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: paper width and height in inches; the overview's stylesheet turns its pages to landscape
PAPER_INCHES = {"A4": (8.27, 11.69), "Letter": (8.5, 11.0)}
#: seconds one page may take to load and print before the run is abandoned
PAGE_TIMEOUT = 60.0
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--mute-audio", "--remote-debugging-pipe")


class PdfError(CoachnbError):
    """A PDF could not be printed: no browser, or the browser failed on a page."""


def find_browser() -> str:
    """The Chromium executable to print with.

    Returns
    -------
    str
        ``COACHNB_CHROMIUM`` when set (it must name an executable), else the first of
        :data:`BROWSER_NAMES` on ``PATH``.

    Raises
    ------
    PdfError
        When there is none, saying how to install one.
    """
    named = os.environ.get("COACHNB_CHROMIUM")
    if named:
        found = shutil.which(named)
        if found is None:
            raise PdfError(f"COACHNB_CHROMIUM names {named!r}, which is not an executable")
        return found
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise PdfError("printing PDFs needs headless Chromium and none was found: install Debian's 'chromium' "
                   "(apt-get install chromium) or set COACHNB_CHROMIUM to a Chromium or Chrome executable")


def pdf_path(html_path: str | os.PathLike) -> Path:
    """Where the PDF of ``html_path`` goes: beside it, ``.html`` replaced by ``.pdf``."""
    return Path(html_path).with_suffix(".pdf")


class Chromium:
    """One headless Chromium, driven over a pipe: ``with Chromium() as c: c.print_pdf(path, "A4")``."""

    def __init__(self, executable: str | None = None, timeout: float | None = None):
        self.executable = executable or find_browser()
        self.timeout = PAGE_TIMEOUT if timeout is None else timeout
        self.proc = None
        self.profile = None
        self._buffer = b""
        self._id = 0

    def __enter__(self) -> "Chromium":
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def pipes_on_3_and_4():
            # the browser reads commands on fd 3 and answers on fd 4; dup first so that a pipe that
            # already is fd 3 or 4 is not closed by the dup2 of the other
            read, write = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.profile = tempfile.mkdtemp(prefix="coachnb-chromium-")
        try:
            # close_fds=False: Python's own descriptors are not inheritable anyway (PEP 446), and
            # closing fds >= 3 after pipes_on_3_and_4 would close the two the browser needs
            self.proc = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
                [self.executable, *BROWSER_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=pipes_on_3_and_4, close_fds=False)
        except OSError as exc:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise PdfError(f"could not start {self.executable}: {exc.strerror or exc}") from None
        finally:
            os.close(to_browser_r)
            os.close(from_browser_w)
        return self

    def __exit__(self, *exc) -> None:
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _message(self, deadline: float) -> dict:
        """The browser's next message (one NUL-terminated JSON text), or PdfError at ``deadline``."""
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise PdfError(f"Chromium did not answer within {self.timeout:g} s")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise PdfError("Chromium closed while printing (it crashed or was stopped)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             until_event: str | None = None) -> dict:
        """Send one command; its result (after ``until_event`` arrived on ``session``, if named)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(message).encode("utf-8") + b"\0")
        except OSError:
            raise PdfError("Chromium closed before printing (it crashed or could not start)") from None
        deadline = time.monotonic() + self.timeout
        result, seen_event = None, until_event is None
        while result is None or not seen_event:
            msg = self._message(deadline)
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise PdfError(f"Chromium refused {method}: {msg['error'].get('message', msg['error'])}")
                result = msg.get("result", {})
            elif msg.get("method") == until_event and msg.get("sessionId") == session:
                seen_event = True
        return result

    def print_pdf(self, html_path: str | os.PathLike, paper: str = "A4") -> bytes:
        """The PDF of one local HTML page, printed with its print stylesheet on ``paper``.

        The page's own ``@page`` size wins where it sets one (the overview's landscape); page
        numbers and the running head are the stylesheet's, not Chromium's own header.
        """
        if paper not in PAPER_INCHES:
            raise PdfError(f"paper must be one of {', '.join(PAPER_INCHES)}, not {paper!r}")
        width, height = PAPER_INCHES[paper]
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            self.send("Page.enable", session=session)
            nav = self.send("Page.navigate", {"url": Path(html_path).resolve().as_uri()}, session=session,
                            until_event="Page.loadEventFired")
            if nav.get("errorText"):
                raise PdfError(f"{Path(html_path).name}: Chromium could not open it ({nav['errorText']})")
            printed = self.send("Page.printToPDF", {
                "paperWidth": width, "paperHeight": height, "preferCSSPageSize": True, "printBackground": True,
                "displayHeaderFooter": False, "generateTaggedPDF": True, "generateDocumentOutline": True,
            }, session=session)
        finally:
            self.send("Target.closeTarget", {"targetId": target})
        return base64.b64decode(printed["data"])


def write_pdfs(out_dir: str | os.PathLike, *, paper: str = "A4", pages: list | None = None,
               executable: str | None = None) -> list[Path]:
    """Print every HTML page of a report folder to a PDF beside it.

    Parameters
    ----------
    out_dir : path-like
        The folder of one run's pages (``reports/<as_of>``).
    paper : {"A4", "Letter"}
        The paper size (``process.toml``'s ``[presentation] paper``).
    pages : list of path-like, optional
        The pages to print (names relative to ``out_dir``, or paths inside it); by default every
        ``*.html`` file in ``out_dir`` and its folders. A symbolic link (page or folder) is never
        printed or written through.
    executable : str, optional
        The browser; by default :func:`find_browser`.

    Returns
    -------
    list of Path
        The PDFs written, in the order of ``pages`` (sorted by path by default).

    Raises
    ------
    PdfError
        Before anything is written when no browser is found, a page is missing, or a page or
        its PDF's path is a symbolic link; when a page fails to print, naming it (the PDFs
        written before it are complete files).
    """
    folder = Path(out_dir)
    html = sorted(folder.rglob("*.html")) if pages is None else [folder / Path(p) for p in pages]
    for page in html:
        in_folder = [folder / Path(*page.relative_to(folder).parts[:i + 1])
                     for i in range(len(page.relative_to(folder).parts))]
        if any(p.is_symlink() for p in in_folder) or pdf_path(page).is_symlink():
            raise PdfError(f"{page.name}: a symbolic link is in the way; no PDF is written through one")
        if not page.is_file():
            raise PdfError(f"{page.name}: no such page in {folder.name}")
    if not html:
        return []
    written = []
    with Chromium(executable) as browser:
        for page in html:
            try:
                data = browser.print_pdf(page, paper)
            except PdfError as exc:
                raise PdfError(f"{page.name}: {exc}") from None
            written.append(atomic_write_bytes(pdf_path(page), data))
    return written
