"""Warm interpreters for stage processes: import torch/transformers once per `make repro`, fork per stage.

DVC runs every stage as a fresh ``python stages/<stage>.py ...`` process, and each spends seconds importing
torch, transformers, datasets and scikit-learn before doing any work: on the 2-core VM that is 2-5 s for each
of the default profile's ~25 torch stages, and most of the time of the test suite's toy pipelines.
``scripts/repro.py`` (``make repro``) therefore starts one server that imports those libraries (never this
project's code, never CUDA, never a thread pool) and waits; it passes the server's socket to ``dvc repro`` as
``TEXTCLS_WARM_SOCKET``. A stage script hands itself off when it imports :mod:`textcls.cli` (its first import
of this package): the server forks a copy of itself, which takes the stage's argv, working folder, environment
and stdin/stdout/stderr (the descriptors themselves, passed over the socket), runs the script as ``__main__``
and reports its exit status, which the stage process exits with. The stage's own code is imported fresh in
every fork, so it is exactly the code a cold process would run.

The hand-off is refused, and the stage runs in its own process as usual, whenever it could change a result:
another interpreter, or an environment that differs from the server's in anything but DVC's per-stage
variables (libraries read variables such as ``HF_HUB_OFFLINE`` when imported). Without the variable (plain
``dvc repro``, ``dvc exp run``, a queue worker) nothing changes. Processes started by a handed-off stage
(``accelerate launch``, the memory probe) run cold: ``TEXTCLS_WARM_CHILD`` is set in its environment.

    python -m textcls.warm serve SOCKET    # what scripts/repro.py starts; ends when its stdin closes

Only the standard library is imported here: the stage process must start in milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

SOCKET_ENV = "TEXTCLS_WARM_SOCKET"
CHILD_ENV = "TEXTCLS_WARM_CHILD"
# libraries the stages import at module level or soon after; a missing one is skipped
PRELOAD = ("numpy", "pandas", "pyarrow", "pyarrow.parquet", "scipy.special", "scipy.stats", "yaml",
           "sklearn.linear_model", "sklearn.feature_extraction.text", "sklearn.metrics", "torch", "safetensors.torch",
           "transformers", "datasets", "accelerate", "dvclive")  # not onnxruntime: it starts a thread at import
PRELOAD_ATTRS = ("AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification", "AutoModelForCausalLM",
                 "DataCollatorWithPadding", "Trainer", "TrainingArguments", "TrainerCallback")
# set by DVC per stage (dvc/stage/run.py) or by the shell; they differ between stages and no library reads them
VOLATILE_ENV = ("DVC_STAGE", "DVC_ROOT", "_", "PWD", "OLDPWD", "SHLVL", SOCKET_ENV)
MAX_MESSAGE = 1 << 20


def comparable_env(env: dict) -> dict:
    """The environment without the variables that differ between stages of one run (DVC's, the shell's)."""
    return {k: v for k, v in env.items() if k not in VOLATILE_ENV and not k.startswith("DVC_EXP")}


def _is_stage_script(main) -> bool:
    path = getattr(main, "__file__", None)
    return bool(path) and Path(path).parent.name == "stages" and Path(path).suffix == ".py"


def handoff() -> None:
    """In a stage process under ``make repro``: run this stage in a fork of the warm server and exit with its
    status. A no-op anywhere else, and whenever the server is absent, busy starting or refuses."""
    address = os.environ.get(SOCKET_ENV)
    if not address or os.environ.get(CHILD_ENV) or not _is_stage_script(sys.modules.get("__main__")):
        return
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(address)
    except OSError:
        return  # no server (yet): run here
    with conn:
        request = {"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "executable": sys.executable,
                   "path": sys.path[1:]}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        try:
            socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
            reader = conn.makefile("r", encoding="utf-8")
            line = reader.readline()
        except OSError:
            return
        first = line.split()
        if first[:1] == ["refused"]:  # say why this stage pays the cold start (e.g. which variable changed)
            print(f"textcls.warm: this stage runs in its own interpreter: {line.strip()[len('refused '):]}",
                  file=sys.stderr)
        if not first or first[0] != "pid":
            return  # refused (or the server went away before starting it): run here
        pid = int(first[1])

        def forward(signum, _frame):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, forward)
        try:
            last = reader.readline().split()
        except OSError:
            last = []
    if len(last) == 2 and last[0] == "exit":
        os._exit(int(last[1]))
    print("error: the warm interpreter running this stage ended without an exit status. "
          f"Fix: rerun without it ({SOCKET_ENV}= dvc repro).", file=sys.stderr)
    os._exit(1)


# --------------------------------------------------------------------------------------------- server side
def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds = b"", []
    while not data.endswith(b"\n"):
        chunk, new_fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
        fds += new_fds
        if not chunk or len(data) > MAX_MESSAGE:
            raise ConnectionError("incomplete request")
        data += chunk
    return json.loads(data), fds


def refusal(request: dict, server_env: dict) -> str | None:
    """Why this server must not run ``request`` (None: it may)."""
    if request.get("executable") != sys.executable:
        return f"another interpreter ({request.get('executable')})"
    if request.get("path") != sys.path[1:]:
        return "another sys.path"
    ours, theirs = comparable_env(server_env), comparable_env(request.get("env", {}))
    if ours != theirs:
        changed = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        return f"another environment ({', '.join(changed[:5])})"
    return None


def _exit_code(err: SystemExit) -> int:
    if err.code is None:
        return 0
    if isinstance(err.code, int):
        return err.code
    print(err.code, file=sys.stderr)
    return 1


def _run_stage(request: dict, fds: list[int], closing: list, added: dict) -> None:
    """In the grandchild: become the stage process and run its script; never returns."""
    import io
    import threading
    import traceback
    import types

    for sock in closing:
        sock.close()
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        os.close(fd)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=sys.stdin.encoding)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=sys.stdout.encoding,
                                  line_buffering=os.isatty(1))
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding=sys.stderr.encoding,
                                  errors="backslashreplace", line_buffering=True)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.update(added)
    os.environ[CHILD_ENV] = "1"
    script = os.path.join(request["cwd"], request["argv"][0])
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    main = types.ModuleType("__main__")  # what `python SCRIPT` runs the script as
    main.__dict__.update(__file__=os.path.abspath(script), __builtins__=__builtins__, __spec__=None, __loader__=None)
    sys.modules["__main__"] = main
    try:
        with open(script, "rb") as f:
            source = f.read()
        exec(compile(source, main.__file__, "exec"), main.__dict__)
        code = 0
    except SystemExit as err:
        code = _exit_code(err)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:  # what the interpreter prints for an uncaught exception
        traceback.print_exc()
        code = 1
    # what interpreter shutdown does: wait for non-daemon threads, run atexit handlers, flush
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    import atexit
    import logging

    logging.shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if 0 <= code < 256 else 1)


def _supervise(conn: socket.socket, listener: socket.socket, server_env: dict, added: dict) -> None:
    """In the child of the server, one per request: check it, fork the stage, report its pid and then its exit
    status; kill the stage if the stage process that asked goes away. Never returns."""
    import select

    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server ignores it; waitpid needs it back
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the stage itself: keep reporting its status
        request, fds = _recv_request(conn)
        why = refusal(request, server_env)
        if why is not None:
            conn.sendall(f"refused {why}\n".encode())
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            _run_stage(request, fds, [conn, listener], added)
        for fd in fds:
            os.close(fd)
        conn.sendall(f"pid {pid}\n".encode())
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                code = 128 - code if code < 0 else code  # killed by a signal: the shell's convention
                break
            readable, _, _ = select.select([conn], [], [], 0.2)
            if readable and not conn.recv(1, socket.MSG_PEEK):  # the stage process went away: stop its work
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
                os._exit(1)
        conn.sendall(f"exit {code}\n".encode())
    except BaseException:  # noqa: BLE001 - a supervisor must never return into the server's loop
        pass
    os._exit(0)


def import_each(names) -> list[str]:
    """Import each module in ``names`` that imports; returns those that did not (absent or broken optional
    libraries: whoever needs one imports it later and gets its error there). Shared with the memory probe."""
    import importlib

    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - any import error: the importer that needs the module reports it
            failed.append(name)
    return failed


def preload() -> None:
    """Import the libraries every stage needs (each optional), touching neither CUDA nor a thread pool."""
    import_each(PRELOAD)
    try:
        import transformers

        for attr in PRELOAD_ATTRS:  # transformers resolves these lazily; resolving them imports the modules
            getattr(transformers, attr)
    except Exception:  # noqa: BLE001
        pass


def serve(address: str, ready=None) -> int:
    """Preload, then fork a supervisor per connection until stdin closes. ``ready``: called once listening."""
    import selectors

    server_env = dict(os.environ)  # as the stage processes see it: before the imports below
    preload()
    # what the imports set (torch: KMP_* and an inductor cache folder), as a cold stage would have after them
    added = {k: v for k, v in os.environ.items() if server_env.get(k) != v}
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    if ready is not None:
        ready()
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is sys.stdin:
                    if not os.read(sys.stdin.fileno(), 4096):
                        return 0  # the run is over
                    continue
                conn, _ = listener.accept()
                if os.fork() == 0:
                    selector.close()
                    _supervise(conn, listener, server_env, added)
                conn.close()
    finally:
        listener.close()
        try:
            os.unlink(address)
        except OSError:
            pass


class Server:
    """A warm server for one run (``with Server() as env: subprocess.run(..., env=env)``): started at once
    (its imports overlap the run's first stages; stages that start before it listens run cold), ended and its
    socket removed on exit. ``env``: ``os.environ`` plus the socket variable."""

    def __init__(self, env: dict | None = None):
        self.env = dict(os.environ if env is None else env)

    def __enter__(self) -> dict:
        import subprocess
        import tempfile

        self.folder = tempfile.mkdtemp(prefix="textcls-warm-")
        address = os.path.join(self.folder, "stages.sock")
        self.proc = subprocess.Popen([sys.executable, "-m", "textcls.warm", "serve", address], env=self.env,
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        return {**self.env, SOCKET_ENV: address}

    def __exit__(self, *exc) -> None:
        import shutil
        import subprocess

        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "serve":
        print("usage: python -m textcls.warm serve SOCKET", file=sys.stderr)
        return 2
    return serve(args[1])


if __name__ == "__main__":
    raise SystemExit(main())
