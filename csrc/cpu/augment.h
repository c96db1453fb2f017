// Argument checks of the siamese_augment ops, shared by the CPU kernels and the
// CUDA binding so both devices reject bad input with the same messages.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace dance_ext {

// x: (N, C, H, W) float32/float64; params: (P, 13) of x's dtype and device;
// index: (N,) int64 on x's device, or absent with P == N or P == 1.
// x_name names x in messages ("x" or "grad_y"). Index values are checked
// separately (check_index_range_cpu) because that reads device memory.
void check_augment_args(const at::Tensor& x, const char* x_name, const at::Tensor& params,
                        const std::optional<at::Tensor>& index, c10::DeviceType device_type);

// Every index value in [0, P); index must be a contiguous CPU int64 tensor.
void check_index_range_cpu(const at::Tensor& index, int64_t rows);

}  // namespace dance_ext
