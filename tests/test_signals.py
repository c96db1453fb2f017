"""Pre-emption: a run stopped by SIGTERM or SIGINT writes its checkpoint at the end of the
current iteration, ends as the signal asks, and resumes to the uninterrupted result."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

import dance_ext

pytestmark = pytest.mark.usefixtures("single_thread")

ITERATIONS = 120
SETTINGS = dict(ipc=2, method="dm", preset="quick", progress=False)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, signum):
    ckpt = tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "dance_ext", "condense", "--method", "dm", "--ipc", "2",
           "--iterations", str(ITERATIONS), "--checkpoint-dir", str(ckpt), "--checkpoint-every", "5",
           "--eval-runs", "0", "--no-progress", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (ckpt / "checkpoint.pt").exists():  # the run is under way
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be stopped"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)

    assert proc.returncode == -signum, stderr  # ended as the signal asks, not as a normal exit
    stopped = re.search(rf"{signal.Signals(signum).name} received: iteration (\d+) saved", stderr)
    assert stopped, stderr
    assert 5 <= int(stopped.group(1)) < ITERATIONS
    assert not (tmp_path / "out").exists()  # an unfinished run writes no result
    assert [p.name for p in ckpt.iterdir()] == ["checkpoint.pt"]  # no temp files left behind

    resumed = dance_ext.condense("digits", iterations=ITERATIONS, checkpoint_dir=ckpt, resume=True, **SETTINGS)
    uninterrupted = dance_ext.condense("digits", iterations=ITERATIONS, **SETTINGS)
    assert torch.equal(resumed.images, uninterrupted.images)
    assert resumed.history == uninterrupted.history
