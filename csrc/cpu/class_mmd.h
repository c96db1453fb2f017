// Shape checks of class_mean_mmd shared by the CPU kernel and the CUDA binding, so both
// devices reject bad input with the same messages.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace dance_ext {

// f_real, f_syn: float32/float64 of one dtype, class-major 3-D (C, n, D) with no labels, or
// 2-D (n, D) with both label vectors. Returns the number of classes. Label values are
// checked where the labels are grouped, on each device.
int64_t check_mmd_shapes(const at::Tensor& f_real, const at::Tensor& f_syn, const std::optional<at::Tensor>& real_labels,
                         const std::optional<at::Tensor>& syn_labels, int64_t num_classes);

}  // namespace dance_ext
