"""Batch generation: one coaching report per rep, in parallel worker processes, plus the team index.

:func:`run_batch` is what ``coachnb run`` calls. In order, it

1. loads and validates the data folder once (:func:`coachnb.loading.load`); on
   :class:`~coachnb.errors.DataError` it prints the validation report and runs nothing;
2. selects the reps (all, ``reps=[...]`` or ``team=...``) and, with ``resume=True``, skips those
   whose fingerprint (data + notebook + coachnb version + parameters) is unchanged and whose
   outputs exist;
3. executes the rep notebook with papermill once per rep and audience, parameters passed as a
   dict so they keep their types (rep id ``"00123"`` stays a string), in worker processes
   (:class:`WorkerPool`, started while the data loads), in the calling process for a run of one
   or two reports (:func:`run_in_process`), or on a Dask cluster (``scheduler="tcp://..."``), whose
   workers keep warm report processes (:func:`run_task_on_dask_worker`);
4. renders each successful run to a page named for the rep in their manager's folder (the rep's own
   copy in the folder of pre-reads to send; see :func:`report_files`), atomically, and keeps the
   executed ``.ipynb`` in the cache folder; a failed or
   timed-out run leaves the previous good report in place and is recorded with its error and
   the failing cell; a report whose output path is a symbolic link or otherwise in the way is
   refused (failed, nothing runs) and the others go on;
5. writes ``manifest.json`` (also every few seconds while reports finish, so a run that is killed
   resumes where it stopped) and renders the team overview notebook into ``index.html``.

The report folder ``<out>/<as_of>/`` holds only what is sent::

    index.html                       team overview (rendered last)
    <Manager> — team overview <date>.html
                                     one manager's overview: only their reps
    manifest.json                    one entry per rep and audience (see :func:`run_batch`)
    <Manager>/<Rep> — coaching report <date>.html
                                     a rep's report for their manager, with the manager's notes
    <Manager>/pre-reads to send/<Rep> — pre-read <date>.html
                                     the rep's own pre-read (audience "rep" or "both"), self-contained

The cache folder ``<cache_dir>/<as_of>/`` (default ``<out>/.cache/<as_of>/``) holds the rest::

    .features/<key>/                 the feature store: every rep's deals, notes and quotas
    index.ipynb, <id>[.rep].ipynb    executed notebooks
    logs/<id>[.rep].log              per-report log: parameters, stderr, error
    logs/<id>[.rep].failed.ipynb     executed notebook of a failed run, for debugging
    .coachnb.lock                    held while a run writes

Workers never write either folder: they return the HTML and notebook to the parent, which is
the only writer (so runs on a remote Dask cluster need to read the data folder and the feature
store in the cache folder, and write nothing). The manifest records each page's size and SHA-256:
``resume`` renders again a page that is missing, truncated or changed.

In the code, :func:`run_batch` turns its arguments into a frozen :class:`BatchPlan` once, then
runs small named steps that read it: :func:`_input_dataset`, :func:`_select_reps`, and under the
report folder's lock :func:`_run_locked` (feature store, :func:`_work_out_tasks`, the reports on a
:class:`_TaskRunner`, :func:`_render_overview`, :func:`_finish`).
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import multiprocessing
import multiprocessing.forkserver
import numbers
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback as traceback_module
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_ready
from pathlib import Path

import pandas as pd

# first: coachnb.engine makes the first import of nbformat (through papermill) skip a slow optional grammar
from .engine import IPCKernelManager, cleanup, foreign_shell, freeze_baseline, get_shell, register

import papermill
from filelock import FileLock, Timeout
from papermill.exceptions import PapermillExecutionError
from tqdm.auto import tqdm

from .calendar import check_as_of_covered, parse_as_of, resolve_as_of
from .errors import CoachnbError, DataError
from .fsutil import atomic_write_bytes, atomic_write_text, readable_filename, safe_filename
from .formatting import terminal_safe
from .loading import input_fingerprint, load
from .render import get_exporter, render_html
from .store import code_fingerprint, is_store, open_store, store_path
from .store_build import build_store
from .team import active_reps, open_data
from .version import __version__

#: Engine used when ``engine`` is not given.
DEFAULT_ENGINE = "coachnb_inprocess"
#: Names that select papermill's standard (kernel) engine, with IPC transport.
KERNEL_ENGINE_NAMES = frozenset({"papermill", "nbclient", "kernel"})
AUDIENCES = ("manager", "rep")
REP_PARAMETERS_REQUIRED = ("rep_id", "data_dir", "as_of")
OVERVIEW_PARAMETERS_REQUIRED = ("data_dir", "as_of")
MANIFEST_NAME = "manifest.json"
#: 2: ``ipynb`` and ``log`` are relative to the manifest's ``cache_dir``; reports carry ``html_bytes`` and ``html_sha256``.
MANIFEST_FORMAT = 2
#: The lock file a run holds, in its cache folder.
LOCK_NAME = ".coachnb.lock"
#: The feature stores' folder under a cache folder (see :func:`coachnb.store.store_path`).
FEATURES_FOLDER = ".features"
#: A running batch rewrites the manifest at most this often (seconds), so a killed run can resume
#: (redoing at most this long of reports); at 1,000 reps a write costs the parent ~50 ms of the cores
#: the workers render on
CHECKPOINT_SECONDS = 5.0
#: Sentinel: use the notebook shipped with coachnb.
DEFAULT = "default"

_ANSI = re.compile("\x1b\\[(K|.*?m)")


# --------------------------------------------------------------------------- results


@dataclass
class BatchResult:
    """What :func:`run_batch` did.

    Attributes
    ----------
    ok : bool
        True when every selected report (and the overview) was written or skipped as unchanged.
    report_dir : Path or None
        ``<out>/<as_of>``.
    manifest_path : Path or None
    reports : list of dict
        The manifest entries of this run's reports.
    overview : dict or None
        The manifest entry of the team overview.
    duration_s : float
    error : str or None
        Why nothing ran (invalid data, ...), if so.
    """

    ok: bool
    report_dir: Path | None = None
    manifest_path: Path | None = None
    reports: list = field(default_factory=list)
    overview: dict | None = None
    duration_s: float = 0.0
    error: str | None = None

    @property
    def failed(self) -> list:
        """Entries of the reports that failed."""
        return [r for r in self.reports if r["status"] == "failed"]


# --------------------------------------------------------------------------- worker side


def engine_call(engine: str | None, timeout: float | None) -> tuple[str | None, dict]:
    """Papermill ``engine_name`` and engine keyword arguments for an engine choice.

    Parameters
    ----------
    engine : str or None
        ``"coachnb_inprocess"`` (also for None; registered with papermill here), a name of
        :data:`KERNEL_ENGINE_NAMES` (a Jupyter kernel with :class:`~coachnb.engine.IPCKernelManager`),
        or any registered papermill engine.
    timeout : float or None
        Seconds a cell may run.

    Returns
    -------
    engine_name : str or None
        None selects papermill's standard kernel engine.
    kwargs : dict
        For :func:`papermill.execute_notebook`.
    """
    engine = engine or DEFAULT_ENGINE
    if engine in KERNEL_ENGINE_NAMES:
        return None, {"kernel_manager_class": IPCKernelManager, "execution_timeout": timeout}
    if engine == DEFAULT_ENGINE:
        register()
    return engine, {"execution_timeout": timeout}


def _excerpt(source: str, max_lines: int = 12, max_chars: int = 800) -> str:
    """The start of a cell's source, for the manifest and the log: at most ``max_lines`` and ``max_chars``.

    Parameters
    ----------
    source : str
    max_lines, max_chars : int
        Limits; what is cut is marked ``...``.

    Returns
    -------
    str
    """
    lines = source.splitlines()
    text = "\n".join(lines[:max_lines])
    if len(lines) > max_lines:
        text += "\n..."
    return text if len(text) <= max_chars else text[:max_chars] + "..."


def _stderr_text(nb) -> str:
    """Everything an executed notebook's cells wrote to stderr, each part marked with its cell.

    Parameters
    ----------
    nb : dict or NotebookNode

    Returns
    -------
    str
        ``"[cell <index>] <text>"`` parts, joined; "" when nothing was written.
    """
    parts = []
    for index, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                parts.append(f"[cell {index}] {out.get('text', '')}")
    return "".join(parts)


def execute_task(task: dict) -> dict:
    """Execute one notebook and render it; runs in a worker process.

    Parameters
    ----------
    task : dict
        ``notebook`` (path), ``parameters`` (dict), ``engine``, ``timeout`` (s), ``title``.

    Returns
    -------
    dict
        ``status`` (``"ok"`` or ``"failed"``), ``html`` and ``ipynb`` (text, or ``None``),
        ``error``, ``failed_cell`` ({index, source}), ``traceback``, ``stderr``, ``duration_s``.
        Never raises for a notebook's own failure.
    """
    started = time.perf_counter()
    result = {"status": "failed", "html": None, "ipynb": None, "error": None, "failed_cell": None,
              "traceback": "", "stderr": "", "duration_s": 0.0, "pid": os.getpid()}
    notebook = Path(task["notebook"])
    engine_name, engine_kwargs = engine_call(task.get("engine"), task.get("timeout"))
    with tempfile.TemporaryDirectory(prefix="coachnb-run-") as tmp:
        output_path = Path(tmp) / "executed.ipynb"
        try:
            nb = papermill.execute_notebook(
                str(notebook), str(output_path), parameters=task["parameters"], engine_name=engine_name,
                request_save_on_cell_execute=False, progress_bar=False, cwd=str(notebook.parent),
                **engine_kwargs)
            # what papermill just wrote (nbformat.writes of this very notebook): not serialized twice
            result["ipynb"] = output_path.read_text(encoding="utf-8")
            result["stderr"] = _stderr_text(nb)
            result["html"] = render_html(nb, title=task.get("title") or notebook.stem)
            result["status"] = "ok"
            if task.get("overview_row"):
                result["overview_row"], result["overview_row_s"] = _overview_row(task["overview_row"])
        except PapermillExecutionError as exc:
            result["error"] = f"{exc.ename}: {exc.evalue}"
            result["failed_cell"] = {"index": exc.cell_index, "source": _excerpt(exc.source)}
            result["traceback"] = _ANSI.sub("", "\n".join(exc.traceback))
        except Exception as exc:  # kernel died, cell timeout, render refused, bad notebook...
            result["error"] = f"{type(exc).__name__}: {exc}".strip()
            result["traceback"] = traceback_module.format_exc()
        if result["status"] != "ok" and output_path.exists():
            text = output_path.read_text(encoding="utf-8")
            result["ipynb"] = text
            try:
                result["stderr"] = _stderr_text(json.loads(text))
            except ValueError:
                pass
    result["duration_s"] = round(time.perf_counter() - started, 3)
    return result


def _overview_row(spec: dict) -> tuple[dict | None, float]:
    """The team overview's columns for one rep (see coachnb.overview.summary_row), or None.

    Computed here, beside the report and in parallel across the workers, the row costs the run
    almost nothing more (the report's commitment reviews are still cached); the batch keeps it with
    the store for the index and every manager page (:func:`_complete_overview_rows`). Failing is
    harmless: the batch then computes the row itself, once.

    Parameters
    ----------
    spec : dict
        ``features`` (store path), ``as_of``, ``lookback_weeks``, ``rep_id``.

    Returns
    -------
    row : dict or None
        None when it could not be computed or is not valid JSON.
    seconds : float
        Time it took.
    """
    started = time.perf_counter()
    try:
        # lazy: coachnb.overview imports coachnb.report (~0.7 s, ~60 MB), which the parent and the
        # kernel-engine or Dask worker processes that import this module don't otherwise need
        from .overview import summary_row

        row = summary_row(spec["features"], spec["as_of"], spec["lookback_weeks"], spec["rep_id"])
        json.dumps(row, allow_nan=False)
    except Exception:  # noqa: BLE001
        row = None
    return row, round(time.perf_counter() - started, 3)


def _warm_up(engine: str | None) -> str | None:
    """Build what every task needs (HTML exporter, IPython shell), before the worker reports ready.

    Parameters
    ----------
    engine : str or None
        The tasks' engine: the in-process one (the default) needs the shell.

    Returns
    -------
    str or None
        The shell's temporary directory (None when the engine runs no shell in this process).
    """
    get_exporter()
    if (engine or DEFAULT_ENGINE) == DEFAULT_ENGINE:
        _import_report_modules()  # before the shell, as in a worker forked from a preloaded server
        return get_shell().ipython_dir
    return None


def _import_report_modules() -> None:
    """Import what the shipped notebooks import (report, overview, display: ~1 s), so a worker's first report doesn't.

    A pool starts its workers while the parent loads the data and builds the feature store, so
    this runs beside that work instead of inside the first report of each worker. Nothing is
    computed: no data of any rep is touched.
    """
    # here, not at the top: the parent, and workers of other engines, don't need them
    from . import display, overview, report  # noqa: F401


def _system_memory_pool() -> None:
    """Let pyarrow allocate with malloc in this worker.

    The engine hands malloc's free memory back to the OS after each report (malloc_trim);
    pyarrow's own pool keeps what a worker's largest read needed.
    """
    try:
        import pyarrow as pa  # here, inside the try: without a usable pyarrow the worker keeps its default pool

        pa.set_memory_pool(pa.system_memory_pool())
    except Exception:  # noqa: BLE001 - pyarrow absent or too old: its default pool then
        pass


def _worker_main(conn, engine: str | None) -> None:
    """Loop of a pool worker: warm up, then execute tasks from ``conn`` until ``None``.

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        To the parent: receives tasks (None: stop), sends first ``{"ready": ...}``, then one
        :func:`execute_task` result per task.
    engine : str or None
        The tasks' engine (see :func:`_warm_up`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    _system_memory_pool()
    try:
        scratch = _warm_up(engine)
    except BaseException as exc:  # report why we cannot work, then stop
        _send_or_quit(conn, {"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    freeze_baseline()  # later collections skip what every task shares
    try:
        if not _send_or_quit(conn, {"ready": True, "pid": os.getpid(), "scratch": scratch,
                                    "module": os.path.realpath(__file__)}):
            return
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                return
            if task is None or not _send_or_quit(conn, execute_task(task)):
                return
    finally:
        cleanup()


def _send_or_quit(conn, message) -> bool:
    """Send ``message`` to the parent; False (and nothing printed) when the parent is gone.

    A parent killed with SIGKILL closes its end of the pipe: the worker's next send fails with
    BrokenPipeError, which must end the worker quietly rather than print a traceback on the
    terminal the batch was started from.

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
    message : object

    Returns
    -------
    bool
    """
    try:
        conn.send(message)
    except (OSError, EOFError):  # BrokenPipeError, ConnectionResetError: the parent died
        return False
    return True


def _failure(error: str, **extra) -> dict:
    """A failed task's result, as :func:`execute_task` returns it, for a task that could not report its own.

    Parameters
    ----------
    error : str
        Why it failed (timed out, process died...).
    **extra
        Further keys (``duration_s``, ``traceback``).

    Returns
    -------
    dict
    """
    result = {"status": "failed", "html": None, "ipynb": None, "error": error, "failed_cell": None,
              "traceback": "", "stderr": "", "duration_s": 0.0}
    result.update(extra)
    return result


def kill_grace(timeout: float | None) -> float:
    """Seconds a worker gets past ``timeout`` to stop on its own before it is killed.

    Parameters
    ----------
    timeout : float or None
        A task's time limit in seconds.

    Returns
    -------
    float
        10 % of ``timeout``, between 2 and 30 s; 5 s without a timeout.
    """
    return 5.0 if not timeout else min(30.0, max(2.0, 0.1 * timeout))


# --------------------------------------------------------------------------- local pool


#: reports a pool worker renders before a fresh process replaces it (WorkerPool.max_tasks_per_worker):
#: at 1,000 reps x 104 weeks a worker's RSS levels off at ~390 MB within 150 reports and crept to
#: 401-437 MB over 500; a replacement costs one warm-up (~2 s) per this many reports
MAX_TASKS_PER_WORKER = 200

#: BLAS/OpenMP thread pools a worker may start: one. The pool already runs a worker per core, and
#: each library's own pool of one thread per core on top oversubscribes the cores (a team's panel
#: model fit took 0.07-0.4 s with them, 0.06 s without, on 2 cores).
_WORKER_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                      "NUMEXPR_NUM_THREADS")


#: modules the forkserver imports once before it forks a pool's workers (see pool_start_method)
FORKSERVER_PRELOAD = ("coachnb.batch", "coachnb.report", "coachnb.display", "coachnb.overview")
#: the environment this process's forkserver was started with (None: not started by coachnb)
_FORKSERVER_ENV: dict | None = None


def _worker_environment() -> dict:
    """This process's environment as a worker gets it: with one BLAS/OpenMP thread unless set."""
    env = dict(os.environ)
    for k in _WORKER_THREAD_ENV:
        env.setdefault(k, "1")
    return env


def pool_start_method() -> str:
    """How a :class:`WorkerPool` starts its workers: ``"forkserver"`` where it can, else ``"spawn"``.

    A forkserver is a fresh single-threaded process (no forked locks or kernels, as with spawn)
    that imports :data:`FORKSERVER_PRELOAD` once; each worker is then forked from it in
    milliseconds, sharing those imports' memory, instead of importing them again (~2 s of CPU a
    worker). It runs for the rest of this process with the environment it started with, which
    forked workers inherit: once this process's environment has changed, workers are spawned.

    Returns
    -------
    str
    """
    global _FORKSERVER_ENV
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    env = _worker_environment()
    if _FORKSERVER_ENV is None:
        multiprocessing.get_context("forkserver").set_forkserver_preload(list(FORKSERVER_PRELOAD))
        _FORKSERVER_ENV = env
    return "forkserver" if env == _FORKSERVER_ENV else "spawn"


def _ensure_forkserver() -> None:
    """Start this process's forkserver now, if it is not running, with one BLAS/OpenMP thread.

    Returns at once: the server imports :data:`FORKSERVER_PRELOAD` on its own, and the first
    worker's start waits for that. The variables are set in this process only while the server
    starts (it inherits them, and the workers it forks inherit them from it).
    """
    saved = {k: os.environ.get(k) for k in _WORKER_THREAD_ENV}
    try:
        for k in _WORKER_THREAD_ENV:
            os.environ.setdefault(k, "1")
        multiprocessing.forkserver.ensure_running()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


def _start_single_threaded(process) -> None:
    """Start ``process`` with one BLAS/OpenMP thread, unless the user set a number for that library.

    The variables are set in this process only while the child starts (it inherits them).

    Parameters
    ----------
    process : multiprocessing.Process
        Not started yet.
    """
    saved = {k: os.environ.get(k) for k in _WORKER_THREAD_ENV}
    try:
        for k in _WORKER_THREAD_ENV:
            os.environ.setdefault(k, "1")  # read by numpy's BLAS when the child imports it
        process.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


class _Worker:
    """One process of a :class:`WorkerPool`, started at once, and the parent's record of it.

    Parameters
    ----------
    ctx : multiprocessing context
    engine : str or None
        The tasks' engine (see :func:`_worker_main`).

    Attributes
    ----------
    state : str
        ``"starting"``, ``"idle"``, ``"busy"`` or ``"dead"``.
    method : str
        How the process was started (``"spawn"``, ``"forkserver"``).
    """

    def __init__(self, ctx, engine):
        """Start the process (see :func:`_start_single_threaded`)."""
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, engine), daemon=True,
                                   name="coachnb-worker")
        self.method = ctx.get_start_method()
        if self.method == "forkserver":
            self.process.start()  # forked from the server, with its environment (see _ensure_forkserver)
        else:
            _start_single_threaded(self.process)
        child.close()
        self.state = "starting"
        self.scratch = None  # the worker's temporary directory, removed here if it is killed
        self.task = None
        self.deadline = None
        self.started_task_at = None
        self.group = None  # the group (team) of the worker's last task, see pick_task
        self.done = 0  # tasks finished, for max_tasks_per_worker

    def kill(self) -> None:
        """Kill the process (if alive), close the pipe, and remove its scratch folder once it is gone."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()
        if hasattr(self.process, "close_sentinel"):
            self.process.close_sentinel()
        if self.scratch and not self.process.is_alive():
            shutil.rmtree(self.scratch, ignore_errors=True)

    def describe_death(self) -> str:
        """Why the process ended, for a failed task's error: the signal that killed it, or its exit code."""
        self.process.join(1)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return f"worker process died (killed by {signal.Signals(-code).name})"
            except ValueError:
                pass
        return f"worker process died (exit code {code})"


