"""Format readers. Importing one registers it; this order is the order of
``known_datasets()`` and of folder detection."""
from . import digits  # noqa: F401
from . import idx  # noqa: F401
from . import cifar  # noqa: F401
from . import svhn  # noqa: F401
from . import tinyimagenet  # noqa: F401
from . import imagenet_subsets  # noqa: F401
from . import imagefolder  # noqa: F401
