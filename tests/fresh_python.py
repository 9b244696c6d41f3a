"""A Python interpreter where `hf_deeplense` cannot be imported, kept running for the whole test session.

The remote-code tests load saved directories with `trust_remote_code=True` the way a user without the package
would. Starting a new interpreter for each of them costs ~5-10 s of imports (torch, transformers) on a 2-core
machine; one interpreter per test worker serves them all. It stays a user's interpreter: `sys.modules` blocks
`hf_deeplense`, `PYTHONPATH` is unset, the Hub is offline and the dynamic modules go to a cache of its own.
Transformers names a local directory's dynamic module after the directory, so each test saves under a name no
other test uses (`unique_dir`): no test can import a file copied for another.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

# Reads one JSON request per line ({"script", "args", "cwd"}), runs the script as `__main__` with those argv and
# working directory, and answers one JSON line: its stdout, and the traceback when it raised.
_SERVER = textwrap.dedent(
    """
    import contextlib, io, json, os, sys, traceback
    sys.modules["hf_deeplense"] = None  # the package must not be importable
    replies = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        os.chdir(request["cwd"])
        sys.argv = ["-c", *request["args"]]
        stdout, error = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(stdout):
                exec(compile(request["script"], "<script>", "exec"), {"__name__": "__main__"})
        except BaseException:
            error = traceback.format_exc()
        replies.write(json.dumps({"stdout": stdout.getvalue(), "error": error}) + "\\n")
        replies.flush()
    """
)


class FreshPython:
    """`run(script, *args, cwd=...)` runs `script` in the shared interpreter and returns its stdout; a script that
    raises fails with its traceback, one that runs past `timeout` kills the interpreter (the next run starts a
    new one)."""

    def __init__(self, work_dir: Path):
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._process = None
        self._dirs = itertools.count()

    def _start(self) -> subprocess.Popen:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(self.work_dir / "modules")}
        env.pop("PYTHONPATH", None)
        self._log = open(self.work_dir / "stderr.log", "a")  # noqa: SIM115 - lives as long as the interpreter
        return subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
            cwd=self.work_dir,
        )

    def unique_dir(self, parent: Path, name: str) -> Path:
        """`parent / name<n>`, a directory name this interpreter has not loaded code from yet."""
        return Path(parent) / f"{name}{next(self._dirs)}"

    def run(self, script: str, *args: str, cwd: Path, timeout: float = 300) -> str:
        if self._process is not None and self._process.poll() is not None:
            self.close()  # it died (a script that crashed it): start another
        if self._process is None:
            self._process = self._start()
        request = {"script": script, "args": [str(arg) for arg in args], "cwd": str(cwd)}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        replies = []
        reader = threading.Thread(target=lambda: replies.append(self._process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not replies or not replies[0]:
            self.close()
            log = (self.work_dir / "stderr.log").read_text()[-4000:]
            raise AssertionError(f"the fresh interpreter stopped or ran past {timeout} s; its stderr:\n{log}")
        reply = json.loads(replies[0])
        if reply["error"]:
            raise AssertionError(f"the script raised in the fresh interpreter:\n{reply['error'][-4000:]}")
        return reply["stdout"]

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._log.close()
            self._process = None
