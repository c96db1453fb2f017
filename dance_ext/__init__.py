"""dance_ext: fast, paper-exact dataset condensation by Distribution Matching (DM) and DANCE.

    import dance_ext
    res = dance_ext.condense("digits", ipc=10, method="dance", preset="quick")
    print(dance_ext.evaluate(res, "digits", runs=3))
    res.save("out/")

Importing the package costs no torch import, so `dance-ext --help` answers at once. The
public API (and the compiled ops) load as soon as torch is in the process: at
``import dance_ext`` when torch was imported before, at the moment ``import torch`` ends
when it comes after, or at the first use of a name below. So
``import dance_ext; import torch; torch.ops.dance_ext.siamese_augment(...)`` works in
either order.
"""
import importlib
import importlib.util
import os
import sys

from .version import __version__

# MKL's matrix products (Linear layers: DANCE's expert, the evaluation networks) otherwise
# round differently for differently aligned buffers, which breaks bit-identical CPU runs
# across processes and world sizes. Read at MKL's first call; a value you set wins.
os.environ.setdefault("MKL_CBWR", "AUTO")

# public name -> (submodule, attribute); attribute None: the submodule itself
_API = {"ops": ("ops", None), "build_info": ("extension", "build_info"), "condense": ("api", "condense"),
        "DATASET_STATS": ("data", "DATASET_STATS"), "ClassData": ("data", "ClassData"),
        "as_class_data": ("data", "as_class_data"), "load_dataset": ("data", "load_dataset"),
        "evaluate": ("evaluate", "evaluate"), "ExpertPool": ("experts", "ExpertPool"),
        "pretrain_experts": ("experts", "pretrain_experts"), "CondenseResult": ("results", "CondenseResult"),
        "load_set": ("interop", "load_set")}

__all__ = ["condense", "evaluate", "pretrain_experts", "load", "load_set", "load_dataset", "ops", "build_info",
           "selftest", "ClassData", "CondenseResult", "ExpertPool", "as_class_data", "DATASET_STATS", "__version__"]


def selftest(device=None, **options):
    """Check this installation on ``device`` (default: cuda if available): the compiled ops
    against the reference ops, gradcheck, opcheck, one DM and one DANCE iteration. Prints a
    table and returns a report (``.ok``, ``.rows``, ``.to_dict()``); options: ``bench``,
    ``quick``, ``compile``, ``json_path``, ``stream``. See dance_ext/diagnostics/."""
    from .diagnostics import selftest as run
    return run(device, **options)


def _load() -> None:
    """Import the API (ops first: they register torch.ops.dance_ext.*) into the package."""
    if _AfterTorch.instance in sys.meta_path:
        sys.meta_path.remove(_AfterTorch.instance)
    namespace = globals()
    for name, (module, attribute) in _API.items():
        loaded = importlib.import_module(f"{__name__}.{module}")
        namespace[name] = loaded if attribute is None else getattr(loaded, attribute)
    namespace["load"] = namespace["CondenseResult"].load


def __getattr__(name: str):  # PEP 562: the first use of an API name loads the API
    if name in _API or name == "load":
        _load()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})


def _importing_a_submodule() -> bool:
    return any(getattr(getattr(module, "__spec__", None), "_initializing", False)
               for name, module in list(sys.modules.items()) if name.startswith(f"{__name__}."))


class _AfterTorch:
    """Import hook, active until torch is imported: loads the API right after torch's own
    module has run, so the ops are registered before user code can reach torch.ops. Not
    when one of our modules imports torch (``import dance_ext.models`` first): loading the
    API then would re-enter that half-initialised module; the first API name loads it."""
    instance = None

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        if spec is None:  # not installed: the usual ModuleNotFoundError
            return None
        run_torch = spec.loader.exec_module

        def exec_module(module):
            del spec.loader.exec_module  # the loader's own method again
            run_torch(module)
            if not _importing_a_submodule():
                _load()
        spec.loader.exec_module = exec_module
        return spec


if "torch" in sys.modules:
    _load()
else:
    _AfterTorch.instance = _AfterTorch()
    sys.meta_path.insert(0, _AfterTorch.instance)
