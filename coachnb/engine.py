"""Papermill engines for batch runs: an in-process engine and an IPC-transport kernel manager.

:class:`InProcessEngine` runs a notebook's cells in the *current* Python process, in a fresh
IPython namespace, instead of starting a Jupyter kernel per report. It records outputs the way
a kernel would (streams, ``display`` data, the value of a cell's last expression, inline
matplotlib figures, errors), so the executed notebook renders to the same HTML as a cold kernel
run; it saves the 1-2 s a kernel start costs and the ZeroMQ round trips.

It is registered with papermill under the name ``coachnb_inprocess`` (entry point in
``pyproject.toml``)::

    papermill.execute_notebook("in.ipynb", "out.ipynb", parameters={...},
                               engine_name="coachnb_inprocess")

Isolation is per *namespace*, not per process: every run starts with an empty user namespace
and restored matplotlib rc, warning filters, environment variables and working directory, but
modules stay imported. The batch runner therefore runs it inside worker processes it can kill.

:class:`IPCKernelManager` is for the standard kernel engine: kernels listen on Unix domain
sockets in a private temporary directory, so parallel kernel starts cannot race for TCP ports
(papermill issue #511).
"""
from __future__ import annotations

import atexit
import base64
import copy
import ctypes
import ctypes.util
import gc
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import warnings

# jsonschema (imported by nbformat, imported by papermill) compiles an Earley grammar for IRIs on
# import when the optional rfc3987-syntax package is installed: 0.8 s, 40 % of the start-up of
# every process that renders (the CLI, each pool worker, each Dask worker). No nbformat schema
# checks an IRI, so while jsonschema is first imported here that package is treated as absent
# (jsonschema's own behaviour when it is not installed: "iri" formats go unchecked).
_SKIP_IRI_GRAMMAR = "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules
if _SKIP_IRI_GRAMMAR:
    sys.modules["rfc3987_syntax"] = None  # an import of it now raises ImportError
try:
    # papermill imports its engine entry points while it is itself being imported, and ours points
    # back at this module. If this module is imported first, step aside so that papermill imports a
    # complete copy of it; that copy then stands in sys.modules and is what importers receive.
    if "papermill.engines" not in sys.modules:  # pragma: no cover - depends on import order
        _this = sys.modules.pop(__name__)
        try:
            import papermill.engines  # noqa: F401
        finally:
            sys.modules.setdefault(__name__, _this)

    import nbformat
    from jupyter_client.manager import KernelManager
    from jupyter_client.utils import run_sync
    from papermill.engines import Engine, NotebookExecutionManager, papermill_engines  # noqa: F401
    from papermill.log import logger
finally:
    if _SKIP_IRI_GRAMMAR and sys.modules.get("rfc3987_syntax", 0) is None:
        del sys.modules["rfc3987_syntax"]

ENGINE_NAME = "coachnb_inprocess"

#: What a Python kernel reports as ``language_info``, so notebooks look alike either way.
LANGUAGE_INFO = {
    "name": "python",
    "version": sys.version.split()[0],
    "mimetype": "text/x-python",
    "codemirror_mode": {"name": "ipython", "version": 3},
    "pygments_lexer": "ipython3",
    "nbconvert_exporter": "python",
    "file_extension": ".py",
}


class CellTimeoutError(TimeoutError):
    """A cell ran longer than the engine's ``execution_timeout``."""


# --------------------------------------------------------------------------- kernel transport


