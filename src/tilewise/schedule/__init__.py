"""Schedules: how to compute a tensor expression (loop structure, placement, storage)."""

from .schedule import Schedule, create_schedule, thread_axis
from .stage import AttachKind, Fuse, IterAttr, Split, Stage, Tail
from .tensorize import BufferView, IntrinImpl, TensorIntrin, decl_tensor_intrin

__all__ = [
    "Schedule", "create_schedule", "thread_axis", "AttachKind", "Fuse", "IterAttr", "Split", "Tail",
    "Stage", "BufferView", "IntrinImpl", "TensorIntrin", "decl_tensor_intrin",
]
