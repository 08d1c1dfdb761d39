"""The operator library: compute definitions and CPU/CUDA templates per operator.

Importing this package registers every template with ``tilewise.autotune``.
"""

from . import gemm  # noqa: F401

from . import conv2d, depthwise_conv2d, gemm  # noqa: F401  (registers the templates)