class IPCKernelManager(KernelManager):
    """A kernel manager whose kernel listens on Unix domain sockets in a private directory.

    With TCP, ``jupyter_client`` picks free ports by binding and releasing them, so kernels
    started at the same moment by parallel workers can pick the same port. Socket files in a
    fresh directory per kernel cannot collide. Pass it to papermill's standard engine::

        papermill.execute_notebook(..., kernel_manager_class="coachnb.engine.IPCKernelManager")
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Short path: a Unix socket path must fit in ~100 bytes.
        self._ipc_dir = tempfile.mkdtemp(prefix="cnbk-", dir="/tmp" if os.path.isdir("/tmp") else None)
        self.transport = "ipc"
        self.ip = os.path.join(self._ipc_dir, "k")

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)

    cleanup_resources = run_sync(_async_cleanup_resources)


# --------------------------------------------------------------------------- output capture


def _json_clean(data: dict) -> dict:
    """What a kernel's JSON messages would turn ``data`` into (bytes as base64 text)."""

    def default(obj):
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(obj)).decode("ascii")
        if isinstance(obj, (set, frozenset, tuple)):
            return list(obj)
        return repr(obj)

    return json.loads(json.dumps(data, default=default))


_OUTPUT_DEFAULTS = {
    "stream": {"name": "stdout", "text": ""},
    "display_data": {"metadata": {}, "data": {}},
    "execute_result": {"metadata": {}, "data": {}, "execution_count": None},
    "error": {"ename": "NotImplementedError", "evalue": "", "traceback": []},
}


def _new_output(output_type: str, **fields):
    """``nbformat.v4.new_output`` without its per-output schema validation (dozens per report);
    the whole notebook is validated once when papermill writes it."""
    out = {"output_type": output_type, **copy.deepcopy(_OUTPUT_DEFAULTS[output_type]), **fields}
    return nbformat.from_dict(out)


class _OutputSink:
    """Collects the outputs of the cell being executed, in order."""

    def __init__(self):
        self.outputs: list | None = None
        self._clear_pending = False
        self._display_ids: dict[str, list] = {}

    def begin(self, outputs: list) -> None:
        self.outputs = outputs
        self._clear_pending = False

    def end(self) -> None:
        self.outputs = None

    def _append(self, output) -> None:
        if self.outputs is None:
            return
        if self._clear_pending:
            self.outputs.clear()
            self._clear_pending = False
        self.outputs.append(output)

    def stream(self, name: str, text: str) -> None:
        if self.outputs is None or not text:
            return
        if self._clear_pending:
            self.outputs.clear()
            self._clear_pending = False
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last.get("output_type") == "stream" and last.get("name") == name:
            last["text"] += text
        else:
            self.outputs.append(_new_output("stream", name=name, text=text))

    def display(self, data, metadata=None, transient=None, update=False) -> None:
        data = _json_clean(data)
        metadata = _json_clean(metadata or {})
        display_id = (transient or {}).get("display_id")
        if update and display_id:
            for out in self._display_ids.get(display_id, []):
                out["data"], out["metadata"] = copy.deepcopy(data), copy.deepcopy(metadata)
            return
        out = _new_output("display_data", data=data, metadata=metadata)
        if display_id:
            self._display_ids.setdefault(display_id, []).append(out)
        self._append(out)

    def execute_result(self, data, metadata, execution_count) -> None:
        self._append(_new_output(
            "execute_result", data=_json_clean(data), metadata=_json_clean(metadata or {}),
            execution_count=execution_count))

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        self._append(_new_output("error", ename=ename, evalue=evalue, traceback=list(traceback)))

    def clear(self, wait: bool = False) -> None:
        if self.outputs is None:
            return
        if wait:
            self._clear_pending = True
        else:
            self.outputs.clear()


