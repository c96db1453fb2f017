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
  bool integral;  // θ is the identity: every source point is a pixel centre (see Span)
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

// v − v is NaN for NaN and ±inf, 0 otherwise (no <cmath> classification: same on the device).
template <typename T>
DE_HD bool is_finite(T v) {
  return v - v == static_cast<T>(0);
}

// A non-finite coefficient (a NaN/inf colour parameter, or a NaN/inf pixel, which makes the
// image mean non-finite) turns all three into NaN: the whole sample is NaN, every pixel,
// whatever its geometry (docs/ARCHITECTURE.md, "The op parameter contract").
template <typename T>
DE_HD Colour<T> colour_forward(const Row<T>& r, T image_mean) {
  const T k = r.contrast, s = r.saturation;
  const T big_m = image_mean + r.brightness;
  const Colour<T> c = {k * s, k * (static_cast<T>(1) - s), k * r.brightness + (static_cast<T>(1) - k) * big_m};
  if (is_finite(c.a) && is_finite(c.b) && is_finite(c.d)) return c;
  const T nan = static_cast<T>(NAN);
  return {nan, nan, nan};
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

DE_HD int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Output row i of an integral row copies source columns col0 + step·j of the source
// row at offset `src` for j in [lo, hi) except the cut-out columns [cut_lo, cut_hi)
// (clipped into [lo, hi)); every other pixel is zero. Lets the CPU copy whole runs.
struct Span {
  int64_t src, col0, step, lo, hi, cut_lo, cut_hi;
  // Source offset of output column j, or -1 when the pixel is zero.
  DE_HD int64_t source(int64_t j) const {
    return j >= lo && j < hi && !(j >= cut_lo && j < cut_hi) ? src + col0 + step * j : -1;
  }
};

template <typename T>
DE_HD Span integral_span(const Row<T>& r, int64_t i, int64_t height, int64_t width) {
  Span s;
  const int64_t ii = i + r.shift_h;
  const bool row_ok = ii >= 0 && ii < height;
  s.src = row_ok ? ii * width : 0;
  s.col0 = r.flip ? width - 1 - r.shift_w : r.shift_w;
  s.step = r.flip ? -1 : 1;
  // columns with 0 <= j + shift_w < width
  s.lo = row_ok ? clamp_i64(-r.shift_w, 0, width) : 0;
  s.hi = row_ok ? clamp_i64(width - r.shift_w, s.lo, width) : 0;
  const bool cut_row = i >= r.cut_r0 && i < r.cut_r1;
  s.cut_lo = cut_row ? clamp_i64(r.cut_c0, s.lo, s.hi) : s.lo;
  s.cut_hi = cut_row ? clamp_i64(r.cut_c1, s.cut_lo, s.hi) : s.lo;
  return s;
}

// The integral row whose gather is the transpose of r's: source pixel (i, s) receives
// output pixel (i − shift_h, f(s) − shift_w), f the flip; the cutout box moves with
// it. A flip with shift is its own inverse, so the transpose is again a gather and
// the backward needs no scatter.
template <typename T>
DE_HD Row<T> integral_transpose(Row<T> r, int64_t width) {
  const int64_t sh = r.shift_h, sw = r.shift_w;
  r.shift_h = -sh;
  r.cut_r0 += sh;
  r.cut_r1 += sh;
  if (r.flip) {
    const int64_t c0 = r.cut_c0;
    r.cut_c0 = width - sw - r.cut_c1;
    r.cut_c1 = width - sw - c0;
  } else {
    r.shift_w = -sw;
    r.cut_c0 += sw;
    r.cut_c1 += sw;
  }
  return r;
}

// floor(v) for v > -1 (checked by the caller): exact, and no libm call on the CPU.
template <typename T>
DE_HD T floor_above_minus_one(T v) {
  const T t = static_cast<T>(static_cast<int64_t>(v));
  return t > v ? t - static_cast<T>(1) : t;
}

// The four bilinear taps into the source plane (offset r*W + c, weight) of one output
// pixel. Taps that are outside the image, cut out or cropped away have weight 0 and
// offset 0, so callers loop over all four without bounds checks. An integral source
// point is one tap of weight 1 (integral rows: the Span's source).
template <typename T>
struct Taps {
  int64_t offset[4];
  T weight[4];
};

template <typename T>
DE_HD Taps<T> taps(const Row<T>& r, int64_t i, int64_t j, int64_t height, int64_t width) {
  Taps<T> t;
  for (int k = 0; k < 4; ++k) {
    t.offset[k] = 0;
    t.weight[k] = static_cast<T>(0);
  }
  if (r.integral) {
    const int64_t src = integral_span(r, i, height, width).source(j);
    t.offset[0] = src >= 0 ? src : 0;
    t.weight[0] = static_cast<T>(src >= 0 ? 1 : 0);
    return t;
  }
  if (i >= r.cut_r0 && i < r.cut_r1 && j >= r.cut_c0 && j < r.cut_c1) return t;
  const int64_t ii = i + r.shift_h, jj = j + r.shift_w;
  if (ii < 0 || ii >= height || jj < 0 || jj >= width) return t;
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
  const T fx = floor_above_minus_one(sx), fy = floor_above_minus_one(sy);
  const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
  const T ax = sx - fx, ay = sy - fy;
  const T one = static_cast<T>(1);
  const T wx[2] = {one - ax, ax}, wy[2] = {one - ay, ay};
  for (int dr = 0; dr < 2; ++dr) {
    for (int dc = 0; dc < 2; ++dc) {
      const int64_t row = y0 + dr, col = x0 + dc;
      const bool inside = row >= 0 && row < height && col >= 0 && col < width;
      t.offset[2 * dr + dc] = inside ? row * width + col : 0;
      t.weight[2 * dr + dc] = inside ? wy[dr] * wx[dc] : static_cast<T>(0);
    }
  }
  return t;
}

// S = Σ_k w_k·x[offset_k] over one channel plane x; zero-weight taps are skipped so
// that a non-finite pixel never leaks through a weight of 0.
template <typename T>
DE_HD T bilinear(const T* x, const Taps<T>& t) {
  T acc = 0;
  for (int k = 0; k < 4; ++k) acc += t.weight[k] != static_cast<T>(0) ? t.weight[k] * x[t.offset[k]] : static_cast<T>(0);
  return acc;
}

// Sum of the tap weights: 1 inside the image, less at its border, 0 where zero padded.
template <typename T>
DE_HD T weight_sum(const Taps<T>& t) {
  return (t.weight[0] + t.weight[1]) + (t.weight[2] + t.weight[3]);
}

// Transpose of bilinear for one channel of one output pixel whose incoming gradient is g:
// share[k] = w_k·g is what source tap k receives, and 0 for a tap of weight 0. Returns
// Σ_k share[k], the pixel's part of Σ u (the sample total that the colour transpose adds
// to every pixel). Mathematically g·weight_sum(t), but a pixel that reads nothing (all
// weights 0: zero padding, cut out, cropped away) adds exactly 0 even when g is NaN or inf
// (fp16 overflow, NaN at cut-out pixels), where g·0 would make the whole sample's input
// gradient NaN. The CPU and the CUDA backward both scatter and total through this.
template <typename T>
DE_HD T transpose_taps(const Taps<T>& t, T g, T share[4]) {
  for (int k = 0; k < 4; ++k) share[k] = t.weight[k] != static_cast<T>(0) ? t.weight[k] * g : static_cast<T>(0);
  return (share[0] + share[1]) + (share[2] + share[3]);
}

// Colour after resampling: Σ_k w_k·colour(x)_k = A·S_c + B·mean_c(S) + D·Σ_k w_k, since
// colour is affine and the channel mean commutes with the taps; only D sees the
// zero padding. s_mean is mean_c(S).
template <typename T>
DE_HD T colour_apply(const Colour<T>& col, T s, T s_mean, T w_sum) {
  return col.a * s + col.b * s_mean + col.d * w_sum;
}

// Forward value of all channels of one output pixel: y[c*plane] for c < channels.
// x points at the sample's (C, H, W) block. Two passes over the channels (the mean
// first) so that no per-channel storage is needed.
template <typename T>
DE_HD void forward_pixel(const T* x, T* y, const Taps<T>& t, const Colour<T>& col, int64_t channels,
                         int64_t plane) {
  T s_sum = 0;
  for (int64_t c = 0; c < channels; ++c) s_sum += bilinear(x + c * plane, t);
  const T s_mean = s_sum * (static_cast<T>(1) / static_cast<T>(channels));
  const T w_sum = weight_sum(t);
  for (int64_t c = 0; c < channels; ++c) y[c * plane] = colour_apply(col, bilinear(x + c * plane, t), s_mean, w_sum);
}

}  // namespace augment
}  // namespace dance_ext
