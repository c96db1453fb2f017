// CPU kernels of dance_ext::siamese_augment and its backward (math in
// csrc/kernels/augment_math.h, shared with the CUDA kernels).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "checks/augment_checks.h"
#include "kernels/augment_math.h"

namespace dance_ext {

namespace aug = augment;

namespace {

struct Shape {
  int64_t n, c, h, w, p;
  int64_t plane() const { return h * w; }
  int64_t sample() const { return c * h * w; }
};

int64_t row_id(const int64_t* index, const Shape& s, int64_t n) {
  return index != nullptr ? index[n] : (s.p == 1 ? 0 : n);
}

template <typename T>
std::vector<aug::Row<T>> param_rows(const T* params, const Shape& s) {
  std::vector<aug::Row<T>> rows(s.p);
  for (int64_t r = 0; r < s.p; ++r) rows[r] = aug::make_row(params + r * aug::kNumParams, s.h, s.w);
  return rows;
}

// Samples reordered so that resampled and integral (much cheaper) ones are evenly
// mixed: at::parallel_for hands out contiguous chunks, and a class-major batch keeps
// all samples of one parameter row together.
template <typename T>
std::vector<int64_t> balanced_order(const std::vector<aug::Row<T>>& rows, const int64_t* index, const Shape& s) {
  std::vector<int64_t> resampled, integral;
  for (int64_t n = 0; n < s.n; ++n) (rows[row_id(index, s, n)].integral ? integral : resampled).push_back(n);
  const int64_t g = static_cast<int64_t>(resampled.size()), m = static_cast<int64_t>(integral.size());
  std::vector<int64_t> order;
  order.reserve(s.n);
  int64_t a = 0, b = 0;
  while (a < g || b < m) {  // merge by relative position (a + ½)/g vs (b + ½)/m
    if (b == m || (a < g && (2 * a + 1) * m <= (2 * b + 1) * g))
      order.push_back(resampled[a++]);
    else
      order.push_back(integral[b++]);
  }
  return order;
}

// Σ v in double with eight partial sums, so the loop vectorizes.
template <typename T>
double sum_of(const T* v, int64_t count) {
  double lanes[8] = {};
  int64_t k = 0;
  for (; k + 8 <= count; k += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += v[k + l];
  double total = 0;
  for (; k < count; ++k) total += v[k];
  for (double lane : lanes) total += lane;
  return total;
}

// dst[j] = row[col0 + step·j] for j in [lo, hi); step is ±1 (plain or mirrored run).
template <typename T>
void copy_run(T* dst, const T* row, const aug::Span& sp, int64_t lo, int64_t hi) {
  if (sp.step == 1)
    for (int64_t j = lo; j < hi; ++j) dst[j] = row[sp.col0 + j];
  else
    for (int64_t j = lo; j < hi; ++j) dst[j] = row[sp.col0 - j];
}

// One output row of an integral map in every channel: copied runs, zeros elsewhere.
template <typename T>
void gather_row(const T* src, T* dst, const aug::Span& sp, const Shape& s) {
  for (int64_t c = 0; c < s.c; ++c) {
    const T* row = src + c * s.plane() + sp.src;
    T* d = dst + c * s.plane();
    std::fill(d, d + s.w, static_cast<T>(0));
    copy_run(d, row, sp, sp.lo, sp.cut_lo);
    copy_run(d, row, sp, sp.cut_hi, sp.hi);
  }
}

// Chunks of about 4k pixels per task, so small images still spread over threads.
int64_t grain(int64_t pixels_per_item) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, pixels_per_item)); }

// Each task owns whole samples: the mean, then every output row resampled (S_c, the
// tap weights' sum) and coloured in place.
template <typename T>
void forward_cpu(const T* x, const T* params, const int64_t* index, T* y, const Shape& s) {
  const int64_t plane = s.plane(), sample = s.sample();
  const std::vector<aug::Row<T>> rows = param_rows(params, s);
  const std::vector<int64_t> order = balanced_order(rows, index, s);
  const T inv_c = static_cast<T>(1) / static_cast<T>(s.c);
  at::parallel_for(0, s.n, grain(sample), [&](int64_t begin, int64_t end) {
    std::vector<T> s_sum(s.w), w_sum(s.w);
    for (int64_t k = begin; k < end; ++k) {
      const int64_t n = order[k];
      const aug::Row<T>& row = rows[row_id(index, s, n)];
      const T* xn = x + n * sample;
      const aug::Colour<T> col =
          aug::colour_forward(row, static_cast<T>(sum_of(xn, sample) / static_cast<double>(sample)));
      for (int64_t i = 0; i < s.h; ++i) {
        T* yi = y + n * sample + i * s.w;
        if (row.integral) {
          const aug::Span sp = aug::integral_span(row, i, s.h, s.w);
          gather_row(xn, yi, sp, s);
          std::fill(w_sum.begin(), w_sum.end(), static_cast<T>(0));
          std::fill(w_sum.begin() + sp.lo, w_sum.begin() + sp.cut_lo, static_cast<T>(1));
          std::fill(w_sum.begin() + sp.cut_hi, w_sum.begin() + sp.hi, static_cast<T>(1));
        } else {
          for (int64_t j = 0; j < s.w; ++j) {
            const aug::Taps<T> t = aug::taps(row, i, j, s.h, s.w);
            w_sum[j] = aug::weight_sum(t);
            for (int64_t c = 0; c < s.c; ++c) yi[c * plane + j] = aug::bilinear(xn + c * plane, t);
          }
        }
        std::fill(s_sum.begin(), s_sum.end(), static_cast<T>(0));
        for (int64_t c = 0; c < s.c; ++c)
          for (int64_t j = 0; j < s.w; ++j) s_sum[j] += yi[c * plane + j];
        for (int64_t c = 0; c < s.c; ++c)
          for (int64_t j = 0; j < s.w; ++j)
            yi[c * plane + j] = aug::colour_apply(col, yi[c * plane + j], s_sum[j] * inv_c, w_sum[j]);
      }
    }
  });
}

