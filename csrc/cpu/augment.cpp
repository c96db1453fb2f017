// CPU kernels of dance_ext::siamese_augment and its backward (math in
// csrc/kernels/augment_math.h, shared with the CUDA kernels).
#include "cpu/augment.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "kernels/augment_math.h"

namespace dance_ext {

namespace aug = augment;

void check_augment_args(const at::Tensor& x, const char* x_name, const at::Tensor& params,
                        const std::optional<at::Tensor>& index, c10::DeviceType device_type) {
  TORCH_CHECK(x.device().type() == device_type, "siamese_augment: ", x_name, ": expected a ",
              c10::DeviceTypeName(device_type), " tensor, got device ", x.device());
  TORCH_CHECK(x.dim() == 4, "siamese_augment: ", x_name, ": expected a 4-D (N, C, H, W) tensor, got ",
              x.dim(), " dims with shape ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, "siamese_augment: ", x_name,
              ": expected dtype float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(params.dim() == 2 && params.size(1) == aug::kNumParams, "siamese_augment: params: expected a (P, ",
              static_cast<int>(aug::kNumParams), ") tensor, got shape ", params.sizes());
  TORCH_CHECK(params.scalar_type() == x.scalar_type(), "siamese_augment: params: expected dtype ",
              x.scalar_type(), " (the dtype of ", x_name, "), got ", params.scalar_type());
  TORCH_CHECK(params.device() == x.device(), "siamese_augment: params: expected device ", x.device(),
              " (the device of ", x_name, "), got ", params.device());
  const int64_t n = x.size(0), p = params.size(0);
  if (!index.has_value()) {
    TORCH_CHECK(p == n || p == 1, "siamese_augment: params: without index expected 1 or N=", n,
                " rows, got ", p);
    return;
  }
  const at::Tensor& idx = *index;
  TORCH_CHECK(idx.scalar_type() == at::kLong && idx.dim() == 1 && idx.size(0) == n,
              "siamese_augment: index: expected an int64 tensor of shape (", n, ",), got dtype ",
              idx.scalar_type(), " and shape ", idx.sizes());
  TORCH_CHECK(idx.device() == x.device(), "siamese_augment: index: expected device ", x.device(),
              " (the device of ", x_name, "), got ", idx.device());
  TORCH_CHECK(n == 0 || p >= 1, "siamese_augment: params: expected at least one row, got 0");
}

void check_index_range_cpu(const at::Tensor& index, int64_t rows) {
  const int64_t* idx = index.data_ptr<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i)
    TORCH_CHECK(idx[i] >= 0 && idx[i] < rows, "siamese_augment: index: expected values in [0, ", rows,
                ") (rows of params), got ", idx[i], " at position ", i);
}

namespace {

struct Shape {
  int64_t n, c, h, w, p;
  int64_t plane() const { return h * w; }
  int64_t sample() const { return c * h * w; }
};

template <typename T>
const T* row_of(const T* params, const int64_t* index, const Shape& s, int64_t n) {
  const int64_t r = index != nullptr ? index[n] : (s.p == 1 ? 0 : n);
  return params + r * aug::kNumParams;
}

// Chunks of about 4k pixels per task, so small images still spread over threads.
int64_t grain(int64_t pixels_per_item) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, pixels_per_item)); }

template <typename T>
void forward_cpu(const T* x, const T* params, const int64_t* index, T* y, const Shape& s) {
  const int64_t plane = s.plane(), sample = s.sample();
  std::vector<aug::Row<T>> rows(s.n);
  std::vector<aug::Colour<T>> colours(s.n);
  at::parallel_for(0, s.n, grain(sample), [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const T* xn = x + n * sample;
      double total = 0;  // double accumulation: the mean of up to millions of values
      for (int64_t k = 0; k < sample; ++k) total += xn[k];
      rows[n] = aug::make_row(row_of(params, index, s, n), s.h, s.w);
      colours[n] = aug::colour_forward(rows[n], static_cast<T>(total / static_cast<double>(sample)));
    }
  });
  // one task per output row: each writes only its own pixels
  at::parallel_for(0, s.n * s.h, grain(s.w * s.c), [&](int64_t begin, int64_t end) {
    for (int64_t nh = begin; nh < end; ++nh) {
      const int64_t n = nh / s.h, i = nh % s.h;
      const T* xn = x + n * sample;
      T* yrow = y + n * sample + i * s.w;
      for (int64_t j = 0; j < s.w; ++j) {
        const aug::Taps<T> t = aug::taps(rows[n], i, j, s.h, s.w);
        aug::forward_pixel(xn, yrow + j, t, colours[n], s.c, plane);
      }
    }
  });
}