class _StreamWriter:
    """Stands in for ``sys.stdout``/``sys.stderr`` while a cell runs."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, sink: _OutputSink, name: str):
        self._sink = sink
        self.name = name

    def write(self, text) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._sink.stream(self.name, text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("in-process notebook output has no file descriptor")


_SHELL = None
_SHELL_LOCK = threading.Lock()


def _make_shell():
    """Create this process's IPython shell, wired to an :class:`_OutputSink` (once)."""
    # imported on use: only a process that renders a notebook builds a shell
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    sink = _OutputSink()

    class CapturingDisplayPublisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            sink.display(data, metadata, transient=transient, update=update)

        def clear_output(self, wait=False):
            sink.clear(wait)

    class CapturingDisplayHook(DisplayHook):
        def start_displayhook(self):
            self._format = None

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            self._format = (format_dict, md_dict)

        def finish_displayhook(self):
            if self._format is not None:
                sink.execute_result(self._format[0], self._format[1], self.prompt_count)
            self._format = None

        def flush(self):
            # IPython's flush (called by every shell.reset) ends with a full gc.collect(), which
            # walks every object of the process: ~0.3 s per call in a worker holding a feature
            # store, twice per report. The engine collects once per run instead (_collect).
            collect, gc.collect = gc.collect, _no_collect
            try:
                super().flush()
            finally:
                gc.collect = collect

    class CapturingShell(InteractiveShell):
        display_pub_class = CapturingDisplayPublisher
        displayhook_class = CapturingDisplayHook

        def _showtraceback(self, etype, evalue, stb):
            sink.error(etype.__name__, str(evalue), stb)

        def enable_gui(self, gui=None):  # an in-process engine has no event loop to hook
            pass

    config = Config()
    config.HistoryManager.enabled = False  # no sqlite history shared by parallel workers
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    ipython_dir = tempfile.mkdtemp(prefix="coachnb-ipython-")  # no user startup files, no shared state
    atexit.register(shutil.rmtree, ipython_dir, True)  # multiprocessing workers call cleanup() instead
    shell = CapturingShell.instance(config=config, ipython_dir=ipython_dir)
    shell.sink = sink
    try:
        shell.enable_matplotlib("inline")
    except ImportError:  # matplotlib is optional for notebooks that draw nothing
        pass
    shell._coachnb_rc = _matplotlib_rc()
    return shell


def _no_collect(generation=2):
    return 0


_LIBC = None


def _malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc only; a no-op elsewhere)."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def _collect() -> None:
    """Free what a run left behind: cyclic garbage, pyarrow's and malloc's cached free memory.

    Objects alive before the first run (imports, the shell) are frozen once (``gc.freeze``), so
    this full collection only walks what runs created since, not the whole process.
    """
    gc.collect()
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        try:
            pa.default_memory_pool().release_unused()
        except Exception:  # noqa: BLE001 - best effort
            pass
    _malloc_trim()


def freeze_baseline() -> None:
    """Collect, then move every object alive now out of the collector's sight (``gc.freeze``).

    A worker calls this once it is warm: imported modules, the shell and the exporter live as long
    as the process, and each later collection then skips them.
    """
    gc.collect()
    gc.freeze()


def _matplotlib_rc():
    mpl = sys.modules.get("matplotlib")
    return copy.deepcopy(dict(mpl.rcParams)) if mpl is not None else None


def get_shell():
    """The IPython shell the in-process engine runs cells in (one per process)."""
    global _SHELL
    with _SHELL_LOCK:
        if _SHELL is None:
            # IPython puts its own stand-in module at sys.modules["__main__"]; the host process
            # (a worker, or pytest) keeps its real one, or multiprocessing can't spawn from it
            main = sys.modules.get("__main__")
            _SHELL = _make_shell()
            if main is not None:
                sys.modules["__main__"] = main
        return _SHELL


def foreign_shell() -> bool:
    """Whether this process runs an IPython shell that is not the engine's (Jupyter, IPython).

    The engine's shell is a process-wide singleton that takes over display and matplotlib, so
    notebooks are not executed in such a process (the batch then uses worker processes).

    Returns
    -------
    bool
    """
    ipython = sys.modules.get("IPython")
    current = ipython.get_ipython() if ipython is not None else None
    return current is not None and current is not _SHELL


class _ProcessState:
    """Snapshot of process-wide state a notebook may change; restored after each run."""

    def __init__(self, shell):
        self.shell = shell
        self.cwd = os.getcwd()
        self.environ = dict(os.environ)
        self.warning_filters = list(warnings.filters)
        self.sys_path = list(sys.path)
        self.stdout, self.stderr = sys.stdout, sys.stderr
        self.main = sys.modules.get("__main__")

    def restore(self) -> None:
        sys.stdout, sys.stderr = self.stdout, self.stderr
        if self.main is not None:
            sys.modules["__main__"] = self.main
        if os.getcwd() != self.cwd:
            os.chdir(self.cwd)
        os.environ.clear()
        os.environ.update(self.environ)
        warnings.filters[:] = self.warning_filters
        warnings._filters_mutated()
        sys.path[:] = self.sys_path
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close("all")
        rc = getattr(self.shell, "_coachnb_rc", None)
        mpl = sys.modules.get("matplotlib")
        if mpl is not None and rc is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mpl.rcParams.update(rc)


