"""Installation: metadata declared once (pyproject.toml, version from dance_ext/version.py), a
CLI that starts without torch, ops registered by `import dance_ext` in either import order,
and a compiled extension that does not load explained once (an error on demand)."""
import importlib.metadata
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import dance_ext
from dance_ext import extension
from dance_ext.version import __version__

ROOT = Path(__file__).resolve().parents[1]
needs_kernels = pytest.mark.skipif(not extension.available(), reason=f"extension not built ({extension.LOAD_ERROR})")


def python(code: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=120)


def test_metadata_is_declared_once_in_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "dance_ext" and project["dynamic"] == ["version"]
    assert "torch>=2.4" in project["dependencies"] and "pyyaml" in project["dependencies"]
    assert not any(d.startswith("torch") and "<" in d for d in project["dependencies"])  # a lower bound only
    assert {"test", "vision", "hf", "tensorboard", "timm"} <= set(project["optional-dependencies"])
    assert project["scripts"] == {"dance-ext": "dance_ext.cli:run"}
    dynamic = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "dance_ext.version.__version__"}
    setup_py = (ROOT / "setup.py").read_text()
    assert "version=" not in setup_py and "install_requires" not in setup_py and "ext_modules" in setup_py
    assert dance_ext.__version__ == __version__


def test_installed_metadata_matches_the_source():
    try:
        installed = importlib.metadata.version("dance_ext")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("dance_ext is not installed in this environment")
    assert installed == __version__


def test_cli_starts_without_torch():
    done = python("""
        import sys
        from dance_ext.cli import build_parser
        build_parser().format_help()
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
    assert subprocess.run([sys.executable, "-m", "dance_ext", "--help"], cwd=ROOT, capture_output=True,
                          timeout=60).returncode == 0


@needs_kernels
@pytest.mark.parametrize("order", ["import dance_ext\nimport torch", "import torch\nimport dance_ext"])
def test_import_dance_ext_registers_the_ops_in_either_order(order):
    done = python(order + """
x = torch.rand(2, 1, 4, 4)
params = torch.tensor([[0.0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]]).repeat(2, 1)
print(torch.equal(torch.ops.dance_ext.siamese_augment(x, params, None), x))
""")
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr


# dance_ext._C fails to load as with an ABI mismatch; an op is then used twice
BROKEN_EXTENSION = """
import sys, warnings
class Broken:
    def find_spec(self, name, path=None, target=None):
        if name == "dance_ext._C":
            raise ImportError("/x/dance_ext/_C.so: undefined symbol: _ZN3c1017RegisterOperatorsD1Ev")
sys.meta_path.insert(0, Broken())
warnings.simplefilter("always")
import torch, dance_ext
x = torch.rand(2, 1, 4, 4)
for _ in range(2):
    out = dance_ext.ops.siamese_augment(x, torch.tensor([[0.0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]]))
# the reference's colour maps, (x - mean)·1 + mean, may round the last bit
print("same" if torch.allclose(out, x, rtol=0, atol=1e-6) else "changed")
"""


def test_an_extension_that_does_not_load_is_explained_once():
    done = python(BROKEN_EXTENSION)
    assert done.returncode == 0 and done.stdout.strip() == "same", done.stderr  # the reference op ran
    warnings = [line for line in done.stderr.splitlines() if "RuntimeWarning" in line]
    assert len(warnings) == 1, done.stderr
    assert "undefined symbol" in warnings[0] and "built against another torch" in warnings[0]
    assert "pip install --no-build-isolation -e ." in warnings[0]


def test_require_kernels_makes_it_an_error():
    done = python(BROKEN_EXTENSION, env={"DANCE_EXT_REQUIRE_KERNELS": "1"})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: dance_ext: the compiled ops (dance_ext._C) are unavailable")
    assert "DANCE_EXT_REQUIRE_KERNELS=1" in last and "pip install --no-build-isolation -e ." in last
