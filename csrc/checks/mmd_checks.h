// Argument checks of class_mean_mmd and class_mean_mmd_backward, shared by the CPU kernels
// (csrc/cpu/class_mmd.cpp) and the CUDA binding (csrc/cuda/class_mmd_binding.cpp), so both
// devices reject bad input with the same one-line messages.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace dance_ext {

// t is on the kernel's device. Messages: "<name>: expected a CPU tensor, got device …" on
// CPU, "<name>: expected device cuda:N, got …" on another device.
void check_mmd_device(const at::Tensor& t, const char* name, const at::Device& device);

// Features on the kernel's device, float32 or float64.
void check_mmd_features(const at::Tensor& f, const char* name, const at::Device& device);

// f_real, f_syn: float32/float64 of one dtype, class-major 3-D (C, n, D) with no labels, or
// 2-D (n, D) with both label vectors. Returns the number of classes. Label values are
// checked where the labels are grouped (mmd_label_offsets).
int64_t check_mmd_shapes(const at::Tensor& f_real, const at::Tensor& f_syn, const std::optional<at::Tensor>& real_labels,
                         const std::optional<at::Tensor>& syn_labels, int64_t num_classes);

// An int64 vector of length rows on the kernel's device (its values are not read).
void check_mmd_labels(const at::Tensor& labels, int64_t rows, const at::Device& device, const char* name);

// Per-class offsets (num_classes + 1 prefix sums of the class counts) of labels (int64,
// checked by check_mmd_labels; read in place on the CPU, else through a host copy). Checks
// every value is in [0, num_classes) and, with require_all, that every class has a sample
// (ValueError; ops.py checks the reference path in the same words).
// The CUDA binding calls it only when its device-side summary found a bad label, for the
// same message as the CPU kernel.
std::vector<int64_t> mmd_label_offsets(const at::Tensor& labels, int64_t num_classes, const char* name,
                                       bool require_all);

// What class_mean_mmd_backward(grad_per_class, diff, f_syn, syn_labels) works on.
struct MmdBackwardDims {
  int64_t classes;    // C, rows of diff
  int64_t features;   // D
  int64_t rows;       // synthetic rows of the output
  int64_t per_class;  // rows per class when f_syn is class-major 3-D, else 0 (ragged, syn_labels)
};

// Every check of class_mean_mmd_backward but the label values: dtypes, shapes, the device of
// each tensor (device: where the kernel runs) and the label vector.
MmdBackwardDims check_mmd_backward_args(const at::Tensor& grad_per_class, const at::Tensor& diff,
                                        const at::Tensor& f_syn, const std::optional<at::Tensor>& syn_labels,
                                        const at::Device& device);

}  // namespace dance_ext
