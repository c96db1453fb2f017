"""Build the compiled extension dance_ext._C; everything else (name, version, dependencies,
extras, the dance-ext command) is declared once, in pyproject.toml.

CppExtension (with OpenMP) on a CPU torch, CUDAExtension where torch has CUDA.
Overrides: DANCE_EXT_CUDA=1 forces the CUDA build, DANCE_EXT_CUDA=0 forces CPU only.
Install with ``pip install --no-build-isolation .`` so the build uses the torch that is
already installed (an isolated build would fetch a second, multi-GB torch).
"""
import glob
import os
import sys

from setuptools import setup

try:
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension, CUDA_HOME
except ImportError:  # pragma: no cover - explained to the user
    sys.exit("dance_ext: install torch first, then `pip install --no-build-isolation .`")

HERE = os.path.dirname(os.path.abspath(__file__))


def want_cuda() -> bool:
    forced = os.environ.get("DANCE_EXT_CUDA")
    if forced is not None:
        return forced == "1"
    return torch.version.cuda is not None and CUDA_HOME is not None


def sources(pattern: str) -> list:
    return sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, pattern)))


def extension():
    openmp = ["-fopenmp"]
    cxx = ["-O3", "-std=c++17"] + openmp
    common = dict(
        name="dance_ext._C",
        sources=sources("csrc/*.cpp") + sources("csrc/checks/*.cpp") + sources("csrc/cpu/*.cpp"),
        include_dirs=[os.path.join(HERE, "csrc")],
        extra_link_args=openmp,
    )
    if want_cuda():
        common["sources"] += sources("csrc/cuda/*.cpp") + sources("csrc/cuda/*.cu")
        nvcc = ["-O3", "-std=c++17", "--use_fast_math", "-lineinfo"]
        return CUDAExtension(define_macros=[("DANCE_EXT_WITH_CUDA", None)],
                             extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **common)
    return CppExtension(extra_compile_args={"cxx": cxx}, **common)


setup(
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
