"""The whole GPU session in one command (run through benchmarks/gpu.sh):

    bash benchmarks/gpu.sh              # on a CUDA machine: build, test, self-test, sanitize, benchmark
    bash benchmarks/gpu.sh --dry-run    # anywhere: every step that needs no GPU; prints the GPU-only ones

GPU mode, correctness first so that a short budget cuts timings rather than checks: the
CUDA build (TORCH_CUDA_ARCH_LIST=9.0 unless set; `python setup.py build_ext --inplace`, no
pip and no network), the CUDA tests (`pytest -k cuda tests`: the tests carry "cuda" in
their names and skip without a GPU), `dance-ext selftest --device cuda --bench --json`,
compute-sanitizer memcheck and racecheck of a small parity run (benchmarks/sanitize_ops.py)
if the tool is there, the benchmark suites on the GPU (bench_scaling only with --scaling),
the CPU self-test of the same build. Each step runs under a timeout taken from one overall
budget (default 470 s, so the session fits 8 minutes); a step that no longer fits is
recorded as skipped. Everything lands in benchmarks/results/gpu-<date>-<commit>/ (env.json,
summary.json, one log per step, the JSON of the self-test and the suites, session.tar.gz);
if $OUT is set, at most 8 files are copied there (the tarball holds the rest).

The commit comes from git, or from $DANCE_EXT_COMMIT where the tree has no .git.
Exit status: 0 when every step that ran passed, 1 when one failed, 2 on bad arguments
or (GPU mode) no CUDA device.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SANITIZER_PLACES = ("/usr/local/cuda/bin/compute-sanitizer", "/usr/local/cuda/compute-sanitizer/compute-sanitizer")
OUT_FILES = ("summary.json", "env.json", "selftest-cuda.json", "selftest-cuda.log", "selftest-cpu.json",
             "session.log", "session.tar.gz")
BENCH_SUITES = {  # suite -> pytest -k selection on the GPU (the CPU rungs are measured elsewhere)
    "iteration": None, "mmd": "cuda", "augment": "cuda and not vectorized_compiled",
}
DRY_BENCH_K = "not compiled and not 3x128x128 and not 3x32x32 and not 1000"  # one call per rung, smallest cases


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("DANCE_EXT_COMMIT", "unknown")


def sanitizer() -> str | None:
    found = shutil.which("compute-sanitizer")
    cuda_home = os.environ.get("CUDA_HOME")
    places = ((f"{cuda_home}/bin/compute-sanitizer",) if cuda_home else ()) + SANITIZER_PLACES
    return found or next((p for p in places if os.access(p, os.X_OK)), None)


def probe() -> dict:
    """Whether torch sees a GPU and this checkout's extension loads (one interpreter start)."""
    code = ("import json, torch\ntry:\n    import dance_ext._C\n    built = True\nexcept ImportError:\n"
            "    built = False\nprint(json.dumps({'cuda': torch.cuda.is_available(), 'built': built}))")
    proc = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else {"cuda": False, "built": False}