// grad_x must be zero on entry. Each task owns whole samples, so the scatter of
// bilinear weights into grad_x needs no atomics.
template <typename T>
void backward_cpu(const T* grad_y, const T* params, const int64_t* index, T* grad_x, const Shape& s) {
  const int64_t plane = s.plane(), sample = s.sample();
  at::parallel_for(0, s.n, grain(sample), [&](int64_t begin, int64_t end) {
    std::vector<T> channel_grad(s.c);
    for (int64_t n = begin; n < end; ++n) {
      const aug::Row<T> row = aug::make_row(row_of(params, index, s, n), s.h, s.w);
      const T* gy = grad_y + n * sample;
      T* u = grad_x + n * sample;
      T total = 0;  // Σ over the sample of the geometric backward u
      for (int64_t i = 0; i < s.h; ++i) {
        for (int64_t j = 0; j < s.w; ++j) {
          const aug::Taps<T> t = aug::taps(row, i, j, s.h, s.w);
          if (t.count == 0) continue;
          const int64_t o = i * s.w + j;
          T g_sum = 0;
          for (int64_t c = 0; c < s.c; ++c) {
            const T g = gy[c * plane + o];
            g_sum += g;
            for (int k = 0; k < t.count; ++k) u[c * plane + t.offset[k]] += t.weight[k] * g;
          }
          total += g_sum * aug::weight_sum(t);
        }
      }
      const aug::ColourT<T> col = aug::colour_backward(row, s.c, plane);
      const T shared = col.e * total;
      for (int64_t q = 0; q < plane; ++q) {
        T channel_sum = 0;
        for (int64_t c = 0; c < s.c; ++c) channel_sum += u[c * plane + q];
        const T common = col.b * channel_sum + shared;
        for (int64_t c = 0; c < s.c; ++c) u[c * plane + q] = col.a * u[c * plane + q] + common;
      }
    }
  });
}

Shape shape_of(const at::Tensor& x, const at::Tensor& params) {
  return {x.size(0), x.size(1), x.size(2), x.size(3), params.size(0)};
}

at::Tensor siamese_augment_cpu(const at::Tensor& x, const at::Tensor& params,
                               const std::optional<at::Tensor>& index) {
  check_augment_args(x, "x", params, index, c10::DeviceType::CPU);
  const at::Tensor xc = x.contiguous(), pc = params.contiguous();
  const std::optional<at::Tensor> ic = index.has_value() ? std::optional<at::Tensor>(index->contiguous()) : std::nullopt;
  if (ic.has_value()) check_index_range_cpu(*ic, params.size(0));
  at::Tensor y = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  if (y.numel() == 0) return y;
  const Shape s = shape_of(x, params);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "siamese_augment_cpu", [&] {
    forward_cpu<scalar_t>(xc.data_ptr<scalar_t>(), pc.data_ptr<scalar_t>(),
                          ic.has_value() ? ic->data_ptr<int64_t>() : nullptr, y.data_ptr<scalar_t>(), s);
  });
  return y;
}

at::Tensor siamese_augment_backward_cpu(const at::Tensor& grad_y, const at::Tensor& params,
                                        const std::optional<at::Tensor>& index) {
  check_augment_args(grad_y, "grad_y", params, index, c10::DeviceType::CPU);
  const at::Tensor gc = grad_y.contiguous(), pc = params.contiguous();
  const std::optional<at::Tensor> ic = index.has_value() ? std::optional<at::Tensor>(index->contiguous()) : std::nullopt;
  if (ic.has_value()) check_index_range_cpu(*ic, params.size(0));
  at::Tensor grad_x = at::zeros(grad_y.sizes(), grad_y.options().memory_format(at::MemoryFormat::Contiguous));
  if (grad_x.numel() == 0) return grad_x;
  const Shape s = shape_of(grad_y, params);
  AT_DISPATCH_FLOATING_TYPES(grad_y.scalar_type(), "siamese_augment_backward_cpu", [&] {
    backward_cpu<scalar_t>(gc.data_ptr<scalar_t>(), pc.data_ptr<scalar_t>(),
                           ic.has_value() ? ic->data_ptr<int64_t>() : nullptr, grad_x.data_ptr<scalar_t>(), s);
  });
  return grad_x;
}

}  // namespace
}  // namespace dance_ext

TORCH_LIBRARY_IMPL(dance_ext, CPU, m) {
  m.impl("siamese_augment", &dance_ext::siamese_augment_cpu);
  m.impl("siamese_augment_backward", &dance_ext::siamese_augment_backward_cpu);
}
