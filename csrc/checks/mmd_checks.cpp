// Argument checks of the class_mean_mmd ops (declared in checks/mmd_checks.h).
#include "checks/mmd_checks.h"

#include <ATen/ATen.h>

namespace dance_ext {

void check_mmd_device(const at::Tensor& t, const char* name, const at::Device& device) {
  if (device.is_cpu()) {
    TORCH_CHECK(t.device().is_cpu(), name, ": expected a CPU tensor, got device ", t.device());
  } else {
    TORCH_CHECK(t.device() == device, name, ": expected device ", device, ", got ", t.device());
  }
}

void check_mmd_features(const at::Tensor& f, const char* name, const at::Device& device) {
  check_mmd_device(f, name, device);
  TORCH_CHECK(f.scalar_type() == at::kFloat || f.scalar_type() == at::kDouble, name,
              ": expected float32 or float64, got ", f.scalar_type());
}

int64_t check_mmd_shapes(const at::Tensor& f_real, const at::Tensor& f_syn, const std::optional<at::Tensor>& real_labels,
                         const std::optional<at::Tensor>& syn_labels, int64_t num_classes) {
  TORCH_CHECK(f_syn.scalar_type() == at::kFloat || f_syn.scalar_type() == at::kDouble,
              "f_syn: expected float32 or float64, got ", f_syn.scalar_type());
  TORCH_CHECK(f_syn.scalar_type() == f_real.scalar_type(), "f_syn: expected dtype ", f_real.scalar_type(),
              " like f_real, got ", f_syn.scalar_type());
  const int64_t dim = f_real.dim();
  TORCH_CHECK(dim == 2 || dim == 3, "f_real: expected a 2-D (n, D) or 3-D (C, n, D) tensor, got shape ",
              f_real.sizes());
  TORCH_CHECK(f_syn.dim() == dim, "f_syn: expected ", dim, " dims like f_real, got shape ", f_syn.sizes());
  TORCH_CHECK(f_syn.size(-1) == f_real.size(-1), "f_syn: expected feature dimension D=", f_real.size(-1),
              " like f_real, got ", f_syn.size(-1));
  if (dim == 3) {
    TORCH_CHECK(!real_labels.has_value(), "real_labels: expected None with class-major 3-D features");
    TORCH_CHECK(!syn_labels.has_value(), "syn_labels: expected None with class-major 3-D features");
    const int64_t C = f_real.size(0);
    TORCH_CHECK(f_syn.size(0) == C, "f_syn: expected C=", C, " classes like f_real, got ", f_syn.size(0));
    TORCH_CHECK(num_classes == C, "num_classes: expected ", C, " (dim 0 of f_real) with 3-D features, got ",
                num_classes);
    TORCH_CHECK(f_real.size(1) > 0 && f_syn.size(1) > 0,
                "f_real, f_syn: every class needs at least one sample, got shapes ", f_real.sizes(), " and ",
                f_syn.sizes());
    return C;
  }
  TORCH_CHECK(num_classes >= 1, "num_classes: expected a positive int, got ", num_classes);
  TORCH_CHECK(real_labels.has_value(), "real_labels: required with 2-D (n, D) features");
  TORCH_CHECK(syn_labels.has_value(), "syn_labels: required with 2-D (n, D) features");
  return num_classes;
}

void check_mmd_labels(const at::Tensor& labels, int64_t rows, const at::Device& device, const char* name) {
  check_mmd_device(labels, name, device);
  TORCH_CHECK(labels.scalar_type() == at::kLong && labels.dim() == 1 && labels.size(0) == rows, name,
              ": expected an int64 vector of length ", rows, ", got dtype ", labels.scalar_type(), " and shape ",
              labels.sizes());
}

std::vector<int64_t> mmd_label_offsets(const at::Tensor& labels, int64_t num_classes, const char* name,
                                       bool require_all) {
  const at::Tensor host = labels.to(at::kCPU).contiguous();
  const int64_t* l = host.data_ptr<int64_t>();
  const int64_t n = host.numel();
  std::vector<int64_t> offsets(num_classes + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK_VALUE(l[i] >= 0 && l[i] < num_classes, name, ": expected labels in [0, ", num_classes, "), got ",
                      l[i], " at index ", i);
    ++offsets[l[i] + 1];
  }
  for (int64_t c = 0; c < num_classes; ++c) {
    TORCH_CHECK_VALUE(!require_all || offsets[c + 1] > 0, name, ": class ", c,
                      " has no sample; every class in [0, ", num_classes, ") needs at least one");
    offsets[c + 1] += offsets[c];
  }
  return offsets;
}

MmdBackwardDims check_mmd_backward_args(const at::Tensor& grad_per_class, const at::Tensor& diff,
                                        const at::Tensor& f_syn, const std::optional<at::Tensor>& syn_labels,
                                        const at::Device& device) {
  check_mmd_features(diff, "diff", device);
  TORCH_CHECK(diff.dim() == 2, "diff: expected a 2-D (C, D) tensor, got shape ", diff.sizes());
  const int64_t C = diff.size(0), D = diff.size(1);
  check_mmd_device(grad_per_class, "grad_per_class", device);
  TORCH_CHECK(grad_per_class.scalar_type() == diff.scalar_type(), "grad_per_class: expected dtype ",
              diff.scalar_type(), " like diff, got ", grad_per_class.scalar_type());
  TORCH_CHECK(grad_per_class.dim() == 1 && grad_per_class.size(0) == C, "grad_per_class: expected shape (", C,
              ",) like diff's classes, got ", grad_per_class.sizes());
  check_mmd_device(f_syn, "f_syn", device);
  TORCH_CHECK(f_syn.dim() == 2 || f_syn.dim() == 3, "f_syn: expected a 2-D or 3-D tensor, got shape ",
              f_syn.sizes());
  TORCH_CHECK(f_syn.size(-1) == D, "f_syn: expected feature dimension D=", D, " like diff, got ", f_syn.size(-1));
  if (f_syn.dim() == 3) {
    TORCH_CHECK(!syn_labels.has_value(), "syn_labels: expected None with class-major 3-D f_syn");
    TORCH_CHECK(f_syn.size(0) == C, "f_syn: expected C=", C, " classes like diff, got ", f_syn.size(0));
    return {C, D, f_syn.size(0) * f_syn.size(1), f_syn.size(1)};
  }
  TORCH_CHECK(syn_labels.has_value(), "syn_labels: required with 2-D (n, D) f_syn");
  check_mmd_labels(*syn_labels, f_syn.size(0), device, "syn_labels");
  return {C, D, f_syn.size(0), 0};
}

}  // namespace dance_ext