// Each task owns whole samples: the geometric transpose u (a gather for integral rows,
// a scatter of the bilinear weights otherwise, no atomics needed), then the colour
// transpose in place.
template <typename T>
void backward_cpu(const T* grad_y, const T* params, const int64_t* index, T* grad_x, const Shape& s) {
  const int64_t plane = s.plane(), sample = s.sample();
  const std::vector<aug::Row<T>> rows = param_rows(params, s);
  const std::vector<int64_t> order = balanced_order(rows, index, s);
  at::parallel_for(0, s.n, grain(sample), [&](int64_t begin, int64_t end) {
    std::vector<T> channel_sum(plane);
    for (int64_t k = begin; k < end; ++k) {
      const int64_t n = order[k];
      const aug::Row<T>& row = rows[row_id(index, s, n)];
      const T* gy = grad_y + n * sample;
      T* u = grad_x + n * sample;
      double total = 0;  // Σ u
      if (row.integral) {
        const aug::Row<T> transpose = aug::integral_transpose(row, s.w);
        for (int64_t i = 0; i < s.h; ++i) gather_row(gy, u + i * s.w, aug::integral_span(transpose, i, s.h, s.w), s);
        total = sum_of(u, sample);
      } else {
        std::fill(u, u + sample, static_cast<T>(0));
        for (int64_t o = 0; o < plane; ++o) {
          const aug::Taps<T> t = aug::taps(row, o / s.w, o % s.w, s.h, s.w);
          for (int64_t c = 0; c < s.c; ++c) {
            T share[4];
            total += aug::transpose_taps(t, gy[c * plane + o], share);
            for (int kk = 0; kk < 4; ++kk)
              if (t.weight[kk] != static_cast<T>(0)) u[c * plane + t.offset[kk]] += share[kk];
          }
        }
      }
      const aug::ColourT<T> col = aug::colour_backward(row, s.c, plane);
      const T shared = col.e * static_cast<T>(total);
      std::fill(channel_sum.begin(), channel_sum.end(), static_cast<T>(0));
      for (int64_t c = 0; c < s.c; ++c)
        for (int64_t q = 0; q < plane; ++q) channel_sum[q] += u[c * plane + q];
      for (int64_t c = 0; c < s.c; ++c)
        for (int64_t q = 0; q < plane; ++q) u[c * plane + q] = col.a * u[c * plane + q] + (col.b * channel_sum[q] + shared);
    }
  });
}

Shape shape_of(const at::Tensor& x, const at::Tensor& params) {
  return {x.size(0), x.size(1), x.size(2), x.size(3), params.size(0)};
}

// Both directions map an (N, C, H, W) tensor to one of the same shape through the same
// parameter rows; only the per-sample kernel differs.
at::Tensor augment_launch_cpu(const at::Tensor& in, const char* in_name, const at::Tensor& params,
                              const std::optional<at::Tensor>& index, bool backward) {
  check_augment_args(in, in_name, params, index, c10::DeviceType::CPU);
  const at::Tensor in_c = in.contiguous(), pc = params.contiguous();
  const std::optional<at::Tensor> ic =
      index.has_value() ? std::optional<at::Tensor>(check_index_range(*index, params.size(0))) : std::nullopt;
  at::Tensor out = at::empty(in.sizes(), in.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  const Shape s = shape_of(in, params);
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "siamese_augment_cpu", [&] {
    const auto kernel = backward ? backward_cpu<scalar_t> : forward_cpu<scalar_t>;
    kernel(in_c.data_ptr<scalar_t>(), pc.data_ptr<scalar_t>(), ic.has_value() ? ic->data_ptr<int64_t>() : nullptr,
           out.data_ptr<scalar_t>(), s);
  });
  return out;
}

at::Tensor siamese_augment_cpu(const at::Tensor& x, const at::Tensor& params,
                               const std::optional<at::Tensor>& index) {
  return augment_launch_cpu(x, "x", params, index, /*backward=*/false);
}

at::Tensor siamese_augment_backward_cpu(const at::Tensor& grad_y, const at::Tensor& params,
                                        const std::optional<at::Tensor>& index) {
  return augment_launch_cpu(grad_y, "grad_y", params, index, /*backward=*/true);
}

}  // namespace
}  // namespace dance_ext

TORCH_LIBRARY_IMPL(dance_ext, CPU, m) {
  m.impl("siamese_augment", &dance_ext::siamese_augment_cpu);
  m.impl("siamese_augment_backward", &dance_ext::siamese_augment_backward_cpu);
}
