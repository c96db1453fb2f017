// Per-pixel math of dance_ext::siamese_augment, shared by the CPU kernel
// (csrc/cpu/augment.cpp) and the CUDA kernel (csrc/cuda/augment.cu), so both
// devices run the same arithmetic. No torch headers: nvcc compiles this alone.
//
// For one sample with parameter row p (columns: dance_ext/augment.py PARAM_COLUMNS):
//   colour(x)_c = A·x_c + B·m + D,  m = mean_c x (per pixel),
//     A = k·s, B = k·(1−s), D = k·b + (1−k)·M, M = mean_{c,h,w}(x) + b
//   (brightness b, saturation s, contrast k; the image mean is invariant to flip and
//   saturation, so one reduction of x suffices), then
//   y_c[i, j] = cutout(i, j) · crop_valid(i', j') · bilinear(colour(x)_c, src(i', j'))
//   with (i', j') = (i + shift_h, j + shift_w) and src the affine map of θ = S·R
//   in pixel space (identity θ gives src = (i', j') exactly), the flip folded in
//   as column W − 1 − src_x. The op is affine in x; the backward is the transpose.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define DE_HD __host__ __device__ __forceinline__
#else
#define DE_HD inline
#endif

namespace dance_ext {
namespace augment {

// Column indices of a parameter row (must match dance_ext/augment.py PARAM_COLUMNS).
enum Column : int {
  kFlip = 0, kScaleW, kScaleH, kAngle, kShiftH, kShiftW, kBrightness, kSaturation, kContrast,
  kCutoutH, kCutoutW, kCutoutSizeH, kCutoutSizeW, kNumParams
};

// Per-sample constants derived once from a parameter row.
template <typename T>
struct Row {
  T a00, a01, a10, a11;  // θ with the aspect ratio folded in (pixel-space map)
  T brightness, saturation, contrast;
  int64_t shift_h, shift_w;
  int64_t cut_r0, cut_r1, cut_c0, cut_c1;  // zeroed box [r0, r1) × [c0, c1)
  bool flip;
  bool integral;  // θ is the identity: every source point is a pixel centre
};

// Round half to even, like torch.round on the reference side; clamped (NaN to the
// low end) so that absurd parameters give an empty crop instead of undefined casts.
template <typename T>
DE_HD int64_t round_even(T v) {
  const double limit = 1e15;
  const double r = std::rint(static_cast<double>(v));
  return static_cast<int64_t>(r < limit ? (r > -limit ? r : -limit) : (r == r ? limit : -limit));
}

DE_HD int64_t floor_div2(int64_t v) {
  return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

template <typename T>
DE_HD Row<T> make_row(const T* p, int64_t height, int64_t width) {
  Row<T> r;
  const T sw = p[kScaleW], sh = p[kScaleH];
  // in double so that fast-math device code and the CPU agree
  using std::cos;
  using std::sin;
  const double angle = static_cast<double>(p[kAngle]);
  const T c = static_cast<T>(cos(angle)), s = static_cast<T>(sin(angle));
  const T w_over_h = static_cast<T>(width) / static_cast<T>(height);
  const T h_over_w = static_cast<T>(height) / static_cast<T>(width);
  r.a00 = sw * c;
  r.a01 = -sw * s * w_over_h;
  r.a10 = sh * s * h_over_w;
  r.a11 = sh * c;
  r.brightness = p[kBrightness];
  r.saturation = p[kSaturation];
  r.contrast = p[kContrast];
  r.shift_h = round_even(p[kShiftH]);
  r.shift_w = round_even(p[kShiftW]);
  const int64_t size_h = round_even(p[kCutoutSizeH]), size_w = round_even(p[kCutoutSizeW]);
  r.cut_r0 = round_even(p[kCutoutH]) - floor_div2(size_h);
  r.cut_r1 = r.cut_r0 + size_h;
  r.cut_c0 = round_even(p[kCutoutW]) - floor_div2(size_w);
  r.cut_c1 = r.cut_c0 + size_w;
  r.flip = p[kFlip] > static_cast<T>(0.5);
  r.integral = r.a00 == static_cast<T>(1) && r.a01 == static_cast<T>(0) && r.a10 == static_cast<T>(0) &&
               r.a11 == static_cast<T>(1);
  return r;
}

// Colour coefficients of the forward map colour(x)_c = A·x_c + B·m + D.
template <typename T>
struct Colour {
  T a, b, d;
};

template <typename T>
DE_HD Colour<T> colour_forward(const Row<T>& r, T image_mean) {
  const T k = r.contrast, s = r.saturation;
  const T big_m = image_mean + r.brightness;
  return {k * s, k * (static_cast<T>(1) - s), k * r.brightness + (static_cast<T>(1) - k) * big_m};
}

// Transposed colour map: grad_x_c = A·u_c + B·Σ_c' u_c' + E·Σ_{c,h,w} u.
template <typename T>
struct ColourT {
  T a, b, e;
};

template <typename T>
DE_HD ColourT<T> colour_backward(const Row<T>& r, int64_t channels, int64_t plane) {
  const T k = r.contrast, s = r.saturation;
  return {k * s, k * (static_cast<T>(1) - s) / static_cast<T>(channels),
          (static_cast<T>(1) - k) / static_cast<T>(channels * plane)};
}

// Up to four bilinear taps into the source plane (offset r*W + c, weight).
template <typename T>
struct Taps {
  int64_t offset[4];
  T weight[4];
  int count;
};

// Taps of output pixel (i, j): none when cut out or cropped away; only in-bounds,
// nonzero-weight taps, so an integral source point gives one tap of weight 1.
template <typename T>
DE_HD Taps<T> taps(const Row<T>& r, int64_t i, int64_t j, int64_t height, int64_t width) {
  Taps<T> t;
  t.count = 0;
  if (i >= r.cut_r0 && i < r.cut_r1 && j >= r.cut_c0 && j < r.cut_c1) return t;
  const int64_t ii = i + r.shift_h, jj = j + r.shift_w;
  if (ii < 0 || ii >= height || jj < 0 || jj >= width) return t;
  if (r.integral) {  // the general path gives the same single tap, slower
    t.offset[0] = ii * width + (r.flip ? width - 1 - jj : jj);
    t.weight[0] = static_cast<T>(1);
    t.count = 1;
    return t;
  }
  const T half = static_cast<T>(0.5);
  const T cx = static_cast<T>(width) * half, cy = static_cast<T>(height) * half;
  const T dx = static_cast<T>(jj) + half - cx, dy = static_cast<T>(ii) + half - cy;
  T sx = r.a00 * dx + r.a01 * dy + cx - half;
  const T sy = r.a10 * dx + r.a11 * dy + cy - half;
  if (r.flip) sx = static_cast<T>(width - 1) - sx;
  // also rejects NaN before the integer conversion
  if (!(sx > static_cast<T>(-1) && sx < static_cast<T>(width) && sy > static_cast<T>(-1) &&
        sy < static_cast<T>(height)))
    return t;
  using std::floor;
  const T fx = floor(sx), fy = floor(sy);
  const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
  const T ax = sx - fx, ay = sy - fy;
  const T one = static_cast<T>(1);
  const T wx[2] = {one - ax, ax}, wy[2] = {one - ay, ay};
  for (int dr = 0; dr < 2; ++dr) {
    const int64_t row = y0 + dr;
    if (row < 0 || row >= height || wy[dr] == static_cast<T>(0)) continue;
    for (int dc = 0; dc < 2; ++dc) {
      const int64_t col = x0 + dc;
      if (col < 0 || col >= width || wx[dc] == static_cast<T>(0)) continue;
      t.offset[t.count] = row * width + col;
      t.weight[t.count] = wy[dr] * wx[dc];
      ++t.count;
    }
  }
  return t;
}

// Forward value of all channels of one output pixel: y[c*plane] for c < channels.
// x points at the sample's (C, H, W) block.
template <typename T>
DE_HD void forward_pixel(const T* x, T* y, const Taps<T>& t, const Colour<T>& col, int64_t channels,
                         int64_t plane) {
  T mean[4];
  const T inv_c = static_cast<T>(1) / static_cast<T>(channels);
  for (int k = 0; k < t.count; ++k) {
    T acc = 0;
    for (int64_t c = 0; c < channels; ++c) acc += x[c * plane + t.offset[k]];
    mean[k] = acc * inv_c;
  }
  for (int64_t c = 0; c < channels; ++c) {
    T acc = 0;
    for (int k = 0; k < t.count; ++k)
      acc += t.weight[k] * (col.a * x[c * plane + t.offset[k]] + col.b * mean[k] + col.d);
    y[c * plane] = acc;
  }
}

// Sum of the tap weights: the geometric backward's contribution of one output pixel
// to the per-sample total Σ u, per unit of incoming gradient.
template <typename T>
DE_HD T weight_sum(const Taps<T>& t) {
  T s = 0;
  for (int k = 0; k < t.count; ++k) s += t.weight[k];
  return s;
}

}  // namespace augment
}  // namespace dance_ext
