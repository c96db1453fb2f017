// CUDA kernels of dance_ext::siamese_augment and its backward. The per-pixel math
// is csrc/kernels/augment_math.h, shared with the CPU kernels; only the launch
// geometry, the reductions and the atomics of the backward scatter live here.
// Determinism: the forward and the integral rows' backward are atomic-free; the per-sample
// totals of the backward are block partials summed in a fixed order; only the scatter of
// resampled rows uses float atomics (the binding alerts under deterministic mode).
// No torch headers, so nvcc compiles this file alone (.ci/check_cuda.sh).
#include <cassert>

#include "cuda/augment_launch.h"
#include "kernels/augment_math.h"

namespace dance_ext {
namespace cuda {
namespace {

namespace aug = augment;

constexpr int kThreads = kAugmentThreads;
constexpr int64_t kMaxGridY = 65535;

// Sum of v over the block; the result is valid in thread 0. blockDim.x is a
// multiple of 32 and at most 1024.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T warp_sums[32];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = threadIdx.x < blockDim.x / 32 ? warp_sums[lane] : T(0);
  if (warp == 0)
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  __syncthreads();  // warp_sums may be reused by the next call
  return v;
}

template <typename T>
__device__ aug::Row<T> load_row(const T* params, const int64_t* index, const AugmentDims& d, int64_t n) {
  const int64_t r = index != nullptr ? index[n] : (d.p == 1 ? 0 : n);
  assert(r >= 0 && r < d.p && "siamese_augment: index: values must lie in [0, rows of params)");
  return aug::make_row(params + r * aug::kNumParams, d.h, d.w);
}

// mean[n] = mean of x[n] over (C, H, W). One block per sample.
template <typename T>
__global__ void sample_mean_kernel(const T* x, T* mean, AugmentDims d) {
  const int64_t sample = d.c * d.h * d.w;
  for (int64_t n = blockIdx.x; n < d.n; n += gridDim.x) {
    const T* xn = x + n * sample;
    T acc = 0;
    for (int64_t k = threadIdx.x; k < sample; k += blockDim.x) acc += xn[k];
    acc = block_sum(acc);
    if (threadIdx.x == 0) mean[n] = acc / static_cast<T>(sample);
  }
}

// One thread per output pixel, all channels; blockIdx.y walks the samples.
template <typename T>
__global__ void forward_kernel(const T* x, const T* params, const int64_t* index, const T* mean, T* y,
                               AugmentDims d) {
  __shared__ aug::Row<T> row;
  __shared__ aug::Colour<T> colour;
  const int64_t plane = d.h * d.w, sample = d.c * plane;
  for (int64_t n = blockIdx.y; n < d.n; n += gridDim.y) {
    if (threadIdx.x == 0) {
      row = load_row(params, index, d, n);
      colour = aug::colour_forward(row, mean[n]);
    }
    __syncthreads();
    for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < plane;
         o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const aug::Taps<T> t = aug::taps(row, o / d.w, o % d.w, d.h, d.w);
      aug::forward_pixel(x + n * sample, y + n * sample + o, t, colour, d.c, plane);
    }
    __syncthreads();  // row is rewritten for the next sample
  }
}

// Geometric backward u = Gᵀ grad_y into grad_x (zeroed), and this block's part of Σ u into
// partial[n · gridDim.x + blockIdx.x] (every block writes its entry for each of its samples).
// Integral rows gather (the transpose of a flip/shift is again one, so each thread
// writes only its own pixel); resampled rows scatter the bilinear weights atomically.
template <typename T>
__global__ void scatter_kernel(const T* grad_y, const T* params, const int64_t* index, T* grad_x, T* partial,
                               AugmentDims d) {
  __shared__ aug::Row<T> row;
  const int64_t plane = d.h * d.w, sample = d.c * plane;
  for (int64_t n = blockIdx.y; n < d.n; n += gridDim.y) {
    if (threadIdx.x == 0) {
      row = load_row(params, index, d, n);
      if (row.integral) row = aug::integral_transpose(row, d.w);
    }
    __syncthreads();
    T local = 0;
    const T* gy = grad_y + n * sample;
    T* u = grad_x + n * sample;
    for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < plane;
         o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      if (row.integral) {
        const int64_t src = aug::integral_span(row, o / d.w, d.h, d.w).source(o % d.w);
        if (src < 0) continue;
        for (int64_t c = 0; c < d.c; ++c) {
          const T g = gy[c * plane + src];
          u[c * plane + o] = g;
          local += g;
        }
        continue;
      }
      const aug::Taps<T> t = aug::taps(row, o / d.w, o % d.w, d.h, d.w);
      for (int64_t c = 0; c < d.c; ++c) {
        T share[4];  // the CPU kernel's rule: zero-weight taps take no part, even for a NaN/inf g
        local += aug::transpose_taps(t, gy[c * plane + o], share);
        for (int k = 0; k < 4; ++k)
          if (t.weight[k] != T(0)) atomicAdd(u + c * plane + t.offset[k], share[k]);
      }
    }
    local = block_sum(local);
    if (threadIdx.x == 0) partial[n * gridDim.x + blockIdx.x] = local;
  }
}

