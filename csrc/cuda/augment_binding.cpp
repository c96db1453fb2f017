// CUDA registration of dance_ext::siamese_augment and its backward: argument
// checks, device guard, current stream, scratch buffers; the kernels are in
// csrc/cuda/augment.cu behind csrc/cuda/augment_launch.h.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cpu/augment.h"
#include "cuda/augment_launch.h"

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

// Both directions map an (N, C, H, W) tensor to one of the same shape through the same
// parameter rows, with n elements of scratch; only the kernel differs. Index values are
// checked on the device (an assert in the kernel): a host-side check would synchronise
// on every call.
at::Tensor augment_launch_cuda(const at::Tensor& in, const char* in_name, const at::Tensor& params,
                               const std::optional<at::Tensor>& index, bool backward) {
  check_augment_args(in, in_name, params, index, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(in.device());
  const at::Tensor in_c = in.contiguous(), pc = params.contiguous();
  const std::optional<at::Tensor> ic = contiguous(index);
  at::Tensor out = at::empty(in.sizes(), in.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  at::Tensor scratch = at::empty({in.size(0)}, in.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(in.device().index()).stream();
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "siamese_augment_cuda", [&] {
    using Launch = cudaError_t (*)(const scalar_t*, const scalar_t*, const int64_t*, scalar_t*, scalar_t*,
                                   const cuda::AugmentDims&, cudaStream_t);
    const Launch launch = backward ? static_cast<Launch>(cuda::siamese_augment_backward)
                                   : static_cast<Launch>(cuda::siamese_augment_forward);
    C10_CUDA_CHECK(launch(in_c.data_ptr<scalar_t>(), pc.data_ptr<scalar_t>(), index_ptr(ic),
                          scratch.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), dims_of(in, params), stream));
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
