"""The warm interpreter `make repro` runs stages in (textcls.warm): a handed-off stage behaves as a cold one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from textcls import warm

PROBE = '''
import json, os, sys, time
from textcls.cli import run

def main(argv=None):
    if sys.argv[1] == "sleep":
        open("pid", "w").write(str(os.getpid()))
        time.sleep(60)
    if sys.argv[1] == "crash":
        raise ValueError("planted")
    print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "warm": os.environ.get("TEXTCLS_WARM_CHILD"),
                      "stage": os.environ.get("DVC_STAGE"), "torch_loaded": "torch" in sys.modules,
                      "stdin": sys.stdin.read(), "path0": sys.path[0]}))
    print("to stderr", file=sys.stderr)
    return int(sys.argv[1])

if __name__ == "__main__":
    raise SystemExit(run(main))
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One warm server (real preload) and a project folder with a stage script."""
    root = tmp_path_factory.mktemp("warm")
    (root / "stages").mkdir()
    (root / "stages" / "probe.py").write_text(PROBE)
    base = {k: v for k, v in os.environ.items() if k != warm.SOCKET_ENV}
    with warm.Server(base) as env:
        deadline = time.monotonic() + 120
        while not Path(env[warm.SOCKET_ENV]).exists():  # listening once the imports are done
            assert time.monotonic() < deadline, "the warm server never listened"
            time.sleep(0.2)
        yield root, env


def _stage(root, env, *args, stdin="", **kw):
    return subprocess.run([sys.executable, "stages/probe.py", *args], cwd=root, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120, **kw)


def test_stage_runs_in_a_fork_with_its_argv_cwd_environment_streams_and_exit_code(server):
    """Check that the fork gets the stage's argv, folder, per-stage DVC variable, stdin, stdout, stderr and
    returns its exit status, and that it had torch imported before the stage started (the point of it)."""
    root, env = server
    proc = _stage(root, {**env, "DVC_STAGE": "train@a-m"}, "7", stdin="hello")
    assert proc.returncode == 7
    out = json.loads(proc.stdout)
    assert out["warm"] == "1" and out["torch_loaded"]
    assert out["argv"] == ["stages/probe.py", "7"] and Path(out["cwd"]) == root
    assert out["stage"] == "train@a-m" and out["stdin"] == "hello"
    assert Path(out["path0"]) == root / "stages"  # as `python stages/probe.py` sets it
    assert "to stderr" in proc.stderr


def test_a_changed_environment_is_refused_and_the_stage_runs_cold(server):
    """Check that a variable the server was not started with (a library could read it at import) makes the
    stage run in its own interpreter, with the same result."""
    root, env = server
    proc = _stage(root, {**env, "HF_HUB_OFFLINE": "0" if env.get("HF_HUB_OFFLINE") == "1" else "1"}, "0")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["warm"] is None and not out["torch_loaded"]
    assert "runs in its own interpreter: another environment (HF_HUB_OFFLINE)" in proc.stderr  # says why


def test_no_server_means_a_cold_run(server, tmp_path):
    """Check that a socket variable pointing nowhere (the server not started yet, or gone) costs nothing."""
    root, env = server
    proc = _stage(root, {**env, warm.SOCKET_ENV: str(tmp_path / "absent.sock")}, "3")
    assert proc.returncode == 3 and json.loads(proc.stdout)["warm"] is None


def test_an_uncaught_exception_exits_1_with_its_traceback(server):
    """Check that a crash in the fork is reported as a cold interpreter reports it."""
    root, env = server
    proc = _stage(root, env, "crash")
    assert proc.returncode == 1
    assert "ValueError: planted" in proc.stderr and "Traceback" in proc.stderr


def test_killing_the_stage_process_stops_its_fork(server):
    """Check that when DVC kills a stage (Ctrl-C, a failed sibling), the work in the fork stops too."""
    root, env = server
    (root / "pid").unlink(missing_ok=True)
    client = subprocess.Popen([sys.executable, "stages/probe.py", "sleep"], cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (root / "pid").exists() or not (root / "pid").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    worker = int((root / "pid").read_text())
    assert worker != client.pid  # it really runs elsewhere
    client.send_signal(signal.SIGKILL)
    client.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and "Z" not in Path(f"/proc/{worker}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the fork kept running after its stage process died"
        time.sleep(0.1)


def test_refusal_names_the_interpreter_and_the_changed_variables():
    """Check the rules: another interpreter or any changed variable refuses; DVC's per-stage ones do not."""
    env = {"A": "1", "DVC_STAGE": "x"}
    request = {"executable": sys.executable, "path": sys.path[1:], "env": {"A": "1", "DVC_STAGE": "y"}}
    assert warm.refusal(request, env) is None
    assert "another interpreter" in warm.refusal({**request, "executable": "/usr/bin/python2"}, env)
    assert "(A)" in warm.refusal({**request, "env": {"A": "2"}}, env)
    assert "(B)" in warm.refusal({**request, "env": {"A": "1", "B": "1"}}, env)


def test_imports_outside_a_stage_script_never_hand_off(monkeypatch):
    """Check that importing textcls.cli in a test, a notebook or a script outside stages/ runs in place."""
    monkeypatch.setenv(warm.SOCKET_ENV, "/nonexistent/socket")
    monkeypatch.delenv(warm.CHILD_ENV, raising=False)
    assert warm._is_stage_script(sys.modules["__main__"]) is False
    warm.handoff()  # returns: we are still here