class _JsonConnection:
    """A pair of pipe ends carrying JSON messages (never pickle), used like a multiprocessing ``Connection``.

    Parameters
    ----------
    read_fd, write_fd : int
        Pipe ends this side reads from and writes to (owned from now on).
    check : callable, optional
        Applied to each message read (the parent checks a report process's messages as data).
    """

    def __init__(self, read_fd: int, write_fd: int, check=None):
        """Wrap the two file descriptors."""
        self._in = Connection(read_fd, writable=False)
        self._out = Connection(write_fd, readable=False)
        self._check = check

    def send(self, message) -> None:
        """Send ``message`` as JSON (values JSON can't hold are sent as their text)."""
        self._out.send_bytes(json.dumps(message, default=str).encode("utf-8"))

    def recv(self):
        """The next message; EOFError when the other side is gone or sent something that is not JSON."""
        try:
            message = json.loads(self._in.recv_bytes().decode("utf-8"))
        except ValueError:  # not JSON (UnicodeDecodeError is one): the channel can't be trusted
            raise EOFError("a message that is not JSON") from None
        return self._check(message) if self._check else message

    def poll(self, timeout: float = 0.0) -> bool:
        """Whether a message (or the end of the pipe) can be read."""
        return self._in.poll(timeout)

    def fileno(self) -> int:
        """The read end, for :func:`multiprocessing.connection.wait`."""
        return self._in.fileno()

    def close(self) -> None:
        """Close both ends."""
        self._in.close()
        self._out.close()


def _checked_message(message):
    """A report process's message as the parent may use it: its ready message, or a result checked as data."""
    if isinstance(message, dict) and "ready" in message and "status" not in message:
        scratch = message.get("scratch")
        if scratch is not None and not (isinstance(scratch, str) and Path(scratch).name.startswith("coachnb-ipython-")):
            message = dict(message, scratch=None)  # never remove a folder the process did not make for itself
        return message
    return _result_from_json(json.dumps(message))


class _ChildProcess:
    """A :class:`subprocess.Popen` seen through the part of :class:`multiprocessing.Process` a pool uses.

    Parameters
    ----------
    popen : subprocess.Popen
    fallback_sentinel : int
        A file descriptor readable once the process ends (the read end of its result pipe), used
        where ``os.pidfd_open`` is missing (before Linux 5.3, other systems).
    """

    def __init__(self, popen: subprocess.Popen, fallback_sentinel: int):
        """Open the process's sentinel."""
        self.popen, self.pid = popen, popen.pid
        try:
            self.sentinel, self._own_sentinel = os.pidfd_open(popen.pid), True
        except (AttributeError, OSError):
            self.sentinel, self._own_sentinel = fallback_sentinel, False

    def is_alive(self) -> bool:
        """Whether it still runs."""
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL."""
        self.popen.kill()

    def join(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds for it to end."""
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    @property
    def exitcode(self) -> int | None:
        """Exit code, minus the signal that killed it, or None while it runs."""
        return self.popen.poll()

    def close_sentinel(self) -> None:
        """Close the pidfd (once the process is retired)."""
        if self._own_sentinel:
            os.close(self.sentinel)
            self._own_sentinel = False


class _CommandWorker(_Worker):
    """A pool worker started as a new program (``python -m coachnb.batch --serve``), talking JSON over two pipes.

    For processes that may not have multiprocessing children, as Dask's daemonic worker processes;
    otherwise the same worker loop (:func:`_worker_main`) as a spawned one.

    Parameters
    ----------
    engine : str or None
    """

    def __init__(self, engine):
        """Start the program with one BLAS thread (unless the environment names a number)."""
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        env = _worker_environment()
        popen = subprocess.Popen([sys.executable, "-m", "coachnb.batch", "--serve", str(task_read), str(result_write),
                                  engine or ""], pass_fds=(task_read, result_write), stdin=subprocess.DEVNULL, env=env)
        os.close(task_read)
        os.close(result_write)
        self.conn = _JsonConnection(result_read, task_write, check=_checked_message)
        self.process = _ChildProcess(popen, result_read)
        self.state, self.scratch, self.task, self.deadline = "starting", None, None, None
        self.started_task_at, self.group, self.done = None, None, 0


def _serve_main(argv: list[str]) -> int:
    """``python -m coachnb.batch --serve TASK_FD RESULT_FD ENGINE``: a :class:`_CommandWorker`'s loop.

    Parameters
    ----------
    argv : list of str
        The pipe ends to read tasks from and write results to, and the engine ("" for the default).

    Returns
    -------
    int
        Exit status 0.
    """
    task_fd, result_fd, engine = int(argv[0]), int(argv[1]), argv[2] or None
    _worker_main(_JsonConnection(task_fd, result_fd), engine)
    return 0


def pick_task(pending: deque, group, held: set) -> dict:
    """Remove and return the task an idle worker runs next.

    Tasks may name a ``group`` (the batch uses the rep's team): a worker keeps to its group while
    it has tasks, then takes the first task of a group no other worker holds, and only then any
    task (so no worker idles while work is left). Work computed once per team in a process (the
    team's scenario model, fitted in the worker that first needs it and cached there) is then
    computed by one worker, not by every worker the team's reps happen to land on.

    Parameters
    ----------
    pending : deque of dict
        Tasks not yet started, in order; the chosen one is removed.
    group : hashable or None
        Group of the worker's previous task.
    held : set
        Groups of the other workers' current or previous tasks.

    Returns
    -------
    dict
        The chosen task.
    """
    chosen = None
    if group is not None:
        chosen = next((i for i, t in enumerate(pending) if t.get("group") == group), None)
    if chosen is None:
        chosen = next((i for i, t in enumerate(pending) if t.get("group") is None or t.get("group") not in held), 0)
    task = pending[chosen]
    del pending[chosen]
    return task


