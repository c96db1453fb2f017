// CPU kernels of class_mean_mmd and class_mean_mmd_backward (schemas in csrc/ops.cpp).
// Work is split over (class, feature-chunk) items; each item owns its class sums, so there
// is no shared accumulation, and a fixed chunk size makes results independent of threads.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "checks/mmd_checks.h"
#include "kernels/mmd_math.h"

namespace dance_ext {

namespace {

using mmd::acc_t;

constexpr int64_t kChunk = 256;  // features per work item

// Rows of class c: c*n .. c*n+n-1 when class-major, else order[offsets[c] .. offsets[c+1]).
struct RowMap {
  const int64_t* order = nullptr;
  const int64_t* offsets = nullptr;
  int64_t n = 0;
  int64_t count(int64_t c) const { return order ? offsets[c + 1] - offsets[c] : n; }
  int64_t row(int64_t c, int64_t r) const { return order ? order[offsets[c] + r] : c * n + r; }
};

// Stable counting sort of rows by label; checks range and (if require_all) non-empty classes.
struct Grouping {
  std::vector<int64_t> offsets, order;
  RowMap map() const { return RowMap{order.data(), offsets.data(), 0}; }
};

Grouping group_by_class(const at::Tensor& labels_in, int64_t num_classes, const char* name, bool require_all) {
  const at::Tensor labels = labels_in.contiguous();
  const int64_t* l = labels.data_ptr<int64_t>();
  const int64_t n = labels.numel();
  Grouping g;
  g.offsets = mmd_label_offsets(labels, num_classes, name, require_all);
  g.order.resize(n);
  std::vector<int64_t> next(g.offsets.begin(), g.offsets.end() - 1);
  for (int64_t i = 0; i < n; ++i) g.order[next[l[i]]++] = i;
  return g;
}

// Sums rows of class c over features d0 .. d0+len-1 in row order; four rows per pass so the
// accumulators are loaded and stored once per four rows.
template <typename scalar_t>
void class_sums(const scalar_t* f, const RowMap& rows, int64_t c, int64_t D, int64_t d0, int64_t len, acc_t* sum) {
  std::fill(sum, sum + len, 0.0);
  const int64_t n = rows.count(c);
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const scalar_t* p0 = f + rows.row(c, r) * D + d0;
    const scalar_t* p1 = f + rows.row(c, r + 1) * D + d0;
    const scalar_t* p2 = f + rows.row(c, r + 2) * D + d0;
    const scalar_t* p3 = f + rows.row(c, r + 3) * D + d0;
    for (int64_t j = 0; j < len; ++j) {
      acc_t s = sum[j];
      mmd::accumulate(s, p0[j]);
      mmd::accumulate(s, p1[j]);
      mmd::accumulate(s, p2[j]);
      mmd::accumulate(s, p3[j]);
      sum[j] = s;
    }
  }
  for (; r < n; ++r) {
    const scalar_t* p = f + rows.row(c, r) * D + d0;
    for (int64_t j = 0; j < len; ++j) mmd::accumulate(sum[j], p[j]);
  }
}

template <typename scalar_t>
void forward_kernel(const scalar_t* real, const scalar_t* syn, int64_t C, int64_t D, const RowMap& real_rows,
                    const RowMap& syn_rows, scalar_t* per_class, scalar_t* diff) {
  const int64_t chunks = (D + kChunk - 1) / kChunk;
  std::vector<acc_t> partial(C * chunks, 0.0);
  at::parallel_for(0, C * chunks, 1, [&](int64_t begin, int64_t end) {
    acc_t sum_real[kChunk], sum_syn[kChunk];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t c = item / chunks, d0 = (item % chunks) * kChunk, len = std::min(kChunk, D - d0);
      class_sums(real, real_rows, c, D, d0, len, sum_real);
      class_sums(syn, syn_rows, c, D, d0, len, sum_syn);
      const int64_t n_real = real_rows.count(c), n_syn = syn_rows.count(c);
      acc_t sq = 0.0;
      for (int64_t j = 0; j < len; ++j) {
        const acc_t d = mmd::mean_difference(sum_syn[j], n_syn, sum_real[j], n_real);
        diff[c * D + d0 + j] = static_cast<scalar_t>(d);
        sq += mmd::squared(d);
      }
      partial[item] = sq;
    }
  });
  // Deterministic second stage: chunk partials summed in order.
  for (int64_t c = 0; c < C; ++c) {
    acc_t s = 0.0;
    for (int64_t k = 0; k < chunks; ++k) s += partial[c * chunks + k];
    per_class[c] = static_cast<scalar_t>(s);
  }
}

