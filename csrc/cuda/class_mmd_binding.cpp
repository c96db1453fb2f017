// CUDA registration of class_mean_mmd and class_mean_mmd_backward: argument checks, device
// guard, current stream, workspace; the kernels are in class_mmd.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "checks/mmd_checks.h"
#include "cuda/class_mmd_launch.h"

namespace dance_ext {
namespace {

using mmd_cuda::ClassRows;

// Rows grouped by label (stable sort) and per-class offsets, all on the device, plus a summary
// of the labels for the host check: (smallest label, largest label, smallest class count);
// no summary for no labels.
struct Grouping {
  at::Tensor order, offsets, summary;
  ClassRows rows() const { return ClassRows{order.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(), 0}; }
};

Grouping group_by_class(const at::Tensor& labels, int64_t num_classes) {
  const int64_t n = labels.size(0);
  Grouping g;
  if (n == 0) {
    g.order = at::empty({0}, labels.options());
    g.offsets = at::zeros({num_classes + 1}, labels.options());
    return g;
  }
  auto [sorted, order] = at::sort(labels, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  g.order = order.contiguous();
  g.offsets = at::searchsorted(sorted, at::arange(num_classes + 1, labels.options())).contiguous();
  const at::Tensor counts = g.offsets.slice(0, 1) - g.offsets.slice(0, 0, num_classes);
  // (no classes: every label is out of range, and min() of no counts would throw)
  g.summary = at::stack({sorted[0], sorted[n - 1], num_classes > 0 ? counts.min() : at::zeros({}, labels.options())});
  return g;
}

// Label values of every grouping checked with one device-to-host copy of their summaries
// (the only host synchronisation of a ragged call). A bad label is reported with the CPU
// kernel's message: only then are the labels themselves copied and scanned on the host.
struct LabelCheck {
  const at::Tensor* labels;
  const Grouping* grouping;
  const char* name;
  bool require_all;
};

void check_label_values(const std::vector<LabelCheck>& checks, int64_t num_classes) {
  std::vector<at::Tensor> summaries;
  for (const LabelCheck& c : checks)
    if (c.grouping->summary.defined()) summaries.push_back(c.grouping->summary);
  const at::Tensor host = summaries.empty() ? at::Tensor() : at::cat(summaries).to(at::kCPU);
  const int64_t* s = summaries.empty() ? nullptr : host.data_ptr<int64_t>();
  for (const LabelCheck& c : checks) {
    bool bad = c.require_all;  // no labels: bad if every class needs one
    int64_t low = 0, high = -1;
    if (c.grouping->summary.defined()) {
      low = s[0];
      high = s[1];
      bad = low < 0 || high >= num_classes || (c.require_all && s[2] == 0);
      s += 3;
    }
    if (!bad) continue;
    mmd_label_offsets(*c.labels, num_classes, c.name, c.require_all);  // throws the CPU kernel's message
    TORCH_CHECK_VALUE(false, c.name, ": expected labels in [0, ", num_classes, "), got values in [", low, ", ", high,
                      "]");
  }
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

std::tuple<at::Tensor, at::Tensor> class_mean_mmd_cuda(const at::Tensor& f_real_in, const at::Tensor& f_syn_in,
                                                       const std::optional<at::Tensor>& real_labels,
                                                       const std::optional<at::Tensor>& syn_labels,
                                                       int64_t num_classes) {
  const at::Device device = f_syn_in.device();
  TORCH_CHECK(device.is_cuda(), "f_syn: expected a CUDA tensor, got device ", device);
  check_mmd_features(f_real_in, "f_real", device);
  check_mmd_features(f_syn_in, "f_syn", device);
  const int64_t C = check_mmd_shapes(f_real_in, f_syn_in, real_labels, syn_labels, num_classes);
  const int64_t dim = f_real_in.dim(), D = f_real_in.size(-1);
  TORCH_CHECK(mmd_cuda::forward_chunks(D) <= 65535, "f_syn: feature dimension D=", D, " exceeds the CUDA kernel's ",
              65535 * mmd_cuda::kFeaturesPerBlock);
  const c10::cuda::CUDAGuard guard(device);
  const at::Tensor f_real = f_real_in.contiguous(), f_syn = f_syn_in.contiguous();

  ClassRows real_rows{nullptr, nullptr, 0}, syn_rows{nullptr, nullptr, 0};
  Grouping real_groups, syn_groups;
  if (dim == 3) {
    real_rows.n_per_class = f_real.size(1);
    syn_rows.n_per_class = f_syn.size(1);
  } else {
    check_mmd_labels(*real_labels, f_real.size(0), device, "real_labels");
    check_mmd_labels(*syn_labels, f_syn.size(0), device, "syn_labels");
    real_groups = group_by_class(*real_labels, C);
    syn_groups = group_by_class(*syn_labels, C);
    check_label_values({{&*real_labels, &real_groups, "real_labels", true}, {&*syn_labels, &syn_groups, "syn_labels", true}},
                       C);
    real_rows = real_groups.rows();
    syn_rows = syn_groups.rows();
  }
  TORCH_CHECK(C <= 0x7fffffff, "num_classes: at most 2^31 - 1 classes on CUDA, got ", C);
  if (C == 0 || D == 0) return {at::zeros({C}, f_syn.options()), at::zeros({C, D}, f_syn.options())};

  at::Tensor per_class = at::empty({C}, f_syn.options());
  at::Tensor diff = at::empty({C, D}, f_syn.options());
  at::Tensor partial = at::empty({C * mmd_cuda::forward_chunks(D)}, f_syn.options().dtype(at::kDouble));
  at::Tensor done = at::zeros({C}, f_syn.options().dtype(at::kInt));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(f_syn.scalar_type(), "class_mean_mmd_cuda", [&] {
    check_launch(mmd_cuda::launch_class_mean_mmd_forward<scalar_t>(
                     f_real.data_ptr<scalar_t>(), f_syn.data_ptr<scalar_t>(), real_rows, syn_rows, C, D,
                     per_class.data_ptr<scalar_t>(), diff.data_ptr<scalar_t>(), partial.data_ptr<double>(),
                     reinterpret_cast<unsigned int*>(done.data_ptr<int32_t>()), stream),
                 "class_mean_mmd");
  });
  return {per_class, diff};
}

at::Tensor class_mean_mmd_backward_cuda(const at::Tensor& grad_in, const at::Tensor& diff_in, const at::Tensor& f_syn,
                                        const std::optional<at::Tensor>& syn_labels) {
  const at::Device device = diff_in.device();
  TORCH_CHECK(device.is_cuda(), "diff: expected a CUDA tensor, got device ", device);
  const MmdBackwardDims dims = check_mmd_backward_args(grad_in, diff_in, f_syn, syn_labels, device);
  const int64_t C = dims.classes, D = dims.features, rows = dims.rows;
  const c10::cuda::CUDAGuard guard(device);
  const at::Tensor grad = grad_in.contiguous(), diff = diff_in.contiguous();
  // f_syn only gives the shape: its values are never read.
  at::Tensor out = at::empty(f_syn.sizes(), diff.options());
  ClassRows syn_rows{nullptr, nullptr, dims.per_class};
  Grouping groups;
  at::Tensor labels;
  if (f_syn.dim() == 2) {
    labels = syn_labels->contiguous();
    groups = group_by_class(labels, C);
    check_label_values({{&labels, &groups, "syn_labels", false}}, C);
    syn_rows = ClassRows{nullptr, groups.offsets.data_ptr<int64_t>(), 0};
  }
  if (rows == 0 || D == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(diff.scalar_type(), "class_mean_mmd_backward_cuda", [&] {
    check_launch(mmd_cuda::launch_class_mean_mmd_backward<scalar_t>(
                     grad.data_ptr<scalar_t>(), diff.data_ptr<scalar_t>(),
                     labels.defined() ? labels.data_ptr<int64_t>() : nullptr, syn_rows, rows, D,
                     out.data_ptr<scalar_t>(), stream),
                 "class_mean_mmd_backward");
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(dance_ext, CUDA, m) {
  m.impl("class_mean_mmd", &class_mean_mmd_cuda);
  m.impl("class_mean_mmd_backward", &class_mean_mmd_backward_cuda);
}

}  // namespace dance_ext
