// ctest smoke test: the ops are registered with the dispatcher and compute through it.
#include <torch/torch.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <iostream>

int main() {
  const auto x = torch::rand({2, 3, 8, 8});
  // identity parameter row (docs/ARCHITECTURE.md, "The op parameter contract"): flip 0, scale 1 1, angle 0, shifts 0, brightness 0,
  // saturation 1, contrast 1, no cutout
  const auto params = torch::tensor({0.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f}).view({1, 13});
  auto augment = c10::Dispatcher::singleton()
                     .findSchemaOrThrow("dance_ext::siamese_augment", "")
                     .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&)>();
  const auto y = augment.call(x, params, std::nullopt);
  if (!torch::allclose(y, x, 1e-5, 1e-6)) {
    std::cerr << "siamese_augment with identity parameters changed the images\n";
    return 1;
  }
  auto mmd = c10::Dispatcher::singleton()
                 .findSchemaOrThrow("dance_ext::class_mean_mmd", "")
                 .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                           const std::optional<at::Tensor>&,
                                                           const std::optional<at::Tensor>&, int64_t)>();
  const auto f = torch::rand({4, 5, 16});
  const auto per_class = std::get<0>(mmd.call(f, f, std::nullopt, std::nullopt, 4));
  if (per_class.abs().max().item<double>() > 1e-6) {
    std::cerr << "class_mean_mmd of identical features is not zero\n";
    return 1;
  }
  std::cout << "dance_ext ops OK\n";
  return 0;
}
