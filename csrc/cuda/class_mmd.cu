// CUDA kernels of class_mean_mmd (no torch headers: compile-checkable with nvcc alone).
// Forward: one launch, a block per (class, 32-feature chunk). Each block sums its columns
// over the class rows (8 warps take interleaved rows, warp-coalesced reads), forms diff and
// the chunk's squared norm; the last block of a class to finish adds the chunk partials in
// chunk order, so the result does not depend on block scheduling.
#include "cuda/class_mmd_launch.h"
#include "kernels/mmd_math.h"

#include <algorithm>

namespace dance_ext {
namespace mmd_cuda {
namespace {

using mmd::acc_t;

constexpr int kFeat = static_cast<int>(kFeaturesPerBlock);  // threadIdx.x: one feature each
constexpr int kRowGroups = 8;                                // threadIdx.y: interleaved rows
constexpr int kBackwardThreads = 256;

__device__ inline int64_t class_count(const ClassRows& rows, int64_t c) {
  return rows.order ? rows.offsets[c + 1] - rows.offsets[c] : rows.n_per_class;
}

__device__ inline int64_t class_row(const ClassRows& rows, int64_t c, int64_t r) {
  return rows.order ? rows.order[rows.offsets[c] + r] : c * rows.n_per_class + r;
}

// Sum of feature d over rows first, first + kRowGroups, ... of class c.
template <typename scalar_t>
__device__ inline acc_t strided_column_sum(const scalar_t* f, const ClassRows& rows, int64_t c, int64_t count,
                                           int64_t D, int64_t d, int first) {
  acc_t sum = 0.0;
#pragma unroll 4
  for (int64_t r = first; r < count; r += kRowGroups) mmd::accumulate(sum, f[class_row(rows, c, r) * D + d]);
  return sum;
}

template <typename scalar_t>
__global__ void __launch_bounds__(kFeat * kRowGroups)
    forward_kernel(const scalar_t* __restrict__ f_real, const scalar_t* __restrict__ f_syn, ClassRows real_rows,
                   ClassRows syn_rows, int64_t D, int chunks, scalar_t* __restrict__ per_class,
                   scalar_t* __restrict__ diff, double* partial, unsigned int* done) {
  __shared__ acc_t sum_real[kRowGroups][kFeat];
  __shared__ acc_t sum_syn[kRowGroups][kFeat];
  __shared__ bool last_block;
  const int64_t c = blockIdx.x;
  const int chunk = blockIdx.y;
  const int x = threadIdx.x, y = threadIdx.y;
  const int64_t d = static_cast<int64_t>(chunk) * kFeat + x;
  const int64_t n_real = class_count(real_rows, c), n_syn = class_count(syn_rows, c);

  acc_t a = 0.0, b = 0.0;
  if (d < D) {
    a = strided_column_sum(f_real, real_rows, c, n_real, D, d, y);
    b = strided_column_sum(f_syn, syn_rows, c, n_syn, D, d, y);
  }
  sum_real[y][x] = a;
  sum_syn[y][x] = b;
  __syncthreads();

  if (y == 0) {  // warp 0: fixed-order combine of the row groups, then the chunk's norm
    acc_t sr = 0.0, ss = 0.0;
#pragma unroll
    for (int g = 0; g < kRowGroups; ++g) {
      sr += sum_real[g][x];
      ss += sum_syn[g][x];
    }
    acc_t sq = 0.0;
    if (d < D) {
      const acc_t delta = mmd::mean_difference(ss, n_syn, sr, n_real);
      diff[c * D + d] = static_cast<scalar_t>(delta);
      sq = mmd::squared(delta);
    }
#pragma unroll
    for (int offset = kFeat / 2; offset > 0; offset /= 2) sq += __shfl_down_sync(0xffffffffu, sq, offset);
    if (x == 0) {
      partial[c * chunks + chunk] = sq;
      __threadfence();  // publish the partial before counting this block as done
      last_block = atomicAdd(&done[c], 1u) == static_cast<unsigned int>(chunks - 1);
    }
  }
  __syncthreads();

  if (last_block && y == 0) {
    __threadfence();
    const volatile double* p = partial + c * chunks;
    // Each lane sums a fixed interleaved subset in order, then a fixed shuffle tree.
    acc_t s = 0.0;
    for (int j = x; j < chunks; j += kFeat) s += p[j];
#pragma unroll
    for (int offset = kFeat / 2; offset > 0; offset /= 2) s += __shfl_down_sync(0xffffffffu, s, offset);
    if (x == 0) per_class[c] = static_cast<scalar_t>(s);
  }
}

template <typename scalar_t>
__global__ void backward_kernel(const scalar_t* __restrict__ grad_per_class, const scalar_t* __restrict__ diff,
                                const int64_t* __restrict__ labels, ClassRows syn_rows, int64_t total, int64_t D,
                                scalar_t* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / D, d = i - r * D;
    const int64_t c = labels ? labels[r] : r / syn_rows.n_per_class;
    const int64_t n_c = labels ? syn_rows.offsets[c + 1] - syn_rows.offsets[c] : syn_rows.n_per_class;
    out[i] = mmd::grad_value(mmd::grad_scale(grad_per_class[c], n_c), diff[c * D + d]);
  }
}

}  // namespace

template <typename scalar_t>
cudaError_t launch_class_mean_mmd_forward(const scalar_t* f_real, const scalar_t* f_syn, ClassRows real_rows,
                                          ClassRows syn_rows, int64_t C, int64_t D, scalar_t* per_class,
                                          scalar_t* diff, double* partial, unsigned int* done, cudaStream_t stream) {
  const int64_t chunks = forward_chunks(D);
  if (C < 1 || C > 0x7fffffff || chunks < 1 || chunks > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned int>(C), static_cast<unsigned int>(chunks));
  const dim3 block(kFeat, kRowGroups);
  forward_kernel<scalar_t><<<grid, block, 0, stream>>>(f_real, f_syn, real_rows, syn_rows, D,
                                                       static_cast<int>(chunks), per_class, diff, partial, done);
  return cudaGetLastError();
}

template <typename scalar_t>
cudaError_t launch_class_mean_mmd_backward(const scalar_t* grad_per_class, const scalar_t* diff, const int64_t* labels,
                                           ClassRows syn_rows, int64_t rows, int64_t D, scalar_t* grad_f_syn,
                                           cudaStream_t stream) {
  const int64_t total = rows * D;
  if (total == 0) return cudaSuccess;
  const int64_t blocks = std::min<int64_t>((total + kBackwardThreads - 1) / kBackwardThreads, 65536);
  backward_kernel<scalar_t><<<static_cast<unsigned int>(blocks), kBackwardThreads, 0, stream>>>(
      grad_per_class, diff, labels, syn_rows, total, D, grad_f_syn);
  return cudaGetLastError();
}

template cudaError_t launch_class_mean_mmd_forward<float>(const float*, const float*, ClassRows, ClassRows, int64_t,
                                                          int64_t, float*, float*, double*, unsigned int*,
                                                          cudaStream_t);
template cudaError_t launch_class_mean_mmd_forward<double>(const double*, const double*, ClassRows, ClassRows,
                                                           int64_t, int64_t, double*, double*, double*,
                                                           unsigned int*, cudaStream_t);
template cudaError_t launch_class_mean_mmd_backward<float>(const float*, const float*, const int64_t*, ClassRows,
                                                           int64_t, int64_t, float*, cudaStream_t);
template cudaError_t launch_class_mean_mmd_backward<double>(const double*, const double*, const int64_t*, ClassRows,
                                                            int64_t, int64_t, double*, cudaStream_t);

}  // namespace mmd_cuda
}  // namespace dance_ext