class WorkerPool:
    """Worker processes that run :func:`execute_task`, each task under a hard time limit.

    Unlike :class:`concurrent.futures.ProcessPoolExecutor`, one worker can be killed (a hung
    notebook) or die (``os._exit``, SIGKILL, out of memory) without breaking the pool: its task
    fails, a fresh worker replaces it, the other tasks go on. Workers are forked from a preloaded
    forkserver or spawned (never forked from the parent: no forked locks or kernels; see
    :func:`pool_start_method`) and warm up (imports, HTML exporter, IPython shell) before they
    take a task, so warm-up does not count against a task's timeout.

    Parameters
    ----------
    size : int
        Number of worker processes.
    engine : str or None
        Engine the tasks will use (decides what the workers warm up).
    start_method : str, optional
        ``"spawn"`` or ``"forkserver"`` (default: :func:`pool_start_method`), or ``"command"``:
        each worker a new program (:class:`_CommandWorker`), for a process that may not start
        multiprocessing children.
    max_tasks_per_worker : int or None
        A worker that has run this many tasks is stopped after its last one and a fresh one
        takes its place (like ``multiprocessing.Pool``'s ``maxtasksperchild``): what a long-lived
        process keeps (allocator fragmentation, caches that outlive their team) can't build up
        over thousands of reports. None: never.
    """

    def __init__(self, size: int, engine: str | None = None, start_method: str | None = None,
                 max_tasks_per_worker: int | None = MAX_TASKS_PER_WORKER):
        """Check the arguments; workers start when :meth:`run` (or :meth:`start`) needs them."""
        if size < 1:
            raise ValueError("a pool needs at least one worker")
        if max_tasks_per_worker is not None and max_tasks_per_worker < 1:
            raise ValueError("max_tasks_per_worker must be at least 1")
        self.size = size
        self.max_tasks = max_tasks_per_worker
        self.engine = engine
        start_method = start_method or pool_start_method()
        self._ctx = None if start_method == "command" else multiprocessing.get_context(start_method)
        self._workers: list[_Worker] = []
        self._starter: threading.Thread | None = None  # see start

    def _new_worker(self) -> _Worker:
        """Start one worker process (see :class:`_Worker`, :class:`_CommandWorker`).

        A forkserver that died (a module it preloads failed to import) can't fork: the pool then
        spawns its workers, which report why they can't start like any worker.
        """
        if self._ctx is None:
            return _CommandWorker(self.engine)
        try:
            return _Worker(self._ctx, self.engine)
        except (OSError, EOFError):
            if self._ctx.get_start_method() != "forkserver":
                raise
            self._ctx = multiprocessing.get_context("spawn")
            return _Worker(self._ctx, self.engine)

    def __enter__(self):
        """Return the pool."""
        return self

    def __exit__(self, *exc):
        """Stop the workers; exceptions propagate."""
        self.close()
        return False

    def start(self) -> None:
        """Start every worker now; they warm up (:func:`_warm_up`) while the caller goes on.

        :meth:`run` otherwise starts them when it is given tasks; started early, a pool is warm by
        the time the parent has loaded the data and built the feature store. Workers forked from
        the forkserver are started by a thread of this process, as that waits for the server to
        finish its imports (the server itself is started here, see :func:`_ensure_forkserver`).
        """
        if self._ctx is not None and self._ctx.get_start_method() == "forkserver":
            _ensure_forkserver()
            self._starter = threading.Thread(target=self._start_quietly, name="coachnb-pool-start", daemon=True)
            self._starter.start()
        else:
            self._start_all()

    def _start_all(self) -> None:
        """Start workers until the pool has :attr:`size`."""
        while len(self._workers) < self.size:
            self._workers.append(self._new_worker())

    def _start_quietly(self) -> None:
        """:meth:`_start_all` in :meth:`start`'s thread: a failure is left for :meth:`run` to meet and report."""
        try:
            self._start_all()
        except Exception:  # noqa: BLE001 - run() starts the missing workers itself, and says why they fail
            pass

    def _wait_started(self) -> None:
        """Wait for the thread :meth:`start` left starting workers, if any."""
        if self._starter is not None:
            self._starter.join()
            self._starter = None

    def close(self) -> None:
        """Stop the workers: ask politely, then kill the ones still running."""
        self._wait_started()
        for w in self._workers:
            if w.state == "idle":
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        for w in self._workers:
            if w.state == "idle":
                w.process.join(2)
            w.kill()
        self._workers = []

    def run(self, tasks, on_done) -> None:
        """Run ``tasks`` and call ``on_done(task, result)`` for each, in completion order, in this process.

        Each turn starts workers as needed, hands idle ones a task (:meth:`_assign`), waits for a
        message, a death or the next deadline, settles what happened (a worker that finished gets
        its next task before ``on_done`` writes the finished one), and kills the workers past
        their deadline (:meth:`_kill_overdue`).

        Parameters
        ----------
        tasks : iterable of dict
            As :func:`execute_task` takes them, with an optional ``timeout`` (s) and ``group``.
        on_done : callable
            ``on_done(task, result)``; a killed or dead worker's task gets a :func:`_failure`.

        Raises
        ------
        CoachnbError
            When workers keep failing to start.
        """
        self._wait_started()
        pending = deque(tasks)
        startup_failures = 0
        while pending or any(w.state == "busy" for w in self._workers):
            busy = sum(w.state == "busy" for w in self._workers)
            wanted = min(self.size, busy + len(pending))
            while len(self._workers) < wanted:
                self._workers.append(self._new_worker())
            self._assign(pending)
            self._workers = [w for w in self._workers if w.state != "dead"]
            active = [w for w in self._workers if w.state in ("starting", "busy")]
            if not active:
                continue
            deadlines = [w.deadline for w in active if w.deadline is not None]
            wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = set(wait_for_ready([w.conn for w in active] + [w.process.sentinel for w in active], wait_s))
            finished = []
            for w in active:
                if w.conn in ready or w.process.sentinel in ready:
                    message = None
                    try:
                        if w.conn.poll():
                            message = w.conn.recv()
                    except (EOFError, OSError):
                        message = None
                    if w.state == "starting":
                        if message and message.get("ready") and not self._other_code(w, message):
                            w.state, w.scratch = "idle", message.get("scratch")
                            startup_failures = 0
                            continue
                        if w.state == "dead":  # retired by _other_code: a spawned worker replaces it
                            continue
                        startup_failures += 1
                        reason = (message or {}).get("error") or w.describe_death()
                        self._retire(w)
                        if startup_failures > self.size + 2:
                            raise CoachnbError(f"worker processes fail to start: {reason}")
                        continue
                    if message is not None:
                        task, w.state, w.task, w.deadline = w.task, "idle", None, None
                        w.done += 1
                        finished.append((task, message))
                        if self.max_tasks is not None and w.done >= self.max_tasks:
                            self._stop(w)  # a fresh worker replaces it on the next turn
                    elif not w.process.is_alive() or w.process.sentinel in ready:
                        task = w.task
                        elapsed = time.monotonic() - w.started_task_at
                        reason = w.describe_death()
                        self._retire(w)
                        on_done(task, _failure(reason, duration_s=round(elapsed, 3)))
            if finished:  # the idle workers get their next task first, then the parent writes the reports
                self._workers = [w for w in self._workers if w.state != "dead"]
                self._assign(pending)
                for task, message in finished:
                    on_done(task, message)
            self._kill_overdue(on_done)
            self._workers = [w for w in self._workers if w.state != "dead"]

    def _assign(self, pending: deque) -> None:
        """Hand each idle worker its next task (see :func:`pick_task`) and set its deadline.

        A worker whose pipe is broken is retired and its task goes back to the front of ``pending``.

        Parameters
        ----------
        pending : deque of dict
            Tasks not yet started; those handed out are removed.
        """
        now = time.monotonic()
        for w in self._workers:
            if w.state == "idle" and pending:
                held = {o.group for o in self._workers if o is not w and o.state in ("busy", "idle")}
                task = pick_task(pending, w.group, held)
                w.group = task.get("group")
                try:
                    w.conn.send(task)
                except OSError:
                    pending.appendleft(task)
                    self._retire(w)
                    continue
                w.state, w.task = "busy", task
                timeout = task.get("timeout")
                w.deadline = now + timeout + kill_grace(timeout) if timeout else None
                w.started_task_at = now

    def _kill_overdue(self, on_done) -> None:
        """Kill the busy workers past their task's deadline; each task fails as timed out.

        Parameters
        ----------
        on_done : callable
            ``on_done(task, result)``, as for :meth:`run`.
        """
        now = time.monotonic()
        for w in self._workers:
            if w.state == "busy" and w.deadline is not None and now >= w.deadline:
                task, elapsed = w.task, now - w.started_task_at
                self._retire(w)
                on_done(task, _failure(f"timed out after {task['timeout']:g} s (worker killed)",
                                       duration_s=round(elapsed, 3)))

    def _other_code(self, worker: _Worker, ready: dict) -> bool:
        """Whether a forked worker runs another copy of coachnb than this process; if so it is retired.

        The forkserver imports :data:`FORKSERVER_PRELOAD` with its own module search path (the
        current folder first), which can find another coachnb (a source checkout) than the one
        this process runs. Workers are then spawned instead, here and in later pools.
        """
        module = ready.get("module")
        if getattr(worker, "method", None) != "forkserver" or module in (None, os.path.realpath(__file__)):
            return False
        global _FORKSERVER_ENV
        _FORKSERVER_ENV = {"unusable": module}  # never equal to an environment: pool_start_method spawns
        self._ctx = multiprocessing.get_context("spawn")
        worker.scratch = ready.get("scratch") if isinstance(ready.get("scratch"), str) else None
        self._retire(worker)
        return True

    def _retire(self, worker: _Worker) -> None:
        """Kill ``worker`` and mark it dead (the loop drops it)."""
        worker.kill()
        worker.state = "dead"

    def _stop(self, worker: _Worker) -> None:
        """Stop an idle worker politely (it cleans its scratch), killing it only if it hangs."""
        try:
            worker.conn.send(None)
        except OSError:
            pass
        worker.process.join(5)
        self._retire(worker)


# --------------------------------------------------------------------------- in the calling process


#: a run of at most this many reports renders them in the calling process: a pool's start (a fresh
#: Python per worker, its imports and warm-up, ~3 s on 2 cores) costs more than they do (~0.5-1 s each)
IN_PROCESS_MAX_TASKS = 2


def runs_in_process(scheduler, n_tasks: int) -> bool:
    """Whether a run's reports render in the calling process instead of a pool or a Dask cluster.

    Parameters
    ----------
    scheduler : str, distributed.Client or None
        The run's Dask scheduler (a run on Dask never renders here).
    n_tasks : int
        Reports to render.

    Returns
    -------
    bool
        True for at most :data:`IN_PROCESS_MAX_TASKS` local reports, unless this process runs an
        IPython shell of its own (a Jupyter session calling :func:`run_batch`): the engine's shell
        would take over its display.
    """
    return scheduler is None and n_tasks <= IN_PROCESS_MAX_TASKS and not foreign_shell()


@contextmanager
def _interrupts_noted():
    """While the block runs, Ctrl-C (SIGINT) is noted in the list yielded, and still raises KeyboardInterrupt.

    IPython catches a KeyboardInterrupt raised in a cell and records it as the cell's error; the
    note lets the caller stop the run instead of going on to the next report. Outside the main
    thread (where no signal handler can be set) the list stays empty.
    """
    noted: list = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return

    def on_sigint(signum, frame):
        noted.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)


def run_in_process(tasks, on_done, engine: str | None) -> None:
    """Run ``tasks`` one after the other in this process and call ``on_done(task, result)`` for each.

    Each report gets what a pool worker gives it (:func:`execute_task`: with the in-process
    engine a fresh namespace and the process state restored after it), but there is no process
    to kill: a cell past the timeout is stopped by the engine's alarm (main thread only), while
    a cell stuck in C code, or a crash of the interpreter, is not contained. That is why only
    small runs render here (see :func:`runs_in_process`).

    Parameters
    ----------
    tasks : iterable of dict
        As :func:`execute_task` takes them.
    on_done : callable
        ``on_done(task, result)``.
    engine : str or None
        The tasks' engine (see :func:`_warm_up`).

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, after the report running then has ended (it is not recorded).
    """
    tasks = list(tasks)
    if not tasks:
        return
    _warm_up(engine)
    with _interrupts_noted() as interrupted:
        for task in tasks:
            result = execute_task(task)
            if interrupted:
                raise KeyboardInterrupt
            on_done(task, result)


# --------------------------------------------------------------------------- dask


#: per Dask worker process and engine: its warm report processes not in use, and how many it has
#: (see run_task_on_dask_worker)
_DASK_EXECUTORS: dict = {}
_DASK_EXECUTORS_LOCK = threading.Lock()


def _dask_executors(engine: str | None) -> dict:
    """``{"idle": [...], "count": n}`` of an engine's report processes in this process (call under the lock)."""
    return _DASK_EXECUTORS.setdefault(engine or DEFAULT_ENGINE, {"idle": [], "count": 0})


def _idle_executor(engine: str | None) -> WorkerPool:
    """A report process of this (Dask worker) process that no task thread is using, or a new one.

    Each is a :class:`WorkerPool` of one :class:`_CommandWorker`: a separate program, so it can be
    killed (timeout) or die without taking down the Dask worker or its other tasks.
    """
    with _DASK_EXECUTORS_LOCK:
        executors = _dask_executors(engine)
        if executors["idle"]:
            return executors["idle"].pop()
        executors["count"] += 1
    return WorkerPool(1, engine=engine, start_method="command")


def _return_executor(engine: str | None, executor: WorkerPool | None) -> None:
    """Hand a report process back for the next task (None: it was closed, and is no longer counted)."""
    with _DASK_EXECUTORS_LOCK:
        executors = _dask_executors(engine)
        if executor is None:
            executors["count"] -= 1
        else:
            executors["idle"].append(executor)


def run_task_on_dask_worker(task: dict) -> dict:
    """Execute one task on a Dask worker, in a warm report process that outlives the task.

    Dask runs tasks in threads of long-lived worker processes that cannot be killed per task
    and may not start multiprocessing children. So each task thread hands its report to a
    report process of its own (:func:`_idle_executor`), started once and warmed up like a local
    pool worker (imports, HTML exporter, shell): the same isolation as the local pool (a fresh
    namespace per report, the process killed past the timeout, a crash failing only its report,
    a fresh process after :data:`MAX_TASKS_PER_WORKER` reports), without a cold start per report.
    Tasks and results cross the pipes as JSON, checked on read.

    Parameters
    ----------
    task : dict
        As for :func:`execute_task`.

    Returns
    -------
    dict
        The result of :func:`execute_task`, or a :func:`_failure` when the process timed out or died.
    """
    engine = task.get("engine")
    executor = _idle_executor(engine)
    holder = {}
    try:
        executor.run([task], lambda _task, result: holder.update(result=result))
    except CoachnbError as exc:  # report processes fail to start on this worker
        executor.close()
        _return_executor(engine, None)
        return _failure(str(exc))
    except BaseException:
        executor.close()
        _return_executor(engine, None)
        raise
    _return_executor(engine, executor)
    return holder["result"]


def close_dask_executors() -> None:
    """Stop this process's idle report processes (a Dask worker's, see :func:`run_task_on_dask_worker`)."""
    with _DASK_EXECUTORS_LOCK:
        idle = [e for executors in _DASK_EXECUTORS.values() for e in executors["idle"]]
        for executors in _DASK_EXECUTORS.values():
            executors["count"] -= len(executors["idle"])
            executors["idle"].clear()
    for executor in idle:
        executor.close()