class Session:
    """Runs steps as subprocesses with per-step logs and timeouts from one overall budget."""

    def __init__(self, folder: Path, budget_s: float, dry_run: bool, facts: dict):
        self.folder, self.dry_run, self.facts = folder, dry_run, facts
        self.deadline = time.monotonic() + budget_s
        self.steps: list[dict] = []
        folder.mkdir(parents=True, exist_ok=True)
        self.log = open(folder / "session.log", "a", buffering=1)

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")

    def record(self, name: str, status: str, **facts) -> dict:
        step = {"step": name, "status": status, **facts}
        self.steps.append(step)
        detail = facts.get("reason") or facts.get("would_run") or ""
        seconds = f" ({facts['seconds']:.1f} s)" if "seconds" in facts else ""
        self.say(f"-> {name}: {status}{seconds}{': ' + detail if detail else ''}")
        return step

    def would_run(self, name: str, cmd: list[str], env: dict | None = None) -> None:
        prefix = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        self.record(name, "gpu-only", would_run=(prefix + " " if prefix else "") + " ".join(cmd))

    def run(self, name: str, cmd: list[str], cap_s: float, env: dict | None = None, expect=(0,), echo: int = 8,
            must_contain: str | None = None) -> dict:
        """Run ``cmd``; ok when its exit status is in ``expect`` (and its output holds
        ``must_contain``). ``echo``: lines of output shown (-1: all)."""
        left = self.deadline - time.monotonic() - 10  # keep time to write the summary
        if left < min(cap_s, 20):
            return self.record(name, "skipped", reason=f"out of time ({left:.0f} s of the budget left)")
        timeout = min(cap_s, left)
        log_path = self.folder / f"{name}.log"
        self.say(f"== {name} (timeout {timeout:.0f} s): {' '.join(cmd)}")
        started = time.monotonic()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = None
        seconds = time.monotonic() - started
        text = log_path.read_text(errors="replace")
        lines = text.splitlines()
        for line in lines if echo < 0 else lines[-echo:] if echo else []:
            self.say("   " + line)
        ok = rc in expect and (must_contain is None or must_contain in text)
        status = "ok" if ok else "timeout" if rc is None else "failed"
        reason = ("" if ok else f"timed out after {timeout:.0f} s" if rc is None else
                  f"exit status {rc}" + (f", output lacks {must_contain!r}" if must_contain else ""))
        return self.record(name, status, seconds=seconds, rc=rc, log=log_path.name, reason=reason,
                           command=" ".join(cmd))

    def failed(self) -> list[str]:
        return [s["step"] for s in self.steps if s["status"] in ("failed", "timeout")]