std::tuple<at::Tensor, at::Tensor> class_mean_mmd_cpu(const at::Tensor& f_real_in, const at::Tensor& f_syn_in,
                                                      const std::optional<at::Tensor>& real_labels,
                                                      const std::optional<at::Tensor>& syn_labels,
                                                      int64_t num_classes) {
  const at::Device cpu(at::kCPU);
  check_mmd_features(f_real_in, "f_real", cpu);
  check_mmd_features(f_syn_in, "f_syn", cpu);
  const int64_t C = check_mmd_shapes(f_real_in, f_syn_in, real_labels, syn_labels, num_classes);
  const int64_t dim = f_real_in.dim(), D = f_real_in.size(-1);
  const at::Tensor f_real = f_real_in.contiguous(), f_syn = f_syn_in.contiguous();

  RowMap real_rows, syn_rows;
  Grouping real_groups, syn_groups;
  if (dim == 3) {
    real_rows.n = f_real.size(1);
    syn_rows.n = f_syn.size(1);
  } else {
    check_mmd_labels(*real_labels, f_real.size(0), cpu, "real_labels");
    check_mmd_labels(*syn_labels, f_syn.size(0), cpu, "syn_labels");
    real_groups = group_by_class(*real_labels, C, "real_labels", true);
    syn_groups = group_by_class(*syn_labels, C, "syn_labels", true);
    real_rows = real_groups.map();
    syn_rows = syn_groups.map();
  }
  at::Tensor per_class = at::empty({C}, f_syn.options());
  at::Tensor diff = at::empty({C, D}, f_syn.options());
  AT_DISPATCH_FLOATING_TYPES(f_syn.scalar_type(), "class_mean_mmd_cpu", [&] {
    forward_kernel<scalar_t>(f_real.data_ptr<scalar_t>(), f_syn.data_ptr<scalar_t>(), C, D, real_rows, syn_rows,
                             per_class.data_ptr<scalar_t>(), diff.data_ptr<scalar_t>());
  });
  return {per_class, diff};
}

template <typename scalar_t>
void backward_kernel(const scalar_t* grad, const scalar_t* diff, int64_t D, int64_t rows, int64_t n_per_class,
                     const int64_t* labels, const int64_t* offsets, scalar_t* out) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(D, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = labels ? labels[r] : r / n_per_class;
      const int64_t n_c = labels ? offsets[c + 1] - offsets[c] : n_per_class;
      const acc_t scale = mmd::grad_scale(grad[c], n_c);
      const scalar_t* dc = diff + c * D;
      scalar_t* o = out + r * D;
      for (int64_t d = 0; d < D; ++d) o[d] = mmd::grad_value(scale, dc[d]);
    }
  });
}

at::Tensor class_mean_mmd_backward_cpu(const at::Tensor& grad_in, const at::Tensor& diff_in, const at::Tensor& f_syn,
                                       const std::optional<at::Tensor>& syn_labels) {
  const MmdBackwardDims dims = check_mmd_backward_args(grad_in, diff_in, f_syn, syn_labels, at::Device(at::kCPU));
  const int64_t C = dims.classes, D = dims.features, rows = dims.rows, n_per_class = dims.per_class;
  const at::Tensor grad = grad_in.contiguous(), diff = diff_in.contiguous();
  // f_syn only gives the shape: its values are never read.
  at::Tensor out = at::empty(f_syn.sizes(), diff.options());
  Grouping groups;
  at::Tensor labels;
  if (f_syn.dim() == 2) {
    labels = syn_labels->contiguous();
    groups = group_by_class(labels, C, "syn_labels", false);
  }
  if (D == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(diff.scalar_type(), "class_mean_mmd_backward_cpu", [&] {
    backward_kernel<scalar_t>(grad.data_ptr<scalar_t>(), diff.data_ptr<scalar_t>(), D, rows, n_per_class,
                              labels.defined() ? labels.data_ptr<int64_t>() : nullptr, groups.offsets.data(),
                              out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(dance_ext, CPU, m) {
  m.impl("class_mean_mmd", &class_mean_mmd_cpu);
  m.impl("class_mean_mmd_backward", &class_mean_mmd_backward_cpu);
}

}  // namespace dance_ext
