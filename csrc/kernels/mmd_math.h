// Per-element math of class_mean_mmd, shared by the CPU kernel (csrc/cpu/class_mmd.cpp)
// and the CUDA kernel (csrc/cuda/class_mmd.cu). Only launch geometry and reductions
// differ per device; every value is formed here. Accumulation is in double on both.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DANCE_MMD_HD __host__ __device__
#else
#define DANCE_MMD_HD
#endif

namespace dance_ext {
namespace mmd {

using acc_t = double;

// Adds one feature value of one row to a running class sum.
template <typename scalar_t>
DANCE_MMD_HD inline void accumulate(acc_t& sum, scalar_t value) {
  sum += static_cast<acc_t>(value);
}

// mu_syn - mu_real for one feature, from the class sums and counts.
DANCE_MMD_HD inline acc_t mean_difference(acc_t sum_syn, int64_t n_syn, acc_t sum_real, int64_t n_real) {
  return sum_syn / static_cast<acc_t>(n_syn) - sum_real / static_cast<acc_t>(n_real);
}

// One feature's term of the squared norm ||mu_real - mu_syn||^2.
DANCE_MMD_HD inline acc_t squared(acc_t diff) { return diff * diff; }

// d per_class_c / d f_syn[i, d] = scale_c * diff_c[d], scale_c = 2 * grad_c / n_c.
template <typename scalar_t>
DANCE_MMD_HD inline acc_t grad_scale(scalar_t grad_c, int64_t n_c) {
  return 2.0 * static_cast<acc_t>(grad_c) / static_cast<acc_t>(n_c);
}

template <typename scalar_t>
DANCE_MMD_HD inline scalar_t grad_value(acc_t scale, scalar_t diff) {
  return static_cast<scalar_t>(scale * static_cast<acc_t>(diff));
}

}  // namespace mmd
}  // namespace dance_ext
