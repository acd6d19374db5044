"""The README's first command: scripts/demo.sh starts a private Apache with a
demo key, a mock upstream and the console, and the commands it prints work
verbatim."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from harness.gateway import free_port
from harness import registry

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(TOP, "scripts", "demo.sh")


@pytest.fixture
def demo():
    # Under /tmp itself: the Apache user must reach the demo's key store.
    work = tempfile.mkdtemp(prefix="cr-demo-")
    os.chmod(work, 0o755)
    env = dict(os.environ)
    env["CR_DEMO_DIR"] = os.path.join(work, "demo")
    env["CR_DEMO_PORT"] = str(free_port())
    proc = subprocess.run(["sh", DEMO], capture_output=True, text=True,
                          env=env, timeout=600)
    try:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        yield proc.stdout, env
    finally:
        subprocess.run(["sh", DEMO, "stop"], env=env, timeout=60,
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _commands(out):
    """The shell commands the demo prints: each 'curl' line and the lines
    continued from it with a trailing backslash."""
    cmds, cur = [], None
    for line in out.splitlines():
        s = line.strip()
        if cur is not None:
            cur += "\n" + s
            if not s.endswith("\\"):
                cmds.append(cur)
                cur = None
        elif s.startswith("curl "):
            if s.endswith("\\"):
                cur = s
            else:
                cmds.append(s)
    return cmds


def test_demo_commands_work_verbatim(demo):
    out, env = demo
    m = re.search(r"export CLAWDROUTER_KEY=(sk-[A-Za-z0-9]+)", out)
    assert m, out
    registry.add_key(m.group(1))
    cmds = _commands(out)
    assert len(cmds) >= 3, out
    for cmd in cmds:
        run_env = dict(env, CLAWDROUTER_KEY=m.group(1))
        proc = subprocess.run(["sh", "-c", cmd], capture_output=True,
                              text=True, env=run_env, timeout=30)
        assert proc.returncode == 0, (cmd, proc.stderr)
        if "stream" in cmd:
            assert "data: " in proc.stdout and "[DONE]" in proc.stdout, proc.stdout
        else:
            doc = json.loads(proc.stdout)
            assert doc.get("type") != "error" and "error" not in doc, doc
            assert doc.get("object") == "chat.completion" or doc.get("type") == "message", doc
    # The console is up behind the generated password.
    pw = re.search(r"Basic auth: admin / (\S+)\)", out).group(1)
    url = re.search(r"Console:\s+(\S+)", out).group(1)
    code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           "-u", "admin:" + pw, url], capture_output=True,
                          text=True, timeout=30).stdout
    assert code == "200"
    code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           url], capture_output=True, text=True,
                          timeout=30).stdout
    assert code == "401"
