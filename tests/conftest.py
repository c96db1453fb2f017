import pytest
import torch


@pytest.fixture(scope="module")
def single_thread():
    """Tiny tensors: a thread pool only adds contention on a 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
