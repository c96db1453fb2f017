// Every dance_ext op schema, in one place. Kernels register per device in
// csrc/cpu/*.cpp and csrc/cuda/*_binding.cpp; Python adds fake kernels and autograd
// (dance_ext/_augment_op.py, dance_ext/_mmd_op.py).
#include <torch/library.h>

TORCH_LIBRARY(dance_ext, m) {
  // y = augment(x) with one 13-column parameter row per sample (docs/ARCHITECTURE.md, "The op parameter contract").
  m.def("siamese_augment(Tensor x, Tensor params, Tensor? index) -> Tensor");
  // The op is linear in x, so its backward needs only the parameters.
  m.def("siamese_augment_backward(Tensor grad_y, Tensor params, Tensor? index) -> Tensor");
  // Per-class squared distance of mean features: returns (per_class (C,), diff = mu_syn - mu_real (C, D)).
  m.def("class_mean_mmd(Tensor f_real, Tensor f_syn, Tensor? real_labels, Tensor? syn_labels, int num_classes) -> (Tensor, Tensor)");
  // d per_class / d f_syn: broadcast of 2 * grad_c * diff_c / n_c to every synthetic row of class c.
  m.def("class_mean_mmd_backward(Tensor grad_per_class, Tensor diff, Tensor f_syn, Tensor? syn_labels) -> Tensor");
}