def _warm_dask_executors(engine: str | None, n: int) -> None:
    """Start report processes on this Dask worker now, up to ``n`` in all, so its first tasks find them warm."""
    with _DASK_EXECUTORS_LOCK:
        executors = _dask_executors(engine)
        while executors["count"] < n:
            executor = WorkerPool(1, engine=engine, start_method="command")
            executor.start()
            executors["idle"].append(executor)
            executors["count"] += 1


#: the keys of execute_task's result and the types a result read back may hold
RESULT_TYPES = {"status": str, "html": (str, type(None)), "ipynb": (str, type(None)), "error": (str, type(None)),
                "failed_cell": (dict, type(None)), "traceback": str, "stderr": str, "duration_s": (int, float),
                "pid": int}


def _result_from_json(text: str) -> dict:
    """A result written by a report process, checked as data (known keys, their types) before use."""
    try:
        result = json.loads(text)
    except ValueError:
        return _failure("the report process wrote an unreadable result")
    if not isinstance(result, dict) or any(not isinstance(result.get(k), t) for k, t in RESULT_TYPES.items()
                                           if k in result) or not isinstance(result.get("status"), str):
        return _failure("the report process wrote a result that is not a report's")
    return result


def _dask_worker_threads(dask_worker) -> int:
    """Task threads of a Dask worker (their number of report processes)."""
    state = getattr(dask_worker, "state", None)
    return int(getattr(state, "nthreads", None) or getattr(dask_worker, "nthreads", 1) or 1)


def _warm_up_dask_worker(engine: str | None, dask_worker=None) -> int:
    """Run on every Dask worker by :func:`_run_on_dask`: start its report processes (one per task thread).

    Returns
    -------
    int
        The process id of the Dask worker.
    """
    _warm_dask_executors(engine, _dask_worker_threads(dask_worker) if dask_worker is not None else 1)
    return os.getpid()


