// Argument checks of the siamese_augment ops, shared by the CPU kernels
// (csrc/cpu/augment.cpp) and the CUDA binding (csrc/cuda/augment_binding.cpp), so
// both devices reject bad input with the same one-line messages.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace dance_ext {

// x: (N, C, H, W) float32/float64 on a device of device_type; params: (P, 13) of x's
// dtype and device; index: (N,) int64 on x's device, or absent with P == N or P == 1.
// x_name names x in messages ("x" or "grad_y"). Index values are checked separately
// (check_index_range) because that reads the index's memory.
void check_augment_args(const at::Tensor& x, const char* x_name, const at::Tensor& params,
                        const std::optional<at::Tensor>& index, c10::DeviceType device_type);

// Every value of index (int64, any device) in [0, rows). A CPU index is read in place;
// another device's index is copied to the host first (one synchronising copy of N values),
// so a bad value is a one-line ValueError before any kernel runs, never a device-side assert
// (ops.py checks the reference path in the same words).
// Returns the values as a contiguous CPU tensor (the index itself when it is one).
at::Tensor check_index_range(const at::Tensor& index, int64_t rows);

}  // namespace dance_ext
