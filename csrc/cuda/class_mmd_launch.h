// Plain launchers of the class_mean_mmd CUDA kernels (csrc/cuda/class_mmd.cu): raw pointers
// and a stream, no torch types, so the .cu compiles with nvcc alone.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dance_ext {
namespace mmd_cuda {

// Features per forward block; the forward needs classes * forward_chunks(D) doubles of workspace.
constexpr int64_t kFeaturesPerBlock = 32;

inline int64_t forward_chunks(int64_t D) { return (D + kFeaturesPerBlock - 1) / kFeaturesPerBlock; }

// Rows of class c: c * n_per_class + r when order is null (class-major), else
// order[offsets[c] + r] for r < offsets[c + 1] - offsets[c] (rows grouped by label).
struct ClassRows {
  const int64_t* order;
  const int64_t* offsets;
  int64_t n_per_class;
};

// per_class[c] = ||mu_syn,c - mu_real,c||^2 and diff[c] = mu_syn,c - mu_real,c, in one launch.
// partial: C * forward_chunks(D) doubles; done: C zeroed counters. Needs C >= 1, D >= 1, C < 2^31,
// forward_chunks(D) <= 65535, every class non-empty on both sides.
template <typename scalar_t>
cudaError_t launch_class_mean_mmd_forward(const scalar_t* f_real, const scalar_t* f_syn, ClassRows real_rows,
                                          ClassRows syn_rows, int64_t C, int64_t D, scalar_t* per_class,
                                          scalar_t* diff, double* partial, unsigned int* done, cudaStream_t stream);

// grad_f_syn[r] = 2 * grad_per_class[c] * diff[c] / n_c for each synthetic row r of class c.
// syn_rows.order is unused; with labels (length rows) the class of row r is labels[r] and
// n_c comes from syn_rows.offsets, else c = r / n_per_class.
template <typename scalar_t>
cudaError_t launch_class_mean_mmd_backward(const scalar_t* grad_per_class, const scalar_t* diff, const int64_t* labels,
                                           ClassRows syn_rows, int64_t rows, int64_t D, scalar_t* grad_f_syn,
                                           cudaStream_t stream);

}  // namespace mmd_cuda
}  // namespace dance_ext
