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

// Index values are checked on the device (an assert in the kernel): a host-side
// check would synchronise on every call.
at::Tensor siamese_augment_cuda(const at::Tensor& x, const at::Tensor& params,
                                const std::optional<at::Tensor>& index) {
  check_augment_args(x, "x", params, index, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous(), pc = params.contiguous();
  const std::optional<at::Tensor> ic = contiguous(index);
  at::Tensor y = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  if (y.numel() == 0) return y;
  at::Tensor mean = at::empty({x.size(0)}, x.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "siamese_augment_cuda", [&] {
    C10_CUDA_CHECK(cuda::siamese_augment_forward(xc.data_ptr<scalar_t>(), pc.data_ptr<scalar_t>(), index_ptr(ic),
                                                 mean.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                                                 dims_of(x, params), stream));
  });
  return y;
}

at::Tensor siamese_augment_backward_cuda(const at::Tensor& grad_y, const at::Tensor& params,
                                         const std::optional<at::Tensor>& index) {
  check_augment_args(grad_y, "grad_y", params, index, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(grad_y.device());
  const at::Tensor gc = grad_y.contiguous(), pc = params.contiguous();
  const std::optional<at::Tensor> ic = contiguous(index);
  at::Tensor grad_x = at::empty(grad_y.sizes(), grad_y.options().memory_format(at::MemoryFormat::Contiguous));
  if (grad_x.numel() == 0) return grad_x;
  at::Tensor total = at::empty({grad_y.size(0)}, grad_y.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(grad_y.device().index()).stream();
  AT_DISPATCH_FLOATING_TYPES(grad_y.scalar_type(), "siamese_augment_backward_cuda", [&] {
    C10_CUDA_CHECK(cuda::siamese_augment_backward(gc.data_ptr<scalar_t>(), pc.data_ptr<scalar_t>(), index_ptr(ic),
                                                  total.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(),
                                                  dims_of(grad_y, params), stream));
  });
  return grad_x;
}

}  // namespace
}  // namespace dance_ext

TORCH_LIBRARY_IMPL(dance_ext, CUDA, m) {
  m.impl("siamese_augment", &dance_ext::siamese_augment_cuda);
  m.impl("siamese_augment_backward", &dance_ext::siamese_augment_backward_cuda);
}
