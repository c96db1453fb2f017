// Argument checks of the siamese_augment ops (declared in checks/augment_checks.h).
#include "checks/augment_checks.h"

#include <ATen/ATen.h>

#include "kernels/augment_math.h"

namespace dance_ext {

void check_augment_args(const at::Tensor& x, const char* x_name, const at::Tensor& params,
                        const std::optional<at::Tensor>& index, c10::DeviceType device_type) {
  namespace aug = augment;
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

at::Tensor check_index_range(const at::Tensor& index, int64_t rows) {
  const at::Tensor host = index.to(at::kCPU).contiguous();
  const int64_t* idx = host.data_ptr<int64_t>();
  for (int64_t i = 0; i < host.numel(); ++i)
    TORCH_CHECK_VALUE(idx[i] >= 0 && idx[i] < rows, "siamese_augment: index: expected values in [0, ", rows,
                      ") (rows of params), got ", idx[i], " at position ", i);
  return host;
}

}  // namespace dance_ext
