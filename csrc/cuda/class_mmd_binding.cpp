// CUDA registration of class_mean_mmd and class_mean_mmd_backward: argument checks, device
// guard, current stream, workspace; the kernels are in class_mmd.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cpu/class_mmd.h"
#include "cuda/class_mmd_launch.h"

namespace dance_ext {
namespace {

using mmd_cuda::ClassRows;

void check_on(const at::Tensor& t, const at::Device& device, const char* name) {
  TORCH_CHECK(t.device() == device, name, ": expected device ", device, ", got ", t.device());
}

void check_labels(const at::Tensor& labels, int64_t rows, const at::Device& device, const char* name) {
  check_on(labels, device, name);
  TORCH_CHECK(labels.scalar_type() == at::kLong && labels.dim() == 1 && labels.size(0) == rows, name,
              ": expected an int64 vector of length ", rows, ", got dtype ", labels.scalar_type(), " and shape ",
              labels.sizes());
}

// Rows grouped by label (stable sort) and per-class offsets. Validating the labels costs one
// device-to-host copy; only the ragged path pays it.
struct Grouping {
  at::Tensor order, offsets;
  ClassRows rows() const { return ClassRows{order.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(), 0}; }
};

Grouping group_by_class(const at::Tensor& labels, int64_t num_classes, const char* name, bool require_all) {
  const int64_t n = labels.size(0);
  TORCH_CHECK(n > 0 || !require_all, name, ": every class in [0, ", num_classes,
              ") needs at least one sample, got no labels");
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
  const at::Tensor stats = at::stack({sorted[0], sorted[n - 1], counts.min()}).cpu();
  const int64_t* s = stats.data_ptr<int64_t>();
  TORCH_CHECK(s[0] >= 0 && s[1] < num_classes, name, ": expected labels in [0, ", num_classes, "), got values in [",
              s[0], ", ", s[1], "]");
  TORCH_CHECK(!require_all || s[2] > 0, name, ": every class in [0, ", num_classes,
              ") needs at least one sample, some class has none");
  return g;
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
  check_on(f_real_in, device, "f_real");
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
    check_labels(*real_labels, f_real.size(0), device, "real_labels");
    check_labels(*syn_labels, f_syn.size(0), device, "syn_labels");
    real_groups = group_by_class(*real_labels, C, "real_labels", true);
    syn_groups = group_by_class(*syn_labels, C, "syn_labels", true);
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
  check_on(grad_in, device, "grad_per_class");
  check_on(f_syn, device, "f_syn");
  TORCH_CHECK(diff_in.scalar_type() == at::kFloat || diff_in.scalar_type() == at::kDouble,
              "diff: expected float32 or float64, got ", diff_in.scalar_type());
  TORCH_CHECK(diff_in.dim() == 2, "diff: expected a 2-D (C, D) tensor, got shape ", diff_in.sizes());
  const int64_t C = diff_in.size(0), D = diff_in.size(1);
  TORCH_CHECK(grad_in.scalar_type() == diff_in.scalar_type(), "grad_per_class: expected dtype ",
              diff_in.scalar_type(), " like diff, got ", grad_in.scalar_type());
  TORCH_CHECK(grad_in.dim() == 1 && grad_in.size(0) == C, "grad_per_class: expected shape (", C,
              ",) like diff's classes, got ", grad_in.sizes());
  TORCH_CHECK(f_syn.dim() == 2 || f_syn.dim() == 3, "f_syn: expected a 2-D or 3-D tensor, got shape ",
              f_syn.sizes());
  TORCH_CHECK(f_syn.size(-1) == D, "f_syn: expected feature dimension D=", D, " like diff, got ", f_syn.size(-1));
  const c10::cuda::CUDAGuard guard(device);
  const at::Tensor grad = grad_in.contiguous(), diff = diff_in.contiguous();
  // f_syn only gives the shape: its values are never read.
  at::Tensor out = at::empty(f_syn.sizes(), diff.options());
  const int64_t rows = f_syn.dim() == 3 ? f_syn.size(0) * f_syn.size(1) : f_syn.size(0);
  ClassRows syn_rows{nullptr, nullptr, 0};
  Grouping groups;
  at::Tensor labels;
  if (f_syn.dim() == 3) {
    TORCH_CHECK(!syn_labels.has_value(), "syn_labels: expected None with class-major 3-D f_syn");
    TORCH_CHECK(f_syn.size(0) == C, "f_syn: expected C=", C, " classes like diff, got ", f_syn.size(0));
    syn_rows.n_per_class = f_syn.size(1);
  } else {
    TORCH_CHECK(syn_labels.has_value(), "syn_labels: required with 2-D (n, D) f_syn");
    check_labels(*syn_labels, f_syn.size(0), device, "syn_labels");
    labels = syn_labels->contiguous();
    groups = group_by_class(labels, C, "syn_labels", false);
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