// Colour transpose in place: grad_x_c = A·u_c + B·Σ_c' u_c' + E·total, total = Σ u of the
// sample, summed from the scatter's `parts` block partials in a fixed order.
template <typename T>
__global__ void colour_backward_kernel(const T* params, const int64_t* index, const T* partial, int64_t parts,
                                       T* grad_x, AugmentDims d) {
  __shared__ aug::ColourT<T> colour;
  __shared__ T total;
  const int64_t plane = d.h * d.w, sample = d.c * plane;
  for (int64_t n = blockIdx.y; n < d.n; n += gridDim.y) {
    T part = 0;
    for (int64_t b = threadIdx.x; b < parts; b += blockDim.x) part += partial[n * parts + b];
    part = block_sum(part);  // a fixed tree: the same bits on every run
    if (threadIdx.x == 0) {
      colour = aug::colour_backward(load_row(params, index, d, n), d.c, plane);
      total = part;
    }
    __syncthreads();
    const T shared = colour.e * total;
    for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < plane;
         q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      T* u = grad_x + n * sample + q;
      T channel_sum = 0;
      for (int64_t c = 0; c < d.c; ++c) channel_sum += u[c * plane];
      const T common = colour.b * channel_sum + shared;
      for (int64_t c = 0; c < d.c; ++c) u[c * plane] = colour.a * u[c * plane] + common;
    }
    __syncthreads();
  }
}

dim3 pixel_grid(const AugmentDims& d) {
  return dim3(static_cast<unsigned>(augment_pixel_blocks(d)), static_cast<unsigned>(d.n < kMaxGridY ? d.n : kMaxGridY));
}

unsigned sample_grid(const AugmentDims& d) {
  return static_cast<unsigned>(d.n < (int64_t{1} << 30) ? d.n : (int64_t{1} << 30));
}

template <typename T>
cudaError_t forward(const T* x, const T* params, const int64_t* index, T* mean_ws, T* y, const AugmentDims& d,
                    cudaStream_t stream) {
  if (d.n == 0 || d.c * d.h * d.w == 0) return cudaSuccess;
  sample_mean_kernel<T><<<sample_grid(d), kThreads, 0, stream>>>(x, mean_ws, d);
  forward_kernel<T><<<pixel_grid(d), kThreads, 0, stream>>>(x, params, index, mean_ws, y, d);
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward(const T* grad_y, const T* params, const int64_t* index, T* partial_ws, T* grad_x,
                     const AugmentDims& d, cudaStream_t stream) {
  if (d.n == 0 || d.c * d.h * d.w == 0) return cudaSuccess;
  const cudaError_t err = cudaMemsetAsync(grad_x, 0, sizeof(T) * d.n * d.c * d.h * d.w, stream);
  if (err != cudaSuccess) return err;
  const dim3 grid = pixel_grid(d);  // both kernels: grid.x == augment_pixel_blocks(d) partials per sample
  scatter_kernel<T><<<grid, kThreads, 0, stream>>>(grad_y, params, index, grad_x, partial_ws, d);
  colour_backward_kernel<T><<<grid, kThreads, 0, stream>>>(params, index, partial_ws,
                                                           static_cast<int64_t>(grid.x), grad_x, d);
  return cudaGetLastError();
}

}  // namespace

cudaError_t siamese_augment_forward(const float* x, const float* params, const int64_t* index, float* mean_ws,
                                    float* y, const AugmentDims& dims, cudaStream_t stream) {
  return forward(x, params, index, mean_ws, y, dims, stream);
}
cudaError_t siamese_augment_forward(const double* x, const double* params, const int64_t* index, double* mean_ws,
                                    double* y, const AugmentDims& dims, cudaStream_t stream) {
  return forward(x, params, index, mean_ws, y, dims, stream);
}
cudaError_t siamese_augment_backward(const float* grad_y, const float* params, const int64_t* index,
                                     float* partial_ws, float* grad_x, const AugmentDims& dims, cudaStream_t stream) {
  return backward(grad_y, params, index, partial_ws, grad_x, dims, stream);
}
cudaError_t siamese_augment_backward(const double* grad_y, const double* params, const int64_t* index,
                                     double* partial_ws, double* grad_x, const AugmentDims& dims, cudaStream_t stream) {
  return backward(grad_y, params, index, partial_ws, grad_x, dims, stream);
}

}  // namespace cuda
}  // namespace dance_ext