def write_env(session: Session, device: str) -> None:
    code = ("import json, dance_ext, torch; from dance_ext.diagnostics import environment; "
            f"print(json.dumps(environment(torch.device({device!r}))))")
    proc = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    env = json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr.strip()[-500:]}
    env["git_commit"] = commit() if env.get("git_commit", "unknown") == "unknown" else env["git_commit"]
    for tool, args in (("nvidia-smi", ["--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]),
                       ("nvcc", ["--version"])):
        path = shutil.which(tool)
        env[tool] = (subprocess.run([path, *args], capture_output=True, text=True).stdout.strip()
                     if path else "not found")
    env["compute_sanitizer"] = sanitizer() or "not found"
    env["torch_cuda_arch_list"] = os.environ.get("TORCH_CUDA_ARCH_LIST")
    (session.folder / "env.json").write_text(json.dumps(env, indent=2) + "\n")
    session.record("env", "ok", reason=f"{env.get('device_name')}, torch {env.get('torch_version')}, "
                                       f"CUDA {env.get('cuda_version')}, commit {str(env['git_commit'])[:12]}")


def bench_cmd(suites, k: str | None, extra: list[str]) -> list[str]:
    cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *[f"benchmarks/bench_{s}.py" for s in suites]]
    return cmd + (["-k", k] if k else []) + extra


SANITIZE = [PY, "benchmarks/sanitize_ops.py", "--device", "cuda"]
SANITIZER_RUNS = {  # name -> (compute-sanitizer flags, target, environment, cap in seconds)
    # one cudaMalloc per tensor, so memcheck sees reads past a tensor's end inside the caching allocator's blocks
    "memcheck": (["--tool", "memcheck"], SANITIZE, {"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}, 150),
    "racecheck-mmd": (["--tool", "racecheck"], SANITIZE + ["--ops", "class_mean_mmd"], None, 90),
    "racecheck-augment": (["--tool", "racecheck"], SANITIZE + ["--ops", "siamese_augment"], None, 90),
}


def sanitizer_steps(session: Session, names, tool: str | None, dry: bool) -> None:
    for name in names:
        flags, target, env, cap = SANITIZER_RUNS[name]
        cmd = [tool or "compute-sanitizer", *flags, "--error-exitcode", "1", *target]
        if dry:
            session.would_run(name, cmd, env)
        elif tool is None:
            session.record(name, "skipped", reason="compute-sanitizer not found (PATH, $CUDA_HOME/bin, "
                                                   "/usr/local/cuda)")
        else:
            session.run(name, cmd, cap, env, echo=6)


def build_env() -> dict:
    return {"TORCH_CUDA_ARCH_LIST": os.environ.get("TORCH_CUDA_ARCH_LIST", "9.0"), "DANCE_EXT_CUDA": "1",
            "MAX_JOBS": str(os.cpu_count() or 4)}


BUILD_CMD = [PY, "setup.py", "build_ext", "--inplace"]
CHECK_CUDA_BUILD = [PY, "-c", "import dance_ext; b = dance_ext.build_info(); print(b); "
                              "assert b['loaded'] and b['with_cuda'], 'no CUDA kernels in this build'"]
SELFTEST = [PY, "-m", "dance_ext", "selftest"]


def gpu_session(session: Session, args) -> None:
    folder = session.folder
    if not args.no_build:
        session.run("build", BUILD_CMD, 300, build_env(), echo=4)
    if session.run("check-build", CHECK_CUDA_BUILD, 60, echo=2)["status"] != "ok":
        session.say("the CUDA build is not usable: the GPU steps are skipped")
        write_env(session, "cuda")
        return
    write_env(session, "cuda")
    session.run("cuda-tests", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", "tests",
                               f"--junitxml={folder}/cuda-tests.xml"], 150, echo=6)
    session.run("selftest-cuda", SELFTEST + ["--device", "cuda", "--bench", "--json",
                                             str(folder / "selftest-cuda.json")], 180, echo=-1)
    sanitizer_steps(session, ("memcheck", "racecheck-mmd"), sanitizer(), dry=False)
    results = {"DANCE_EXT_BENCH_RESULTS": str(folder)}
    suites = list(BENCH_SUITES) + (["scaling"] if args.scaling else [])
    for suite in suites:
        session.run(f"bench-{suite}", bench_cmd([suite], BENCH_SUITES.get(suite),
                                                ["--benchmark-only", f"--benchmark-json={folder}/bench-{suite}.json"]),
                    120 if suite != "augment" else 180, results, echo=4)
    session.run("selftest-cpu", SELFTEST + ["--device", "cpu", "--quick", "--json",
                                            str(folder / "selftest-cpu.json")], 90, echo=2)
    sanitizer_steps(session, ("racecheck-augment",), sanitizer(), dry=False)


def dry_run(session: Session, args) -> None:
    """Every step that needs no GPU, on this machine; the GPU-only ones are printed."""
    folder = session.folder
    check_commands(session)
    if session.facts["built"]:
        session.record("build-cpu", "skipped", reason="the CPU extension is already built here")
    else:
        session.run("build-cpu", BUILD_CMD, 900, {"DANCE_EXT_CUDA": "0"}, echo=4)
    session.would_run("build", BUILD_CMD, build_env())
    session.would_run("check-build", CHECK_CUDA_BUILD)
    write_env(session, "cpu")
    session.run("cuda-tests-collect", [PY, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                       "-k", "cuda", "tests"], 120, echo=1, must_contain="tests collected")
    session.would_run("cuda-tests", [PY, "-m", "pytest", "-q", "-k", "cuda", "tests", "--junitxml=…"])
    argument_checks(session)
    session.run("selftest-cpu", SELFTEST + ["--device", "cpu", "--json", str(folder / "selftest-cpu.json")],
                240, echo=-1)
    session.would_run("selftest-cuda", SELFTEST + ["--device", "cuda", "--bench", "--json", "…"])
    session.run("sanitize-ops-cpu", [PY, "benchmarks/sanitize_ops.py", "--device", "cpu"], 120, echo=1)
    sanitizer_steps(session, SANITIZER_RUNS, sanitizer(), dry=True)
    session.run("bench-cpu-one-call", bench_cmd(BENCH_SUITES, DRY_BENCH_K, ["--benchmark-disable"]), 300,
                {"DANCE_EXT_BENCH_RESULTS": str(folder)}, echo=2)
    for suite, k in BENCH_SUITES.items():
        session.would_run(f"bench-{suite}", bench_cmd([suite], k, ["--benchmark-only", "--benchmark-json=…"]))


def check_commands(session: Session) -> None:
    """The programs and modules every step calls exist (nvcc and compute-sanitizer: reported)."""
    modules = ("torch", "pytest", "pytest_benchmark", "dance_ext", "setuptools", "ninja")
    code = f"import importlib.util as u; print(' '.join(m for m in {modules!r} if u.find_spec(m) is None))"
    found = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True)
    missing = [f"python module {m}" for m in found.stdout.split()] if found.returncode == 0 else [found.stderr]
    for path in ("setup.py", "tests", "benchmarks/sanitize_ops.py", *[f"benchmarks/bench_{s}.py" for s in
                                                                      (*BENCH_SUITES, "scaling")]):
        if not (ROOT / path).exists():
            missing.append(path)
    optional = {tool: shutil.which(tool) or "not found" for tool in ("nvcc", "nvidia-smi", "ninja")}
    optional["compute-sanitizer"] = sanitizer() or "not found"
    if missing:
        session.record("commands", "failed", reason="missing: " + ", ".join(missing))
    else:
        session.record("commands", "ok", reason="; ".join(f"{k}: {v}" for k, v in optional.items()))


def argument_checks(session: Session) -> None:
    """Argument handling of the scripts: help, unknown flags, no CUDA device."""
    session.run("args-selftest-help", SELFTEST + ["--help"], 60, echo=0, must_contain="--json")
    session.run("args-session-bad-flag", [PY, "benchmarks/gpu_session.py", "--no-such-flag"], 30, expect=(2,), echo=0)
    if not session.facts["cuda"]:
        session.run("args-selftest-no-cuda", SELFTEST + ["--device", "cuda"], 60, expect=(2,), echo=1,
                    must_contain="no CUDA device")
        session.run("args-sanitize-no-cuda", [PY, "benchmarks/sanitize_ops.py", "--device", "cuda"], 60,
                    expect=(2,), echo=1, must_contain="no CUDA device")


def package(session: Session, started: float) -> None:
    """summary.json, session.tar.gz of the folder, and the few files for $OUT."""
    folder = session.folder
    summary = {"folder": str(folder), "dry_run": session.dry_run, "seconds": time.monotonic() - started,
               "failed": session.failed(), "steps": session.steps}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    session.log.flush()
    tar_path = folder / "session.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            if path != tar_path:
                tar.add(path, arcname=f"{folder.name}/{path.name}")
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        copied = [name for name in OUT_FILES if (folder / name).exists()]
        for name in copied[:8]:
            shutil.copy2(folder / name, Path(out) / name)
        session.say(f"copied to $OUT: {', '.join(copied[:8])}")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="benchmarks/gpu.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="run what needs no GPU; print the GPU-only steps")
    parser.add_argument("--budget", type=float, help="seconds for the whole session (default 470; dry run 900)")
    parser.add_argument("--results-dir", type=Path, help="where to write (default: "
                        "benchmarks/results/gpu-<date>-<commit>/; dry run: a temp folder)")
    parser.add_argument("--no-build", action="store_true", help="GPU mode: use the existing build")
    parser.add_argument("--scaling", action="store_true", help="GPU mode: also run bench_scaling (torchrun)")
    args = parser.parse_args(argv)
    if args.budget is not None and args.budget <= 0:
        parser.error(f"--budget: expected seconds > 0, got {args.budget}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    short = commit()[:7] + ("-dirty" if commit().endswith("-dirty") else "")
    if args.results_dir is not None:
        folder = args.results_dir
    elif args.dry_run:
        import tempfile
        folder = Path(tempfile.mkdtemp(prefix=f"dance-ext-dryrun-{stamp}-"))
    else:
        folder = ROOT / "benchmarks" / "results" / f"gpu-{stamp}-{short}"
    facts = probe()
    if not args.dry_run and not facts["cuda"]:
        print("gpu.sh: no CUDA device here (torch sees no GPU); run `bash benchmarks/gpu.sh --dry-run`",
              file=sys.stderr)
        return 2
    session = Session(folder, args.budget or (900 if args.dry_run else 470), args.dry_run, facts)
    session.say(f"gpu.sh {'dry run' if args.dry_run else 'GPU session'}: results in {folder}")
    (dry_run if args.dry_run else gpu_session)(session, args)
    failed = session.failed()
    session.say(f"gpu.sh: {len(session.steps)} steps in {time.monotonic() - started:.0f} s; "
                + (f"FAILED: {', '.join(failed)}" if failed else "no step failed") + f"; results in {folder}")
    package(session, started)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
