"""Registration of the op with torch.library: fake (meta) kernel and autograd. Filled in by the kernel work."""
