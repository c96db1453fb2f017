// CUDA registration of dance_ext::siamese_augment and its backward: argument
// checks, device guard, current stream, scratch buffers; the kernels are in
// csrc/cuda/augment.cu behind csrc/cuda/augment_launch.h.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "checks/augment_checks.h"
#include "cuda/augment_launch.h"
#include "kernels/augment_math.h"

namespace dance_ext {
namespace {

cuda::AugmentDims dims_of(const at::Tensor& x, const at::Tensor& params) {
  return {x.size(0), x.size(1), x.size(2), x.size(3), params.size(0)};
}

const int64_t* index_ptr(const std::optional<at::Tensor>& index) {
  return index.has_value() ? index->data_ptr<int64_t>() : nullptr;
}

std::optional<at::Tensor> contiguous(const std::optional<at::Tensor>& index) {
  return index.has_value() ? std::optional<at::Tensor>(index->contiguous()) : std::nullopt;
}

// The backward of a resampled row (scale/rotate) scatters with float atomics, whose order
// varies between runs; integral rows (flip, shift, cutout) gather, and the per-sample totals
// are summed in a fixed order, so a batch of integral rows only is deterministic. Under
// torch.use_deterministic_algorithms(True) a batch that uses a resampled row alerts the way
// PyTorch's own ops do (an error, or a warning with warn_only=True). Deciding reads the
// parameter rows on the host: one more synchronising copy, made only in deterministic mode.
void alert_if_nondeterministic(const at::Tensor& params, const std::optional<at::Tensor>& host_index,
                               const cuda::AugmentDims& d) {
  if (!at::globalContext().deterministicAlgorithms() || d.n == 0) return;
  bool resampled = false;
  AT_DISPATCH_FLOATING_TYPES(params.scalar_type(), "siamese_augment_backward_cuda_determinism", [&] {
    const at::Tensor host = params.to(at::kCPU).contiguous();
    const scalar_t* rows = host.data_ptr<scalar_t>();
    std::vector<char> integral(d.p);
    for (int64_t r = 0; r < d.p; ++r)
      integral[r] = augment::make_row(rows + r * augment::kNumParams, d.h, d.w).integral;
    const int64_t* idx = host_index.has_value() ? host_index->data_ptr<int64_t>() : nullptr;
    for (int64_t n = 0; n < d.n && !resampled; ++n) resampled = !integral[idx ? idx[n] : (d.p == 1 ? 0 : n)];
  });
  if (resampled) at::globalContext().alertNotDeterministic("dance_ext::siamese_augment_backward (CUDA)");
}

// Both directions map an (N, C, H, W) tensor to one of the same shape through the same
// parameter rows, with scratch; only the kernel differs. Index values are checked on the host
// before any launch, also when there is nothing to launch (C·H·W = 0), like on the CPU: one
// synchronising copy of N int64 per call with an index, so that a bad value is the CPU's
// one-line error rather than a device-side assert that poisons the CUDA context (or, in a
// build with NDEBUG, a silent out-of-bounds read).
at::Tensor augment_launch_cuda(const at::Tensor& in, const char* in_name, const at::Tensor& params,
                               const std::optional<at::Tensor>& index, bool backward) {
  check_augment_args(in, in_name, params, index, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(in.device());
  const std::optional<at::Tensor> host_index =
      index.has_value() ? std::optional<at::Tensor>(check_index_range(*index, params.size(0))) : std::nullopt;
  const at::Tensor in_c = in.contiguous(), pc = params.contiguous();
  const std::optional<at::Tensor> ic = contiguous(index);
  at::Tensor out = at::empty(in.sizes(), in.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  const cuda::AugmentDims dims = dims_of(in, params);
  if (backward) alert_if_nondeterministic(pc, host_index, dims);
  at::Tensor scratch = at::empty({backward ? cuda::augment_backward_workspace(dims) : dims.n}, in.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(in.device().index()).stream();
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "siamese_augment_cuda", [&] {
    using Launch = cudaError_t (*)(const scalar_t*, const scalar_t*, const int64_t*, scalar_t*, scalar_t*,
                                   const cuda::AugmentDims&, cudaStream_t);
    const Launch launch = backward ? static_cast<Launch>(cuda::siamese_augment_backward)
                                   : static_cast<Launch>(cuda::siamese_augment_forward);
    C10_CUDA_CHECK(launch(in_c.data_ptr<scalar_t>(), pc.data_ptr<scalar_t>(), index_ptr(ic),
                          scratch.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), dims, stream));
  });
  return out;
}

at::Tensor siamese_augment_cuda(const at::Tensor& x, const at::Tensor& params,
                                const std::optional<at::Tensor>& index) {
  return augment_launch_cuda(x, "x", params, index, /*backward=*/false);
}

at::Tensor siamese_augment_backward_cuda(const at::Tensor& grad_y, const at::Tensor& params,
                                         const std::optional<at::Tensor>& index) {
  return augment_launch_cuda(grad_y, "grad_y", params, index, /*backward=*/true);
}

}  // namespace
}  // namespace dance_ext

TORCH_LIBRARY_IMPL(dance_ext, CUDA, m) {
  m.impl("siamese_augment", &dance_ext::siamese_augment_cuda);
  m.impl("siamese_augment_backward", &dance_ext::siamese_augment_backward_cuda);
}
