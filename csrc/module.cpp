// dance_ext._C: the Python module of the extension. The ops register through
// TORCH_LIBRARY when this library is loaded; the module itself exposes build facts.
#include <torch/extension.h>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

bool with_cuda() {
#ifdef DANCE_EXT_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int openmp_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 0;
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("with_cuda", &with_cuda, "Whether the CUDA kernels were compiled in");
  m.def("openmp_threads", &openmp_threads, "OpenMP threads available (0: built without OpenMP)");
  m.attr("torch_version") = TORCH_VERSION;
}