def _run_on_dask(scheduler, tasks, on_done) -> None:
    """Run ``tasks`` on a Dask cluster and call ``on_done(task, result)`` for each, in completion order.

    Each worker first starts its warm report processes (see :func:`run_task_on_dask_worker`),
    which then stay for the next run on the same cluster.

    Parameters
    ----------
    scheduler : str or distributed.Client
        Scheduler address (a client is opened and closed here) or a client of the caller's.
    tasks : list of dict
    on_done : callable
    """
    from distributed import Client, as_completed  # lazy: only a run on a Dask cluster needs it

    own_client = not hasattr(scheduler, "submit")
    client = Client(scheduler) if own_client else scheduler
    try:
        if tasks:
            try:
                client.run(_warm_up_dask_worker, tasks[0].get("engine"))  # starts processes, waits for none
            except Exception:  # noqa: BLE001 - an optimisation: the tasks start their processes themselves
                pass
        futures = {client.submit(run_task_on_dask_worker, task, pure=False): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the Dask worker itself died or the task was lost
                result = _failure(f"dask task failed: {type(exc).__name__}: {exc}")
            on_done(task, result)
    finally:
        if own_client:
            client.close()


# --------------------------------------------------------------------------- the plan


def find_notebook(name: str) -> Path:
    """Locate a notebook shipped with coachnb (source checkout, editable or packaged install).

    Parameters
    ----------
    name : str
        File name of the notebook, e.g. ``"rep_report.ipynb"``.

    Returns
    -------
    Path
        The first of ``<checkout>/notebooks``, ``<package>/notebooks`` and
        ``<sys.prefix>/share/coachnb/notebooks`` that holds it.

    Raises
    ------
    CoachnbError
        When none does.
    """
    package = Path(__file__).resolve().parent
    candidates = [package.parent / "notebooks" / name, package / "notebooks" / name,
                  Path(sys.prefix) / "share" / "coachnb" / "notebooks" / name]
    for path in candidates:
        if path.is_file():
            return path
    raise CoachnbError(f"notebook {name} not found; looked in: " + ", ".join(str(p.parent) for p in candidates))


def declared_parameters(notebook: Path) -> dict:
    """Parameters declared in the notebook's ``parameters`` cell, by name.

    Parameters
    ----------
    notebook : Path

    Returns
    -------
    dict
        Papermill's description of each declared parameter (name, type, default, help).
    """
    return papermill.inspect_notebook(str(notebook))


def _check_contract(notebook: Path, required, what: str) -> frozenset:
    """Names of the parameters ``notebook`` declares, after checking it declares the ``required`` ones.

    Parameters
    ----------
    notebook : Path
    required : iterable of str
        Parameters the batch always passes.
    what : str
        What the notebook is, for the error message ("rep report", "team overview").

    Returns
    -------
    frozenset of str

    Raises
    ------
    CoachnbError
        When a required parameter is not declared in a cell tagged ``parameters``.
    """
    declared = declared_parameters(notebook)
    missing = [p for p in required if p not in declared]
    if missing:
        raise CoachnbError(f"{what} notebook {notebook} does not declare parameter(s) {', '.join(missing)} "
                           "in a cell tagged 'parameters'")
    return frozenset(declared)


def _parse_as_of(as_of) -> str:
    """The coaching date as ``YYYY-MM-DD``.

    Parameters
    ----------
    as_of : str or date

    Returns
    -------
    str

    Raises
    ------
    CoachnbError
        When it is not a valid date in that form.
    """
    text = as_of.isoformat() if isinstance(as_of, date) else str(as_of)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise CoachnbError(f"--as-of must be a date YYYY-MM-DD, not {text!r}")
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        raise CoachnbError(f"--as-of {text!r} is not a valid date: {exc}") from None
    parse_as_of(text)  # the years the data may hold, the rule every coaching date follows
    return text


#: The longest ``timeout`` accepted (seconds, a week): beyond it a deadline is no limit at all, and
#: far beyond it (``1e300``) the waits that enforce it overflow.
MAX_TIMEOUT_S = 7 * 24 * 3600.0


def check_timeout(timeout) -> float | None:
    """``timeout`` as a float, after checking it is a finite positive number of seconds.

    Parameters
    ----------
    timeout : float or None
        Seconds one report may take; None means no limit (the API's choice; the CLI always
        passes a number).

    Returns
    -------
    float or None

    Raises
    ------
    CoachnbError
        For anything but a number in (0, :data:`MAX_TIMEOUT_S`]: ``inf``, ``nan``, ``0``, ``-5``,
        ``1e300``, a string or a bool.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise CoachnbError(f"--timeout must be a number of seconds, not {timeout!r}")
    if not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT_S:
        raise CoachnbError(f"--timeout must be a finite number of seconds above 0 and at most "
                           f"{MAX_TIMEOUT_S:g} (a week), not {timeout!r}")
    return float(timeout)


def _report_and_cache_dirs(out, cache_dir, as_of: str) -> tuple[Path, Path]:
    """The report folder ``<out>/<as_of>`` and the cache folder ``<cache_dir>/<as_of>``, absolute.

    Parameters
    ----------
    out : str or Path
    cache_dir : str, Path or None
        Parent of the per-date cache folders; None: ``<out>/.cache``.
    as_of : str

    Returns
    -------
    report_dir, cache_dir : Path

    Raises
    ------
    CoachnbError
        When the cache would be the report folder or inside it (then it would be sent with it).
    """
    report_dir = Path(out).resolve() / as_of
    cache = (Path(cache_dir).resolve() if cache_dir is not None else Path(out).resolve() / ".cache") / as_of
    if cache == report_dir or cache.is_relative_to(report_dir) or report_dir.is_relative_to(cache):
        raise CoachnbError(f"the cache folder {cache} must be outside the report folder {report_dir} "
                           "(the report folder is what gets sent)")
    return report_dir, cache


@dataclass(frozen=True)
class BatchPlan:
    """What one batch run does, worked out once from the arguments of :func:`run_batch`.

    :meth:`from_arguments` validates the arguments and the notebooks' parameter contracts; the
    steps of the run (see :func:`run_batch`) read the plan and never change it.

    Attributes
    ----------
    data_dir : Path
        The data folder, absolute.
    as_of : str
        Coaching date, ``YYYY-MM-DD``.
    report_dir : Path
        ``<out>/<as_of>``, absolute: the folder that is sent (HTML pages and ``manifest.json`` only).
    cache_dir : Path
        ``<cache>/<as_of>`` (default ``<out>/.cache/<as_of>``), absolute: the feature store,
        executed notebooks, logs and the lock, which are never sent.
    audiences : tuple of str
        ``("manager",)``, ``("rep",)`` or both, in that order.
    reps : sequence of str or None
        Rep ids asked for, as given (None: every rep, or those of ``team``).
    team : str or None
        Team whose reps are asked for (when ``reps`` is None).
    jobs : int or None
        Local worker processes (None: one per core).
    resume : bool
        Skip reports whose fingerprint is unchanged and whose outputs exist.
    scheduler : str, distributed.Client or None
        Dask scheduler to run the reports on (None: local worker processes).
    timeout : float or None
        Seconds one report may take.
    engine : str
        Papermill engine name (:data:`DEFAULT_ENGINE` when none was given).
    notebook : Path
        The rep report notebook.
    overview_notebook : Path or None
        The team overview notebook (None: no overview).
    rep_declared, overview_declared : frozenset of str
        Parameters the two notebooks declare (empty without an overview).
    lookback_weeks : int or None
        As given; the notebooks get ``int(lookback_weeks)``, the feature store ``int(lookback_weeks or 13)``.
    progress : bool or None
        Progress bar on, off, or (None) on when stderr is a terminal.
    started : float
        :func:`time.perf_counter` when the run started, for its duration.
    started_at : str
        UTC time the run started (ISO, seconds), for the manifest.
    """

    data_dir: Path
    as_of: str
    report_dir: Path
    cache_dir: Path
    audiences: tuple
    reps: object
    team: str | None
    jobs: int | None
    resume: bool
    scheduler: object
    timeout: float | None
    engine: str
    notebook: Path
    overview_notebook: Path | None
    rep_declared: frozenset
    overview_declared: frozenset
    lookback_weeks: int | None
    progress: bool | None
    started: float
    started_at: str

    @classmethod
    def from_arguments(cls, data_dir, as_of, out, reps, team, audience, jobs, resume, scheduler, timeout,
                       engine, notebook, overview_notebook, lookback_weeks, progress, cache_dir=None) -> BatchPlan:
        """Check and resolve the arguments of :func:`run_batch` (which documents them) into a plan.

        Finds the default notebooks and checks that both declare the parameters the batch
        passes. Reads no data.

        Returns
        -------
        BatchPlan

        Raises
        ------
        CoachnbError
            For an invalid date, audience or timeout, a cache folder inside the report folder, a
            missing notebook, or a notebook that does not declare the required parameters.
        """
        started = time.perf_counter()
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        as_of = _parse_as_of(as_of)
        if audience not in (*AUDIENCES, "both"):
            raise CoachnbError(f"audience must be manager, rep or both, not {audience!r}")
        audiences = AUDIENCES if audience == "both" else (audience,)
        timeout = check_timeout(timeout)
        report_dir, cache = _report_and_cache_dirs(out, cache_dir, as_of)
        data_dir = Path(data_dir).resolve()
        notebook = Path(notebook).resolve() if notebook else find_notebook("rep_report.ipynb")
        if overview_notebook == DEFAULT:
            overview_notebook = find_notebook("team_overview.ipynb")
        overview_notebook = Path(overview_notebook).resolve() if overview_notebook else None
        rep_declared = _check_contract(notebook, REP_PARAMETERS_REQUIRED, "rep report")
        overview_declared = (_check_contract(overview_notebook, OVERVIEW_PARAMETERS_REQUIRED, "team overview")
                             if overview_notebook else frozenset())
        return cls(
            data_dir=data_dir, as_of=as_of, report_dir=report_dir, cache_dir=cache, audiences=audiences,
            reps=reps, team=team, jobs=jobs, resume=resume, scheduler=scheduler, timeout=timeout,
            engine=engine or DEFAULT_ENGINE, notebook=notebook, overview_notebook=overview_notebook,
            rep_declared=rep_declared, overview_declared=overview_declared, lookback_weeks=lookback_weeks,
            progress=progress, started=started, started_at=started_at)

    @property
    def manifest_path(self) -> Path:
        """``<report_dir>/manifest.json``."""
        return self.report_dir / MANIFEST_NAME

    @property
    def wants_features(self) -> bool:
        """Whether a notebook reads the feature store (declares a ``features`` parameter)."""
        return "features" in self.rep_declared or "features" in self.overview_declared


# --------------------------------------------------------------------------- inputs


def _sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- odd entries


class RefusedOutput(ValueError):
    """An output path coachnb will not write: a symbolic link, or not a plain file or folder."""


def odd_entry(base: Path, name: str, folder: bool = False) -> str | None:
    """Why coachnb must not write (or read back) ``name`` under ``base``; None when it may.

    Every component below ``base`` that exists must be a real folder, and the last one a
    regular file (a folder with ``folder=True``); none may be a symbolic link, wherever it
    points: a report written through a link would land wherever the link's owner chose.

    Parameters
    ----------
    base : Path
        The report or cache folder (its own path may contain links: the user chose it).
    name : str
        Relative path below ``base``, e.g. ``"logs/r001.log"``.
    folder : bool
        Whether ``name`` is a folder.

    Returns
    -------
    str or None
        A sentence naming the entry by its path below ``base`` (the manifest and the team
        overview show it: no local folder names) and the problem.
    """
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        return f"{name} is outside the folder"
    current = base
    for i, part in enumerate(rel.parts):
        current = current / part
        shown = Path(*rel.parts[: i + 1]).as_posix()
        if current.is_symlink():
            return f"{shown} is a symbolic link; coachnb never writes through one (remove it to go on)"
        if not current.exists():
            return None  # nothing below it exists either
        if (folder or i < len(rel.parts) - 1) and not current.is_dir():
            return f"{shown} is in the way: it should be a folder"
        if not (folder or i < len(rel.parts) - 1) and not current.is_file():
            return f"{shown} is in the way: it should be a regular file"
    return None


def output_path(base: Path, name: str) -> Path:
    """``base / name``, after checking with :func:`odd_entry` that it may be written.

    A file written there with :func:`coachnb.fsutil.atomic_write_bytes` replaces whatever is at
    the path (a link planted after this check included) and never writes through it.

    Raises
    ------
    RefusedOutput
        With :func:`odd_entry`'s reason.
    """
    reason = odd_entry(base, name)
    if reason:
        raise RefusedOutput(f"{reason} (in {base})")
    return base / name


def _input_dataset(plan: BatchPlan, dataset=None):
    """The Dataset the parent selects reps from and builds the feature store from.

    Parameters
    ----------
    plan : BatchPlan
    dataset : Dataset, optional
        One the caller loaded already; returned as it is.

    Returns
    -------
    Dataset
        The caller's, else the team-wide one of an existing feature store for these very files
        (an unchanged rerun: its reps table is all the parent needs, and the store was built from
        a validated load of the same files), else :func:`coachnb.loading.load` of the data folder.

    Raises
    ------
    DataError
        When the data folder is loaded and invalid.
    """
    if dataset is None and plan.wants_features:
        dataset = _dataset_from_store(plan)
        if dataset is not None:
            _phase(plan, "data: unchanged since its feature store was built and validated; reusing it")
    if dataset is None:
        _phase(plan, f"validating the data in {plan.data_dir}")
        dataset = load(plan.data_dir)
    return dataset


def _phase(plan: BatchPlan, text: str) -> None:
    """Print ``coachnb: <text>`` on stderr as a phase of the run starts, when stderr is no terminal.

    A run in a log or a pipe (no progress bar) then shows what it is doing from its first second;
    ``progress=False`` (or a bar forced on) keeps it quiet. Data text is escaped.

    Parameters
    ----------
    plan : BatchPlan
        Its ``progress`` is read.
    text : str
    """
    if plan.progress is None and not sys.stderr.isatty():
        print(f"coachnb: {terminal_safe(text)}", file=sys.stderr, flush=True)


def _dataset_from_store(plan: BatchPlan):
    """The team-wide Dataset of an existing feature store for the data folder (None if there is none).

    Keyed by the files' bytes (no parsing), so the parent skips loading gigabytes of raw data.

    Parameters
    ----------
    plan : BatchPlan

    Returns
    -------
    Dataset or None
        None also when anything goes wrong: the data is then loaded (and validated) as usual.
    """
    try:
        fingerprint = input_fingerprint(plan.data_dir)
        path = store_path(plan.cache_dir, fingerprint, plan.as_of, int(plan.lookback_weeks or 13))
        if odd_entry(plan.cache_dir, path.relative_to(plan.cache_dir).as_posix(), folder=True) or not is_store(path):
            return None
        ds = open_store(path).dataset_for(None)
        return ds if ds.fingerprint == fingerprint else None
    except Exception:  # noqa: BLE001 - then the data is loaded (and validated) as usual
        return None


def _isna(value) -> bool:
    """Whether a table cell is missing (None, NaN, NaT, pd.NA); False for what pandas can't judge."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _select_reps(ds, reps, team, as_of: str) -> tuple[list[dict], list[str]]:
    """The reps to render.

    Parameters
    ----------
    ds : Dataset
        Its ``reps`` table is read.
    reps : iterable of str or None
        Rep ids asked for (duplicates dropped, order kept).
    team : str or None
        Team asked for (used when ``reps`` is None).
    as_of : str
        The 1:1 date, for the reports' file names.

    Returns
    -------
    selected : list of dict
        Known reps, as dicts with ``rep_id``, ``name``, ``team`` and ``manager`` (strings, ""
        when missing) and ``files``, audience -> page (see :func:`report_files`).
    unknown : list of str
        Requested ids that are not in the data.

    Raises
    ------
    CoachnbError
        When ``team`` has no reps.
    """
    table = ds.reps
    rows = []
    for rec in table.to_dict("records"):
        rows.append({"rep_id": str(rec["rep_id"])} | {
            col: "" if _isna(rec.get(col)) else str(rec.get(col)) for col in ("name", "team", "manager")})
    files = report_files(rows, as_of)
    for row in rows:
        row["files"] = {aud: files[(row["rep_id"], aud)] for aud in AUDIENCES}
    if reps is not None:
        by_id = {r["rep_id"]: r for r in rows}
        wanted = list(dict.fromkeys(str(r) for r in reps))
        return [by_id[r] for r in wanted if r in by_id], [r for r in wanted if r not in by_id]
    if team is not None:
        chosen = [r for r in rows if r["team"] == team]
        if not chosen:
            teams = sorted({r["team"] for r in rows})
            raise CoachnbError(f"no reps in team {team!r}; teams are: {', '.join(teams)}")
        return chosen, []
    return rows, []


@contextmanager
def _report_dir_lock(plan: BatchPlan):
    """Create the report and cache folders (and the cache's ``logs``) and hold the cache's lock file while the block runs.

    Parameters
    ----------
    plan : BatchPlan

    Raises
    ------
    CoachnbError
        When another run holds the lock, the lock file is a link or in the way, or a folder
        can't be written.
    """
    lock_path = plan.cache_dir / LOCK_NAME
    _check_folders_are_not_links(plan)
    for folder in (plan.report_dir, plan.cache_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _probe_writable(folder)
            if folder == plan.cache_dir and not odd_entry(folder, "logs", folder=True):
                (folder / "logs").mkdir(exist_ok=True)  # a link there fails each report, with its reason
        except OSError as exc:  # read-only or full disk, not a folder, no permission: say so, no traceback
            what = "reports" if folder == plan.report_dir else "the cache"
            raise CoachnbError(f"cannot write {what} to {folder}: {exc.strerror or exc}") from None
    reason = odd_entry(plan.cache_dir, LOCK_NAME)
    if reason:  # opening the lock would truncate what a link points at
        raise CoachnbError(f"cannot lock the cache folder {plan.cache_dir}: {reason}")
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise CoachnbError(f"another coachnb run is writing to {plan.report_dir}") from None
    except OSError as exc:
        raise CoachnbError(f"cannot write to {plan.cache_dir}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


def _check_folders_are_not_links(plan: BatchPlan) -> None:
    """Refuse a report or cache folder that is a symbolic link (or a file), before anything is written.

    ``<out>/<as_of>`` and ``<cache>/<as_of>`` (with the default cache, ``<out>/.cache/<as_of>``)
    are coachnb's own; ``out`` and a ``cache_dir`` given by the user may be links of the user's.

    Raises
    ------
    CoachnbError
        Naming the folder and the problem.
    """
    out = plan.report_dir.parent
    checks = [(out, plan.as_of, "report")]
    if plan.cache_dir.parent == out / ".cache":
        checks.append((out, f".cache/{plan.as_of}", "cache"))
    else:
        checks.append((plan.cache_dir.parent, plan.as_of, "cache"))
    for base, name, what in checks:
        reason = odd_entry(base, name, folder=True)
        if reason:
            raise CoachnbError(f"cannot write the {what} folder: in {base}, {reason}")


def _probe_writable(folder: Path) -> None:
    """Create and remove a temporary file in ``folder``: a read-only folder fails here, before any work.

    Raises
    ------
    OSError
        When ``folder`` can't be written.
    """
    fd, name = tempfile.mkstemp(dir=folder, prefix=".coachnb-probe.", suffix=".tmp")
    os.close(fd)
    os.unlink(name)


def _remove_stale_temporaries(plan: BatchPlan) -> None:
    """Delete the temporary files a run killed mid-write left in the report folder and the cache's ``logs``.

    Unlinking removes a link itself, never what it points at.
    """
    for folder in (plan.report_dir, plan.cache_dir, plan.cache_dir / "logs"):
        if folder.is_symlink():
            continue
        for stale in folder.glob(".*.tmp"):
            try:
                stale.unlink()
            except OSError:
                pass


def old_layout_leftovers(report_dir: Path) -> list[str]:
    """Names in ``report_dir`` that an older coachnb kept there and that are now cached elsewhere.

    ``.features/`` (every rep's records), ``logs/``, executed ``*.ipynb`` and the lock: sent with
    the folder, they would send everything; they are listed, never deleted (they may be the
    user's).

    Parameters
    ----------
    report_dir : Path

    Returns
    -------
    list of str
        Sorted; empty when the folder holds only pages and the manifest.
    """
    names = [n for n in (FEATURES_FOLDER, "logs", LOCK_NAME) if os.path.lexists(report_dir / n)]
    names += [p.name for p in report_dir.glob("*.ipynb")]
    return sorted(names)


def _warn_old_layout(report_dir: Path) -> None:
    """Print on stderr which files of an older layout the report folder still holds (see :func:`old_layout_leftovers`)."""
    leftovers = old_layout_leftovers(report_dir)
    if leftovers:
        shown = ", ".join(terminal_safe(n) for n in leftovers[:5]) + (", ..." if len(leftovers) > 5 else "")
        print(f"coachnb: {terminal_safe(report_dir)} still holds what an older coachnb kept there ({shown}): "
              "notebooks, logs and the feature store now go to the cache folder; delete these before "
              "sending the report folder", file=sys.stderr)


def _read_manifest(path: Path) -> dict:
    """The manifest at ``path`` (the previous run's), or ``{}`` when there is none, it can't be read or is a link."""
    if path.is_symlink():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("reports", []), list) else {}


def _feature_store(plan: BatchPlan, dataset) -> str:
    """Build the feature store once, in the parent, and return its path ("" when not used).

    Workers then read their rep's slice and the team tables instead of the raw files. If the
    store can't be built, the reports fall back to reading the data folder: slower, same content.

    Parameters
    ----------
    plan : BatchPlan
    dataset : Dataset or None

    Returns
    -------
    str
        The store's path; "" when no notebook reads a store, or it could not be built.
    """
    if not plan.wants_features or dataset is None:
        return ""
    _phase(plan, "feature store: reusing it if it is up to date, else building it")
    reason = odd_entry(plan.cache_dir, FEATURES_FOLDER, folder=True)
    if reason:
        print(f"coachnb: feature store not built (in the cache folder {terminal_safe(plan.cache_dir)}, "
              f"{terminal_safe(reason)}); reports read the data folder",
              file=sys.stderr)
        return ""
    try:
        return str(build_store(dataset, plan.as_of, int(plan.lookback_weeks or 13), plan.cache_dir))
    except Exception as exc:  # noqa: BLE001 - a store is an optimisation, never a reason to fail a batch
        print(f"coachnb: feature store not built ({type(exc).__name__}: {exc}); reports read the data folder",
              file=sys.stderr)
        return ""


@dataclass
class _RunState:
    """What a run works out under the report folder's lock, and fills in as reports finish.

    Attributes
    ----------
    notebook_sha : str
        SHA-256 of the rep notebook's bytes.
    data_fingerprint : str
        The dataset's fingerprint ("" when it has none).
    previous : dict
        The previous run's manifest (``{}`` if none).
    features_path : str
        The feature store ("" when not used).
    entries : dict
        Manifest entry of every selected report, by ``(rep_id, audience)``; updated in place.
    tasks : list of dict
        Tasks of the reports that run (the others are skipped as unchanged).
    last_checkpoint : float or None
        :func:`time.monotonic` of the last manifest checkpoint.
    previous_by_key : dict
        The previous manifest's report entries by ``(rep_id, audience)``.
    """

    notebook_sha: str
    data_fingerprint: str
    previous: dict
    features_path: str = ""
    dataset: object = None  # the loaded Dataset (None when the run reads a feature store it was given)
    entries: dict = field(default_factory=dict)
    tasks: list = field(default_factory=list)
    last_checkpoint: float | None = None
    previous_by_key: dict = field(init=False)

    def __post_init__(self):
        """Index the previous manifest's report entries."""
        self.previous_by_key = {(e.get("rep_id"), e.get("audience")): e for e in self.previous.get("reports", [])}


# --------------------------------------------------------------------------- tasks


def report_fingerprint(data_fingerprint: str, notebook_sha: str, parameters: dict) -> str:
    """Fingerprint of one report's inputs: data, notebook, coachnb's code and parameters.

    Folder paths (``data_dir``, ``out_dir``, ``report_dir``) are left out: moving a folder does
    not change a report.

    Parameters
    ----------
    data_fingerprint : str
    notebook_sha : str
    parameters : dict
        The report's notebook parameters.

    Returns
    -------
    str
        Hex SHA-256.
    """
    # the feature store's path is derived from the data fingerprint, which is already in the blob
    params = {k: v for k, v in parameters.items() if k not in ("data_dir", "out_dir", "report_dir", "features")}
    blob = json.dumps({"data": data_fingerprint, "notebook": notebook_sha, "coachnb": __version__,
                       "code": code_fingerprint(), "parameters": params}, sort_keys=True, default=str)
    return _sha256(blob.encode("utf-8"))


def _rep_parameters(plan: BatchPlan, rep_id: str, audience: str, features_path: str) -> dict:
    """The rep notebook's parameters for one report: those of ours the notebook declares.

    Parameters
    ----------
    plan : BatchPlan
    rep_id, audience : str
    features_path : str

    Returns
    -------
    dict
        In a fixed order (papermill writes them into the executed notebook in this order).
    """
    params = {"rep_id": rep_id, "data_dir": str(plan.data_dir), "as_of": plan.as_of, "audience": audience}
    if plan.lookback_weeks is not None and "lookback_weeks" in plan.rep_declared:
        params["lookback_weeks"] = int(plan.lookback_weeks)
    if "out_dir" in plan.rep_declared:
        params["out_dir"] = str(plan.report_dir)
    params["features"] = features_path
    return {k: v for k, v in params.items() if k in plan.rep_declared}


#: the folder, inside a manager's, of the pre-reads to send to their reps
PRE_READ_FOLDER = "pre-reads to send"
#: what each audience's page is called in its file name
PAGE_KINDS = {"manager": "coaching report", "rep": "pre-read"}


def _unique_names(labels: dict, tie_breaks) -> dict:
    """``labels`` (key -> name) with every name shared case-insensitively made unique by the tie-breaks in turn.

    ``tie_breaks`` are functions key -> text appended in brackets to each name of a shared
    group; the last one must be unique per key. Depends only on the keys and labels, so the
    names of a folder don't change with which reports a run renders.
    """
    names = dict(labels)
    for tie_break in tie_breaks:
        groups: dict[str, list] = {}
        for key, name in names.items():
            groups.setdefault(name.casefold(), []).append(key)
        shared = [k for ks in groups.values() if len(ks) > 1 for k in ks]
        if not shared:
            break
        for key in shared:
            names[key] = f"{labels[key]} ({tie_break(key)})"
    return names


def manager_folders(managers) -> dict[str, str]:
    """Each manager's readable folder name (:func:`coachnb.fsutil.readable_filename`, "" -> "No manager").

    Names that would be the same on a case-insensitive file system get the hash of the exact
    name in brackets; a name ending like a page or the manifest (``.html``, ``.json``, ``.pdf``)
    gets a ``_``, so no folder can stand where a page of the report folder does.
    """
    labels = {m: readable_filename(m, "No manager") for m in managers}
    labels = {m: f + "_" if f.lower().endswith((".html", ".json", ".pdf")) else f for m, f in labels.items()}
    return _unique_names(labels, [lambda m: hashlib.sha256(m.encode("utf-8", "surrogatepass")).hexdigest()[:8]])


def report_files(reps: list[dict], as_of: str) -> dict[tuple, str]:
    """The file of every rep's page, for each audience, relative to the report folder.

    A folder per manager holds their reps' coaching reports, and in it a folder
    :data:`PRE_READ_FOLDER` holds the reps' own pre-reads, so the file sent to a rep is the
    one made for them::

        Maya Chen/Priya Natarajan — coaching report 2026-11-23.html
        Maya Chen/pre-reads to send/Priya Natarajan — pre-read 2026-11-23.html

    Names come from :func:`coachnb.fsutil.readable_filename`; two reps of one manager with the
    same name (ignoring case) get their ids in brackets, two managers their names' hashes.

    Parameters
    ----------
    reps : list of dict
        Every rep of the data (``rep_id``, ``name``, ``manager``; "" when missing): the names
        of one run's reports don't depend on which reps it renders.
    as_of : str
        The 1:1 date (ISO), written into each name.

    Returns
    -------
    dict
        ``(rep_id, audience) -> path`` with ``/`` separators, for the audiences of
        :data:`AUDIENCES`.
    """
    managers = sorted({r["manager"] for r in reps})
    folders = manager_folders(managers)
    files = {}
    for manager in managers:
        mine = [r for r in reps if r["manager"] == manager]
        labels = {r["rep_id"]: readable_filename(r["name"] or r["rep_id"], safe_filename(r["rep_id"])) for r in mine}
        names = _unique_names(labels, [lambda i: readable_filename(i, safe_filename(i)), safe_filename])
        for rep_id, name in names.items():
            folder = folders[manager]
            files[(rep_id, "manager")] = f"{folder}/{name} — {PAGE_KINDS['manager']} {as_of}.html"
            files[(rep_id, "rep")] = f"{folder}/{PRE_READ_FOLDER}/{name} — {PAGE_KINDS['rep']} {as_of}.html"
    return files


def _report_entry(plan: BatchPlan, rep: dict, audience: str, stem: str, fingerprint: str) -> dict:
    """A report's manifest entry, still ``pending``, with the file names its outputs get.

    Parameters
    ----------
    plan : BatchPlan
    rep : dict
        ``rep_id``, ``name``, ``team`` and ``files`` (see :func:`_select_reps`).
    audience : str
    stem : str
        File name stem of the rep's notebook and log in the cache folder
        (:func:`coachnb.fsutil.safe_filename` of the id).
    fingerprint : str
        :func:`report_fingerprint` of the report.

    Returns
    -------
    dict
        ``html`` is relative to the report folder, ``ipynb`` and ``log`` to the cache folder.
        When one of its outputs is an odd entry (see :func:`refusal`) the entry is ``failed``
        with that reason, and nothing runs for it.
    """
    suffix = "" if audience == "manager" else f".{audience}"
    entry = {
        "rep_id": rep["rep_id"], "name": rep["name"], "team": rep["team"], "audience": audience,
        "status": "pending", "duration_s": None,
        "html": rep["files"][audience], "ipynb": f"{stem}{suffix}.ipynb",
        "log": f"logs/{stem}{suffix}.log", "error": None, "failed_cell": None,
        "fingerprint": fingerprint,
    }
    reason = refusal(plan, entry)
    if reason:
        entry.update(status="failed", duration_s=0.0, error=f"refused: {reason}")
    return entry


def refusal(plan: BatchPlan, entry: dict) -> str | None:
    """Why a report's outputs can't be written safely (see :func:`odd_entry`), or None.

    Parameters
    ----------
    plan : BatchPlan
    entry : dict
        Its ``html`` (under the report folder), ``ipynb`` and ``log`` (under the cache folder)
        are checked, and the failed run's notebook beside the log.

    Returns
    -------
    str or None
    """
    names = [(plan.report_dir, entry["html"]), (plan.cache_dir, entry["ipynb"]), (plan.cache_dir, entry["log"]),
             (plan.cache_dir, failed_notebook_name(entry["log"]))]
    for base, name in names:
        reason = odd_entry(base, name)
        if reason:
            return f"in the {'report' if base == plan.report_dir else 'cache'} folder, {reason}"
    return None


def failed_notebook_name(log: str) -> str:
    """Where the executed notebook of a failed run goes: beside its log, ``<stem>.failed.ipynb``."""
    return Path(log).with_suffix(".failed.ipynb").as_posix()


def _is_unchanged(plan: BatchPlan, entry: dict, old: dict | None) -> bool:
    """Whether the previous run rendered this report from the same inputs and its outputs are still as written.

    The HTML must have the size and SHA-256 the manifest recorded when it was written: a page
    truncated, edited or replaced since is rendered again.

    Parameters
    ----------
    plan : BatchPlan
    entry : dict
        This run's entry of the report (not refused).
    old : dict or None
        The previous manifest's entry of the report.

    Returns
    -------
    bool
    """
    if not (old and old.get("status") in ("ok", "skipped") and old.get("fingerprint") == entry["fingerprint"]
            and old.get("html") == entry["html"] and (plan.cache_dir / entry["ipynb"]).is_file()):
        return False
    html = plan.report_dir / entry["html"]
    try:
        if html.is_symlink() or html.stat().st_size != old.get("html_bytes"):
            return False
        return _sha256(html.read_bytes()) == old.get("html_sha256")
    except OSError:
        return False


def _note_previous_page(entry: dict, old: dict | None) -> None:
    """Remember in ``entry`` the page the previous run wrote under another name (the rep was renamed, moved
    to another manager, or the run is the first with readable names), with its recorded SHA-256.

    The page is removed once the new one is written (:func:`_retire_previous_page`) and kept as
    the last good report when the new one fails (:func:`_keep_stale_outputs`).
    """
    if not old:
        return
    previous = old.get("previous_html")
    if old.get("html") and old["html"] != entry["html"] and old.get("html_sha256"):
        previous = {"html": old["html"], "html_sha256": old["html_sha256"]}
    if isinstance(previous, dict) and previous.get("html") != entry["html"]:
        entry["previous_html"] = previous


def _retire_previous_page(plan: BatchPlan, entry: dict) -> None:
    """Remove the page (and its PDF) the previous run wrote under the entry's old name, if it is still as written.

    A file changed since (its SHA-256 differs), a link or anything odd is left where it is.
    """
    previous = entry.pop("previous_html", None)
    if not previous or odd_entry(plan.report_dir, previous["html"]):
        return
    page = plan.report_dir / previous["html"]
    try:
        if not page.is_file() or _sha256(page.read_bytes()) != previous["html_sha256"]:
            return
        page.unlink()
        pdf = page.with_suffix(".pdf")
        if pdf.is_file() and not pdf.is_symlink():
            pdf.unlink()
    except OSError:  # a page that can't be removed stays: nothing is lost
        return


def _id_suffix(rep) -> str:
    """`` (R003)`` after a name, or nothing when the id is the name (an import that used names as ids)."""
    name, rep_id = str(rep["name"] or "").strip(), str(rep["rep_id"]).strip()
    return "" if not name or name == rep_id else f" ({rep_id})"


def _report_task(plan: BatchPlan, rep: dict, audience: str, params: dict, row_spec: dict | None) -> dict:
    """The task a worker runs for one report (see :func:`execute_task`).

    Parameters
    ----------
    plan : BatchPlan
    rep : dict
        ``rep_id``, ``name``, ``team``; the team is the task's group (see :func:`pick_task`).
    audience : str
    params : dict
        The notebook's parameters.
    row_spec : dict or None
        Feature store, date and look-back of the overview's rows: the worker computes the rep's
        row beside the report of the first audience.

    Returns
    -------
    dict
    """
    title = (f"{rep['name'] or rep['rep_id']}: pre-read for the 1:1, {plan.as_of}" if audience == "rep"
             else f"{rep['name'] or rep['rep_id']}{_id_suffix(rep)}: coaching report, {plan.as_of}")
    task = {"key": (rep["rep_id"], audience), "notebook": str(plan.notebook), "parameters": params,
            "engine": plan.engine, "timeout": plan.timeout, "title": title, "group": rep["team"] or None}
    if row_spec is not None and audience == plan.audiences[0]:
        task["overview_row"] = dict(row_spec, rep_id=rep["rep_id"])
    return task


def idle_reps(plan: BatchPlan, state: _RunState, selected: list) -> set:
    """Ids of the selected reps with no record in the report period (``team.active_reps``'s rule)."""
    data = state.features_path or state.dataset
    if data is None or not selected:
        return set()
    try:
        _, _, tv = open_data(data, plan.as_of, int(plan.lookback_weeks or 13))
        active = set(active_reps(tv).astype(str))
    except Exception:  # noqa: BLE001 - then every rep is reported: an idle rep's report says it has no record
        return set()
    return {rep["rep_id"] for rep in selected if str(rep["rep_id"]) not in active}


def _inactive_entry(rep: dict, audience: str) -> dict:
    """The manifest entry of a rep with no record in the period: a warning, no report written."""
    return {"rep_id": rep["rep_id"], "name": rep["name"], "team": rep["team"], "audience": audience,
            "status": "inactive", "duration_s": 0.0, "html": None, "ipynb": None, "log": None,
            "error": "no record in the period: no activity, new deal, stage move or closed deal; no report written",
            "failed_cell": None, "fingerprint": None}


def _unknown_rep_entry(rep_id: str, audience: str) -> dict:
    """The manifest entry of a requested rep id that is not in the data (failed, nothing ran)."""
    return {"rep_id": rep_id, "name": None, "team": None, "audience": audience, "status": "failed",
            "duration_s": 0.0, "html": None, "ipynb": None, "log": None,
            "error": "unknown rep id: not in reps of the data folder", "failed_cell": None, "fingerprint": None}


def _work_out_tasks(plan: BatchPlan, state: _RunState, selected: list, unknown: list) -> tuple[dict, list]:
    """Every selected report's manifest entry, and the tasks of those that run.

    With ``plan.resume``, a report the previous run rendered from the same inputs (same
    fingerprint, HTML of the recorded size and hash, notebook still there) is ``skipped`` and
    keeps its overview row. A report whose outputs are odd entries is failed, and not run.

    Parameters
    ----------
    plan : BatchPlan
    state : _RunState
        Fingerprints, previous manifest and feature store of the run.
    selected : list of dict
        Reps to render (see :func:`_select_reps`).
    unknown : list of str
        Requested ids not in the data: failed entries, no task.

    Returns
    -------
    entries : dict
        By ``(rep_id, audience)``.
    tasks : list of dict
    """
    # The overview's per-rep columns are computed by the workers beside each report (in parallel),
    # when the overview reads the same feature store; the overview computes any row missing.
    row_spec = None
    if state.features_path and plan.overview_notebook is not None and "features" in plan.overview_declared:
        # a row is used only if its store key is the key of the store the overview reads
        row_spec = {"features": state.features_path, "as_of": plan.as_of,
                    "lookback_weeks": int(plan.lookback_weeks or 13)}
    entries: dict[tuple, dict] = {}
    tasks = []
    idle = idle_reps(plan, state, selected)
    for rep in selected:
        stem = safe_filename(rep["rep_id"])
        if rep["rep_id"] in idle:  # listed in the overview as inactive: a report of zeros says nothing
            for aud in plan.audiences:
                entries[(rep["rep_id"], aud)] = _inactive_entry(rep, aud)
            continue
        for aud in plan.audiences:
            params = _rep_parameters(plan, rep["rep_id"], aud, state.features_path)
            fingerprint = report_fingerprint(state.data_fingerprint, state.notebook_sha, params)
            entry = entries[(rep["rep_id"], aud)] = _report_entry(plan, rep, aud, stem, fingerprint)
            if entry["status"] == "failed":  # refused: an output path is a link or in the way
                continue
            old = state.previous_by_key.get((rep["rep_id"], aud))
            _note_previous_page(entry, old)
            if plan.resume and _is_unchanged(plan, entry, old):
                entry.update(status="skipped", duration_s=old.get("duration_s"),
                             html_bytes=old["html_bytes"], html_sha256=old["html_sha256"])
                continue
            tasks.append(_report_task(plan, rep, aud, params, row_spec))
    for rep_id in unknown:
        for aud in plan.audiences:
            entries[(rep_id, aud)] = _unknown_rep_entry(rep_id, aud)
    for entry in entries.values():  # the overview shows failures of this run only
        entry["run"] = plan.started_at
    return entries, tasks


# --------------------------------------------------------------------------- running


class _Progress:
    """A tqdm bar with ETA on a terminal, one plain line per report otherwise.

    Parameters
    ----------
    total : int
        Reports that will run.
    enabled : bool or None
        Force the bar on or off; None: on when stderr is a terminal.
    """

    def __init__(self, total: int, enabled: bool | None):
        """Open the bar (when on and there is anything to run)."""
        self.total, self.n = total, 0
        tty = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        if tty and total:
            self.bar = tqdm(total=total, unit="report", file=sys.stderr, dynamic_ncols=True)

    def done(self, entry: dict) -> None:
        """Count one finished report and show it (a failure always gets its own line).

        Parameters
        ----------
        entry : dict
            The report's manifest entry, already recorded.
        """
        self.n += 1
        who = f"{terminal_safe(entry['rep_id'])} ({entry['audience']})"
        text = f"{who}: {entry['status']} in {entry.get('duration_s') or 0:.1f} s"
        if entry.get("error"):
            text += f": {terminal_safe(entry['error'])}"
        if self.bar is not None:
            self.bar.set_postfix_str(f"{who} {entry['status']}", refresh=False)
            self.bar.update(1)
            if entry["status"] == "failed":
                self.bar.write(f"failed {text}", file=sys.stderr)
        else:
            print(f"[{self.n}/{self.total}] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Close the bar, if there is one."""
        if self.bar is not None:
            self.bar.close()


def _print_skipped(entries: dict) -> None:
    """One line on stderr per report skipped as unchanged.

    Parameters
    ----------
    entries : dict
        Manifest entries by ``(rep_id, audience)``.
    """
    for entry in entries.values():
        if entry["status"] == "skipped":
            print(f"skipped {terminal_safe(entry['rep_id'])} ({entry['audience']}): unchanged", file=sys.stderr)


#: a team of at least this many reps gets fresh workers for its overview pages (see _TaskRunner.fresh_worker);
#: a smaller team's index runs in a warm report worker, saving a worker start (~2-3 s)
FRESH_INDEX_WORKER_REPS = 200


class _TaskRunner:
    """Runs a batch's tasks in this process, on local worker processes (a :class:`WorkerPool`) or on a Dask cluster.

    A context manager: leaving it stops the local workers.

    Parameters
    ----------
    plan : BatchPlan
        ``scheduler``, ``jobs`` and ``engine`` are read.
    n_tasks : int
        Reports to run: no more local workers than that are started, and at most
        :data:`IN_PROCESS_MAX_TASKS` run in this process (see :func:`runs_in_process`).
    team_size : int
        Reps in the data (decides whether the index gets a fresh worker).
    pool : WorkerPool, optional
        A local pool started already (see :func:`_early_pool`): the reports run on it.

    Attributes
    ----------
    where : str
        Where the reports run, for the run's phase lines.
    """

    def __init__(self, plan: BatchPlan, n_tasks: int, team_size: int = 0, pool: WorkerPool | None = None):
        """Set up the pool (its workers start when tasks are run), unless the tasks run here or on Dask."""
        self.scheduler, self.engine = plan.scheduler, plan.engine
        self.jobs = max(1, plan.jobs or os.cpu_count() or 1)
        self.pool = pool
        self.in_process = pool is None and runs_in_process(plan.scheduler, n_tasks)
        self.fresh_index_worker = team_size >= FRESH_INDEX_WORKER_REPS
        if self.in_process:
            self.where = "in this process"
        elif plan.scheduler is not None:
            self.where = "on the Dask cluster"
        else:
            if self.pool is None:
                size = max(1, min(plan.jobs or os.cpu_count() or 1, max(n_tasks, 1)))
                self.pool = WorkerPool(size, engine=plan.engine, max_tasks_per_worker=MAX_TASKS_PER_WORKER)
            size = min(self.pool.size, max(n_tasks, 1))
            self.where = f"in {size} worker process{'es' if size > 1 else ''}"

    def __enter__(self):
        """Return the runner."""
        return self

    def __exit__(self, *exc):
        """Stop the local workers; exceptions propagate."""
        self.close()
        return False

    def run(self, tasks: list, on_done) -> None:
        """Run ``tasks`` and call ``on_done(task, result)`` for each, in this process.

        Parameters
        ----------
        tasks : list of dict
        on_done : callable
        """
        if self.in_process:
            run_in_process(tasks, on_done, self.engine)
        elif self.pool is None:
            _run_on_dask(self.scheduler, tasks, on_done)
        else:
            self.pool.run(tasks, on_done)

    def fresh_worker(self) -> None:
        """For the overview pages of a large team: replace the local workers by new ones, as many as the run's jobs.

        A report worker holds its imports, panels and caches (~390 MB at 1000 reps), and the
        overview's own work on top of that was a worker's peak; a new worker starts in a few
        seconds and holds only what the pages need (the managers' pages are rendered by all of
        them, 125 at 1,000 reps). A team under :data:`FRESH_INDEX_WORKER_REPS` reps keeps its
        warm workers (nothing changes in this process or on Dask).
        """
        if self.pool is not None and self.fresh_index_worker:
            self.pool.close()
            self.pool = WorkerPool(self.jobs, engine=self.engine)
            self.fresh_index_worker = False  # the manager pages' workers render the index too

    def close(self) -> None:
        """Stop the local workers."""
        if self.pool is not None:
            self.pool.close()


def _record_safely(plan: BatchPlan, entry: dict, task: dict, result: dict) -> None:
    """:func:`_record`, except that outputs that can't be written fail this entry only (and the batch goes on)."""
    try:
        _record(plan, entry, task, result)
    except (OSError, RefusedOutput) as exc:  # disk full, read-only, a link planted mid-run: this report fails
        _record_write_failure(plan, entry, exc)


def _report_done(plan: BatchPlan, state: _RunState, progress_bar: _Progress, task: dict, result: dict) -> None:
    """Record a finished report, checkpoint the manifest now and then, and show progress.

    A run killed midway leaves a manifest of the reports done so far, so ``resume`` skips them.

    Parameters
    ----------
    plan : BatchPlan
    state : _RunState
    progress_bar : _Progress
    task, result : dict
        As given to and returned by :func:`execute_task`.
    """
    entry = state.entries[task["key"]]
    _record_safely(plan, entry, task, result)
    now = time.monotonic()
    if state.last_checkpoint is None or now - state.last_checkpoint >= CHECKPOINT_SECONDS:
        try:
            _write_manifest(plan.manifest_path, _manifest(plan, state, done_only=True))
            state.last_checkpoint = now
        except CoachnbError:
            pass  # the final manifest write reports it
    progress_bar.done(entry)


def _overview_page(plan: BatchPlan, state: _RunState, manager: str = "", page: str = "") -> tuple[dict, dict]:
    """The manifest entry and task of the team overview (``manager`` "": every rep, ``index.html``),
    or of one manager's page (``page``, beside ``index.html`` so its links work)."""
    params = {"data_dir": str(plan.data_dir), "as_of": plan.as_of, "report_dir": str(plan.report_dir),
              "manifest_path": str(plan.manifest_path), "features": state.features_path, "manager": manager}
    if plan.lookback_weeks is not None:
        params["lookback_weeks"] = int(plan.lookback_weeks)
    params = {k: v for k, v in params.items() if k in plan.overview_declared}
    stem = f"team.{safe_filename(manager)}" if manager else "index"  # in the cache
    entry = {"rep_id": stem if manager else "index", "audience": "team", "manager": manager or None,
             "status": "pending", "duration_s": None, "html": page or f"{stem}.html", "ipynb": f"{stem}.ipynb",
             "log": f"logs/{stem}.log", "error": None, "failed_cell": None, "fingerprint": None}
    title = f"Team overview, {manager}'s reps, {plan.as_of}" if manager else f"Team overview, {plan.as_of}"
    task = {"key": f"overview:{manager}", "notebook": str(plan.overview_notebook), "parameters": params,
            "engine": plan.engine, "timeout": plan.timeout, "title": title}
    reason = refusal(plan, entry)
    if reason:
        entry.update(status="failed", duration_s=0.0, error=f"refused: {reason}", html=None, ipynb=None, log=None)
    return entry, task


def _render_pages(plan: BatchPlan, runner: _TaskRunner, pages: list[tuple[dict, dict]]) -> None:
    """Render overview pages (entries still pending) and record each one's outputs."""
    todo = {task["key"]: (entry, task) for entry, task in pages if entry["status"] == "pending"}
    if todo:
        runner.run([task for _, task in todo.values()],
                   lambda task, result: _record_safely(plan, todo[task["key"]][0], task, result))


def _complete_overview_rows(plan: BatchPlan, state: _RunState) -> None:
    """Keep every rep's overview row and the teams' activity effects with the feature store, before any page.

    Once per run (see :func:`coachnb.overview.complete_overview`): the rows the report tasks
    computed beside each report (:func:`_overview_row`) and those kept from an earlier run of
    the same store are used as they are, the others are computed here once; the index and the
    manager pages read them instead of each computing every rep's row and the team model fits.
    Failing is harmless: each page then computes what it doesn't find.
    """
    if plan.overview_notebook is None or not state.features_path or "features" not in plan.overview_declared:
        return
    entries = list(state.previous_by_key.values()) + list(state.entries.values())  # this run's rows last
    fresh = {str(e["rep_id"]): e["overview_row"] for e in entries if isinstance(e.get("overview_row"), dict)}
    _phase(plan, "index: the overview's rows")
    try:
        # lazy: coachnb.overview imports coachnb.report (~1 s), which a run on worker processes doesn't
        # otherwise need in this process
        from .overview import complete_overview

        complete_overview(state.features_path, plan.as_of, int(plan.lookback_weeks or 13), fresh)
    except Exception as exc:  # noqa: BLE001 - an optimisation: the pages compute any row they don't find
        print(f"coachnb: the overview's rows were not kept ({terminal_safe(type(exc).__name__)}: "
              f"{terminal_safe(str(exc)[:300])}); each overview page computes them", file=sys.stderr)


def _render_manager_pages(plan: BatchPlan, state: _RunState, runner: _TaskRunner) -> list[dict]:
    """One overview page per manager, when the data has more than one and the notebook takes ``manager``.

    The pages read the rows :func:`_complete_overview_rows` kept. Only the pages of the managers
    whose reps this run selected are rendered again (a one-rep run renders one page); another
    manager's page from an earlier run of the same date is kept.
    """
    if plan.overview_notebook is None or "manager" not in plan.overview_declared or state.dataset is None:
        return []
    reps = state.dataset.reps
    managers = sorted({str(m) for m in reps["manager"].dropna()})
    if len(managers) < 2:
        return []
    selected = {str(rep_id) for rep_id, _ in state.entries}
    touched = {str(m) for m in reps.loc[reps["rep_id"].astype(str).isin(selected), "manager"].dropna()}
    kept = {str(p.get("manager")): p for p in state.previous.get("manager_pages") or []
            if p.get("status") == "ok" and p.get("html") and (plan.report_dir / p["html"]).is_file()}
    names = manager_folders(managers)
    pages = [_overview_page(plan, state, m, f"{names[m]} — team overview {plan.as_of}.html")
             for m in managers if m in touched or m not in kept]
    previous = {str(p.get("manager")): p for p in state.previous.get("manager_pages") or []}
    for entry, _ in pages:  # a page renamed (the manager's name changed) replaces the old one
        _note_previous_page(entry, previous.get(entry["manager"]))
    if pages:
        if state.tasks:
            runner.fresh_worker()
        _phase(plan, f"index: rendering the pages of {len(pages)} manager(s)")
        _render_pages(plan, runner, pages)
    rendered = {entry["manager"]: entry for entry, _ in pages}
    return [rendered.get(m) or kept[m] for m in managers]


def _render_overview(plan: BatchPlan, state: _RunState, runner: _TaskRunner) -> dict | None:
    """Render the team overview into ``index.html`` (after the reports, manager pages and their manifest).

    Parameters
    ----------
    plan : BatchPlan
    state : _RunState
    runner : _TaskRunner
        The reports' runner; a local pool that ran reports is replaced by one fresh worker.

    Returns
    -------
    dict or None
        The overview's manifest entry; None when the plan has no overview notebook.
    """
    if plan.overview_notebook is None:
        return None
    entry, task = _overview_page(plan, state)
    if entry["status"] == "failed":
        return entry
    if state.tasks:
        runner.fresh_worker()
    _phase(plan, "index: rendering the team overview")
    _render_pages(plan, runner, [(entry, task)])
    return entry


# --------------------------------------------------------------------------- the run


def run_batch(data_dir, as_of, out="reports", reps=None, team=None, audience="manager", jobs=None,
              resume=False, scheduler=None, timeout=600, engine=None, *, notebook=None,
              overview_notebook=DEFAULT, dataset=None, lookback_weeks=None, progress=None,
              cache_dir=None) -> BatchResult:
    """Render one report per selected rep (and audience), then the team overview.

    Parameters
    ----------
    data_dir : str or Path
        Data folder (see :mod:`coachnb.schema`); passed to the notebooks as an absolute path.
    as_of : str or date
        Date of the coaching sessions, ``YYYY-MM-DD``; names the output folder.
    out : str or Path
        Parent of the per-date report folders; ``<out>/<as_of>`` gets the HTML pages and
        ``manifest.json`` only, and can be sent as it is.
    reps : list of str, optional
        Rep ids to render (ids unknown to the data fail, nothing runs for them).
    team : str, optional
        Render the reps of this team only.
    audience : {"manager", "rep", "both"}
    jobs : int, optional
        Worker processes (default: number of cores, at most one per report).
    resume : bool
        Skip reports whose fingerprint is unchanged and whose outputs exist.
    scheduler : str or distributed.Client, optional
        Address of a Dask scheduler: run the reports on that cluster instead of local workers.
    timeout : float
        Seconds one report may take (finite, above 0, at most a week; see :func:`check_timeout`);
        a report still running a few seconds later is killed.
    engine : str, optional
        Papermill engine: ``"coachnb_inprocess"`` (default), ``"papermill"`` (a Jupyter kernel
        per report, IPC transport), or the name of any registered papermill engine.
    notebook, overview_notebook : path, optional
        Rep report notebook and team overview notebook (default: the ones shipped with coachnb;
        ``overview_notebook=None`` skips the overview).
    dataset : Dataset, optional
        An already loaded dataset (skips loading ``data_dir``).
    lookback_weeks : int, optional
        Passed to the rep notebook when given (else the notebook's default applies).
    progress : bool, optional
        Force the progress bar on or off (default: on when stderr is a terminal).
    cache_dir : str or Path, optional
        Parent of the per-date cache folders (default ``<out>/.cache``): ``<cache_dir>/<as_of>``
        gets the feature store (every rep's records), the executed notebooks, the logs and the
        lock. It must not be inside the report folder.

    Returns
    -------
    BatchResult
        ``ok`` is False when any report or the overview failed, or the data is invalid.

    Notes
    -----
    The arguments become a :class:`BatchPlan`; the steps then are :func:`_input_dataset`,
    :func:`_select_reps`, and under the report folder's lock :func:`_run_locked`.
    """
    plan = BatchPlan.from_arguments(data_dir, as_of, out, reps, team, audience, jobs, resume, scheduler, timeout,
                                    engine, notebook, overview_notebook, lookback_weeks, progress, cache_dir)
    pool = _early_pool(plan)  # warms up while the data is loaded and the store built
    try:
        try:
            dataset = _input_dataset(plan, dataset)
        except DataError as exc:
            print(f"coachnb: the data at {plan.data_dir} is invalid; no report was rendered.\n{exc}", file=sys.stderr)
            return BatchResult(ok=False, error=str(exc), duration_s=time.perf_counter() - plan.started)
        # a date whose weeks run past the data would read as zeros in every report: refused before any work
        check_as_of_covered(resolve_as_of(plan.as_of, dataset), dataset)
        selected, unknown = _select_reps(dataset, plan.reps, plan.team, plan.as_of)
        with _report_dir_lock(plan):
            return _run_locked(plan, dataset, selected, unknown, pool)
    finally:
        if pool is not None:
            pool.close()


def _early_pool(plan: BatchPlan) -> WorkerPool | None:
    """The local worker pool of a run that will need one, started now (see :meth:`WorkerPool.start`).

    Its workers start and warm up (~2-3 s) while the parent loads the data and builds the feature
    store, instead of after.

    Parameters
    ----------
    plan : BatchPlan

    Returns
    -------
    WorkerPool or None
        None for a run on Dask, and for one asking for so few reports that they may render in
        this process (see :func:`runs_in_process`); the pool then starts, if at all, once the
        reports to run are known.
    """
    if plan.scheduler is not None:
        return None
    if plan.reps is not None and len({str(r) for r in plan.reps}) * len(plan.audiences) <= IN_PROCESS_MAX_TASKS:
        return None
    pool = WorkerPool(max(1, plan.jobs or os.cpu_count() or 1), engine=plan.engine,
                      max_tasks_per_worker=MAX_TASKS_PER_WORKER)
    pool.start()
    return pool


def _run_locked(plan: BatchPlan, dataset, selected: list, unknown: list, pool=None) -> BatchResult:
    """The steps of a run that write into the report and cache folders (the cache's lock is held).

    Clears stale temporary files, builds (or reuses) the feature store, works out which reports
    run and which are skipped, runs them, writes the manifest, renders the overview, then writes
    the final manifest and prints the summary.

    Parameters
    ----------
    plan : BatchPlan
    dataset : Dataset
    selected : list of dict
    unknown : list of str
        See :func:`_select_reps`.
    pool : WorkerPool, optional
        Started already (see :func:`_early_pool`); the reports run on it.

    Returns
    -------
    BatchResult
    """
    _remove_stale_temporaries(plan)
    _warn_old_layout(plan.report_dir)
    state = _RunState(notebook_sha=_sha256(plan.notebook.read_bytes()),
                      data_fingerprint=getattr(dataset, "fingerprint", "") or "",
                      previous=_read_manifest(plan.manifest_path), dataset=dataset)
    state.features_path = _feature_store(plan, dataset)
    state.entries, state.tasks = _work_out_tasks(plan, state, selected, unknown)

    progress_bar = _Progress(len(state.tasks), plan.progress)
    if progress_bar.bar is None and plan.progress is not False:
        _print_skipped(state.entries)
    with _TaskRunner(plan, len(state.tasks), len(dataset.reps), pool) as runner:
        skipped = sum(e["status"] == "skipped" for e in state.entries.values())
        _phase(plan, f"reports: rendering {len(state.tasks)} {runner.where}"
                     + (f" ({skipped} unchanged, skipped)" if skipped else ""))
        try:
            if state.tasks:
                runner.run(state.tasks, functools.partial(_report_done, plan, state, progress_bar))
        finally:
            progress_bar.close()
        manifest = _manifest(plan, state, done_only=False)
        _write_manifest(plan.manifest_path, manifest)
        _complete_overview_rows(plan, state)
        manifest["manager_pages"] = _render_manager_pages(plan, state, runner)
        if manifest["manager_pages"]:
            _write_manifest(plan.manifest_path, manifest)  # the index links the pages written
        overview = _render_overview(plan, state, runner)
    return _finish(plan, state, manifest, overview)


# --------------------------------------------------------------------------- manifest and result


def _manifest(plan: BatchPlan, state: _RunState, done_only: bool) -> dict:
    """The manifest of the run so far (``finished_at`` and ``ok`` still None).

    Reports of reps outside this run's selection stay in the manifest (the index links them).

    Parameters
    ----------
    plan : BatchPlan
    state : _RunState
    done_only : bool
        Leave out this run's reports still pending (a checkpoint while reports run).

    Returns
    -------
    dict
    """
    merged = dict(state.previous_by_key)
    merged.update({k: e for k, e in state.entries.items() if not done_only or e["status"] != "pending"})
    # a report's overview row goes to the feature store (_complete_overview_rows), not the manifest
    ordered = [{f: v for f, v in merged[k].items() if f != "overview_row"}
               for k in sorted(merged, key=lambda k: (str(k[0]), str(k[1])))]
    return {
        "format": MANIFEST_FORMAT, "coachnb_version": __version__, "as_of": plan.as_of,
        "data_dir": str(plan.data_dir), "cache_dir": str(plan.cache_dir), "data_fingerprint": state.data_fingerprint,
        "notebook": str(plan.notebook), "notebook_sha256": state.notebook_sha, "engine": plan.engine,
        "started_at": plan.started_at, "finished_at": None, "ok": None,
        "reports": ordered, "overview": state.previous.get("overview"),
    }


def _finish(plan: BatchPlan, state: _RunState, manifest: dict, overview: dict | None) -> BatchResult:
    """Write the final manifest (overview, ``ok``, ``finished_at``), print the summary, return the result.

    Parameters
    ----------
    plan : BatchPlan
    state : _RunState
    manifest : dict
        As written after the reports ran.
    overview : dict or None
        The overview's entry.

    Returns
    -------
    BatchResult
    """
    run_entries = list(state.entries.values())
    reports_ok = all(e["status"] in ("ok", "skipped", "inactive") for e in run_entries)
    pages_ok = all(p["status"] == "ok" for p in manifest.get("manager_pages") or [])
    ok = reports_ok and pages_ok and (overview is None or overview["status"] == "ok")
    manifest.update(overview=overview, ok=ok, finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    _write_manifest(plan.manifest_path, manifest)
    result = BatchResult(ok=ok, report_dir=plan.report_dir, manifest_path=plan.manifest_path, reports=run_entries,
                         overview=overview, duration_s=round(time.perf_counter() - plan.started, 3))
    _print_summary(result)
    return result


def _record(plan: BatchPlan, entry: dict, task: dict, result: dict) -> None:
    """Write one task's outputs (only when it succeeded) and log, and fill its manifest entry.

    The HTML goes to the report folder (its size and SHA-256 into the entry, for ``resume``),
    the executed notebook and the log to the cache folder. A failed report leaves the previous
    good one in place: the entry points at it, marked ``stale_html``; the executed notebook of
    the failed run goes next to the log.

    Parameters
    ----------
    plan : BatchPlan
    entry : dict
        The report's manifest entry, updated in place.
    task : dict
        The task that ran.
    result : dict
        What :func:`execute_task` (or :func:`_failure`) returned.

    Raises
    ------
    OSError, RefusedOutput
        When a file can't be written (see :func:`_record_safely`).
    """
    entry["duration_s"] = result.get("duration_s")
    log_lines = [
        f"report: {entry['rep_id']} ({entry['audience']})",
        f"notebook: {task['notebook']}",
        f"engine: {plan.engine}",
        f"parameters: {json.dumps(task['parameters'], ensure_ascii=False)}",
        f"finished: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"duration: {result.get('duration_s')} s",
        f"status: {result['status']}",
    ]
    if result.get("pid"):
        log_lines.append(f"worker process: {result['pid']}")
    if result["status"] == "ok":
        atomic_write_text(output_path(plan.cache_dir, entry["ipynb"]), result["ipynb"])
        page = result["html"].encode("utf-8")
        atomic_write_bytes(output_path(plan.report_dir, entry["html"]), page)
        entry.update(status="ok", error=None, failed_cell=None, html_bytes=len(page), html_sha256=_sha256(page))
        entry.pop("stale_html", None)
        _retire_previous_page(plan, entry)
        if result.get("overview_row"):
            entry["overview_row"] = result["overview_row"]
    else:
        log_lines += _record_failure(plan, entry, result)
    if result.get("stderr"):
        log_lines.append(f"stderr:\n{result['stderr']}")
    atomic_write_text(output_path(plan.cache_dir, entry["log"]), "\n".join(log_lines) + "\n")


def _record_failure(plan: BatchPlan, entry: dict, result: dict) -> list[str]:
    """Fill a failed report's entry (the last good report stays, marked stale) and keep its executed notebook.

    Parameters
    ----------
    plan : BatchPlan
    entry : dict
        Updated in place.
    result : dict
        The failed result.

    Returns
    -------
    list of str
        Lines for the report's log.
    """
    entry.update(status="failed", error=result.get("error") or "unknown error", failed_cell=result.get("failed_cell"))
    _keep_stale_outputs(plan, entry)
    lines = [f"error: {entry['error']}"]
    if entry["failed_cell"]:
        lines.append(f"failing cell {entry['failed_cell']['index']}:\n{entry['failed_cell']['source']}")
    if result.get("traceback"):
        lines.append(f"traceback:\n{result['traceback']}")
    if result.get("ipynb"):
        failed_nb = failed_notebook_name(entry["log"])
        atomic_write_text(output_path(plan.cache_dir, failed_nb), result["ipynb"])
        lines.append(f"executed notebook of the failed run (in the cache folder): {failed_nb}")
    return lines


def _keep_stale_outputs(plan: BatchPlan, entry: dict) -> None:
    """Point a failed entry at the previous run's outputs still in place (None where there are none), marked stale.

    Parameters
    ----------
    plan : BatchPlan
    entry : dict
        Updated in place.
    """
    previous = entry.pop("previous_html", None)
    if previous and not odd_entry(plan.report_dir, previous["html"]) and (plan.report_dir / previous["html"]).is_file():
        # the last good report has the name the previous run gave it; a later success removes it
        entry.update(html=previous["html"], previous_html=previous)
    for key, base in (("html", plan.report_dir), ("ipynb", plan.cache_dir)):
        if entry.get(key) and (odd_entry(base, entry[key]) or not (base / entry[key]).is_file()):
            entry[key] = None
    entry.pop("html_bytes", None)
    entry.pop("html_sha256", None)
    entry["stale_html"] = entry.get("html") is not None


def _write_manifest(path: Path, manifest: dict) -> None:
    """Write ``manifest`` as JSON to ``path``, atomically.

    Parameters
    ----------
    path : Path
    manifest : dict

    Raises
    ------
    CoachnbError
        When it can't be written.
    """
    try:
        atomic_write_text(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise CoachnbError(f"cannot write {path}: {exc.strerror or exc}") from None


def _record_write_failure(plan: BatchPlan, entry: dict, exc: Exception) -> None:
    """Mark an entry failed because its outputs could not be written; earlier files stay as they are.

    Parameters
    ----------
    plan : BatchPlan
    entry : dict
        Updated in place; its log gets the error if it can be written.
    exc : OSError or RefusedOutput
        What went wrong.
    """
    entry.update(status="failed", error=f"could not write the report: {exc}", failed_cell=None)
    _keep_stale_outputs(plan, entry)
    try:  # best effort: the log may not fit on a full disk either
        atomic_write_text(output_path(plan.cache_dir, entry["log"]), f"status: failed\nerror: {entry['error']}\n")
    except (OSError, ValueError, TypeError):
        pass


def _print_summary(result: BatchResult) -> None:
    """Print the run's counts by status and each failure (with its cell) on stderr.

    Parameters
    ----------
    result : BatchResult
    """
    counts = {}
    for e in result.reports:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no reports"
    print(f"coachnb: {parts} in {result.duration_s:.1f} s -> {terminal_safe(result.report_dir)}", file=sys.stderr)
    idle = sorted({str(e["rep_id"]) for e in result.reports if e["status"] == "inactive"})
    if idle:
        print(f"  WARNING {len(idle)} rep(s) with no record in the period, no report written: "
              f"{terminal_safe(', '.join(idle[:20]))}{' ...' if len(idle) > 20 else ''}", file=sys.stderr)
    for e in result.failed:
        where = f" (cell {e['failed_cell']['index']})" if e.get("failed_cell") else ""
        kept = "; previous report kept" if e.get("stale_html") else ""
        print(f"  FAILED {terminal_safe(e['rep_id'])} ({e['audience']}){where}: {terminal_safe(e['error'])}{kept}",
              file=sys.stderr)
    if result.overview and result.overview["status"] == "failed":
        print(f"  FAILED team overview: {terminal_safe(result.overview['error'])}", file=sys.stderr)


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:  # pragma: no cover - a _CommandWorker
    raise SystemExit(_serve_main(sys.argv[2:]))