class _CellTimer:
    """Raise :class:`CellTimeoutError` in the main thread after ``seconds`` (SIGALRM)."""

    def __init__(self, seconds: float | None):
        usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        self.seconds = seconds if (seconds and usable) else None

    def __enter__(self):
        if self.seconds:
            seconds = self.seconds

            def on_alarm(signum, frame):
                raise CellTimeoutError(f"cell execution timed out after {seconds:g} s")

            self._previous = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, seconds)
        return self

    def __exit__(self, *exc):
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
        return False


# --------------------------------------------------------------------------- the engine


class InProcessEngine(Engine):
    """Papermill engine that executes cells in this process, in a fresh IPython namespace.

    Engine keyword arguments (from ``papermill.execute_notebook(..., **engine_kwargs)``):

    execution_timeout : float, optional
        Seconds one cell may run (like papermill's standard engine). Enforced with ``SIGALRM``
        when running in the main thread; a cell blocked in C code or ignoring the signal must be
        stopped from outside (the batch runner kills the worker process).
    log_output : bool
        Echo cell outputs to papermill's logger.
    """

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, execution_timeout=None,
                                 **kwargs):
        shell = get_shell()
        sink = shell.sink
        state = _ProcessState(shell)
        nb = nb_man.nb
        shell.reset(new_session=True)
        shell.execution_count = 1
        shell.user_ns["__name__"] = "__main__"
        sink._display_ids.clear()
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # a kernel imports modules next to the notebook
        try:
            for index, cell in enumerate(nb.cells):
                nb_man.cell_start(cell, index)
                failed = False
                try:
                    if cell.cell_type == "code" and cell.source.strip():
                        failed = not cls._run_cell(shell, sink, cell, execution_timeout)
                        if log_output:
                            cls._log_outputs(cell)
                        if failed:
                            nb_man.cell_exception(cell, cell_index=index)
                finally:
                    nb_man.cell_complete(cell, cell_index=index)
                if failed:
                    break
            nb.metadata["language_info"] = dict(LANGUAGE_INFO)
        finally:
            sink.end()
            shell.reset(new_session=True)  # drop the run's objects now, not at the next run
            state.restore()
            _collect()
        return nb

    @staticmethod
    def _run_cell(shell, sink, cell, execution_timeout) -> bool:
        cell.outputs = []
        sink.begin(cell.outputs)
        count = shell.execution_count
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _StreamWriter(sink, "stdout"), _StreamWriter(sink, "stderr")
        try:
            with _CellTimer(execution_timeout):
                result = shell.run_cell(cell.source, store_history=True)
        finally:
            sys.stdout, sys.stderr = saved
            sink.end()
        cell.execution_count = count
        return bool(result.success)

    @staticmethod
    def _log_outputs(cell) -> None:
        for out in cell.outputs:
            if out.output_type == "stream":
                logger.info(out.text.rstrip("\n"))
            elif out.output_type in ("display_data", "execute_result") and "text/plain" in out.data:
                logger.info(out.data["text/plain"])
            elif out.output_type == "error":
                logger.info(f"{out.ename}: {out.evalue}")


def cleanup() -> None:
    """Remove the shell's temporary IPython directory (worker processes exit without atexit)."""
    if _SHELL is not None:
        shutil.rmtree(_SHELL.ipython_dir, ignore_errors=True)


def register() -> None:
    """Register :class:`InProcessEngine` with papermill (when the entry point is not visible)."""
    if papermill_engines._engines.get(ENGINE_NAME) is not InProcessEngine:
        papermill_engines.register(ENGINE_NAME, InProcessEngine)
