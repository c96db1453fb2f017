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

// Launch geometry shared with the binding: blocks of kAugmentThreads threads, one thread per
// output pixel; augment_pixel_blocks(d) blocks (gridDim.x) cover one sample's h·w pixels.
constexpr int kAugmentThreads = 256;
inline int64_t augment_pixel_blocks(const AugmentDims& d) {
  const int64_t blocks = (d.h * d.w + kAugmentThreads - 1) / kAugmentThreads;
  return blocks < 65535 ? blocks : 65535;
}

// Scratch elements of the backward: one partial total per (sample, pixel block), summed in
// block order (no atomics, so the totals are deterministic).
inline int64_t augment_backward_workspace(const AugmentDims& d) { return d.n * augment_pixel_blocks(d); }

// y = siamese_augment(x, params, index). index: n row numbers in [0, p) or null
// (row i, or row 0 when p == 1). The caller checks the index values on the host first
// (csrc/checks/augment_checks.h); the kernels only assert them (debug builds).
// mean_ws: n elements of scratch. Returns the launch error, if any.
cudaError_t siamese_augment_forward(const float* x, const float* params, const int64_t* index, float* mean_ws,
                                    float* y, const AugmentDims& dims, cudaStream_t stream);
cudaError_t siamese_augment_forward(const double* x, const double* params, const int64_t* index, double* mean_ws,
                                    double* y, const AugmentDims& dims, cudaStream_t stream);

// grad_x = Jᵀ grad_y. partial_ws: augment_backward_workspace(dims) elements of scratch. grad_x
// is fully overwritten. Integral rows (flip, shift, cutout) gather and are deterministic;
// resampled rows (scale, rotate) scatter with float atomics, whose order varies between runs.
cudaError_t siamese_augment_backward(const float* grad_y, const float* params, const int64_t* index,
                                     float* partial_ws, float* grad_x, const AugmentDims& dims, cudaStream_t stream);
cudaError_t siamese_augment_backward(const double* grad_y, const double* params, const int64_t* index,
                                     double* partial_ws, double* grad_x, const AugmentDims& dims, cudaStream_t stream);

}  // namespace cuda
}  // namespace dance_ext
