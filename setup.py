"""Build dance_ext and its compiled extension dance_ext._C.

CppExtension (with OpenMP) on a CPU torch, CUDAExtension where torch has CUDA.
Overrides: DANCE_EXT_CUDA=1 forces the CUDA build, DANCE_EXT_CUDA=0 forces CPU only.
Install with ``pip install --no-build-isolation .`` so the build uses the torch that is
already installed (an isolated build would fetch a second, multi-GB torch).
"""
import glob
import os
import sys

from setuptools import find_packages, setup

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
    name="dance_ext",
    version="0.1.0",
    description="Fast, paper-exact dataset condensation by Distribution Matching (DM) and DANCE",
    long_description=open(os.path.join(HERE, "README.md")).read() if os.path.exists(os.path.join(HERE, "README.md")) else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["dance_ext", "dance_ext.*"]),
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    # torch has a lower bound only: an installed torch satisfies it and nothing else is pulled
    install_requires=["torch>=2.4", "numpy", "safetensors", "tqdm", "matplotlib", "pillow", "scikit-learn"],
    # hf: Hugging Face datasets as input (no torch of its own); timm: "timm:<name>" networks in
    # evaluate, whose torchvision pins a torch of its own: install it only where that torch is wanted
    extras_require={"test": ["pytest", "pytest-benchmark", "hypothesis", "datasets"], "vision": ["torchvision"],
                    "hf": ["datasets"], "timm": ["timm"]},
    entry_points={"console_scripts": ["dance-ext = dance_ext.cli:run"]},
)
