"""The operator library: compute definitions and CPU templates per operator, and
GPU templates (CUDA and OpenCL) where there is one: ``gpu_gemm``, ``gpu_batch_matmul``,
``gpu_conv2d_nchw``, ``gpu_depthwise_conv2d_nchw``; on CUDA's tensor cores
``gpu_gemm_tensorcore``.

Importing this package registers every template with ``tilewise.autotune``.
"""

from . import (  # noqa: F401  (importing registers the templates)
    batch_matmul,
    conv2d,
    conv2d_nhwc,
    conv2d_winograd,
    dense,
    depthwise_conv2d,
    depthwise_nchwc,
    gemm,
    gpu_batch_matmul,
    gpu_conv2d,
    gpu_depthwise_conv2d,
    gpu_gemm,
    gpu_gemm_tensorcore,
    layer_norm,
    pool,
    softmax,
)
