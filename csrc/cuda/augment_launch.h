// Plain C++ entry points of the CUDA siamese_augment kernels (csrc/cuda/augment.cu),
// called by csrc/cuda/augment_binding.cpp. No torch types: raw pointers and a stream.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dance_ext {
namespace cuda {

struct AugmentDims {
  int64_t n, c, h, w;  // x is (n, c, h, w), contiguous
  int64_t p;           // rows of params (p, 13), contiguous
};

// y = siamese_augment(x, params, index). index: n row numbers in [0, p) or null
// (row i, or row 0 when p == 1); an out-of-range value trips a device-side assert.
// mean_ws: n elements of scratch. Returns the launch error, if any.
cudaError_t siamese_augment_forward(const float* x, const float* params, const int64_t* index, float* mean_ws,
                                    float* y, const AugmentDims& dims, cudaStream_t stream);
cudaError_t siamese_augment_forward(const double* x, const double* params, const int64_t* index, double* mean_ws,
                                    double* y, const AugmentDims& dims, cudaStream_t stream);

// grad_x = Jᵀ grad_y. total_ws: n elements of scratch. grad_x is fully overwritten.
cudaError_t siamese_augment_backward(const float* grad_y, const float* params, const int64_t* index,
                                     float* total_ws, float* grad_x, const AugmentDims& dims, cudaStream_t stream);
cudaError_t siamese_augment_backward(const double* grad_y, const double* params, const int64_t* index,
                                     double* total_ws, double* grad_x, const AugmentDims& dims, cudaStream_t stream);

}  // namespace cuda
}  // namespace dance_ext
