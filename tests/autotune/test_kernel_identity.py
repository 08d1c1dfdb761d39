"""A kernel is run once per measure option: candidates whose builds are one kernel
(configs the schedule does not tell apart) take the first one's result."""

from dataclasses import dataclass

from tilewise.autotune import BuildResult, MeasureInput, MeasureOption, MeasureResult, Task
from tilewise.autotune.measure.options import kernel_identity


@dataclass(frozen=True)
class Built:
    source: str
    so_path: str = ""
    compile_s: float = 0.0


def kernel_of(index: int) -> int:
    return index % 2 if index < 4 else index


class Builder:
    n_parallel = 1

    def build(self, inputs):
        # configs 0 and 2 (and 1 and 3) build one source, in files of their own
        return [BuildResult(artifact=Built(f"kernel {kernel_of(i.config.index)}",
                                           f"/tmp/k{i.config.index}.so", 0.1 * i.config.index))
                for i in inputs]


class Runner:
    def __init__(self):
        self.ran = []

    def run(self, inputs, builds):
        self.ran += [i.config.index for i in inputs]
        return [MeasureResult((1e-3 * (1 + i.config.index),), run_s=0.5) for i in inputs]


def test_a_kernel_built_again_is_not_run_again():
    import toy_templates  # noqa: F401  (registers toy_matmul)

    task = Task("toy_matmul", (64, 64), "c")
    space = task.config_space
    runner = Runner()
    option = MeasureOption(Builder(), runner)
    first = option.measure([MeasureInput(task, space.get(i)) for i in range(3)])
    later = option.measure([MeasureInput(task, space.get(i)) for i in (3, 4)])
    assert runner.ran == [0, 1, 4]
    assert first[2].costs == first[0].costs and first[2].run_s == 0.0
    assert later[0].costs == first[1].costs


def test_where_the_files_lie_and_how_long_building_took_do_not_make_another_kernel():
    assert kernel_identity(Built("a", "/x.so", 1.0)) == kernel_identity(Built("a", "/y.so", 2.0))
    assert kernel_identity(Built("a")) != kernel_identity(Built("b"))
    assert kernel_identity(7) is None
