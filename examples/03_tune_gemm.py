"""Tutorial 3: let the tuner find the schedule. A template exposes knobs; the
ModelTuner measures a random batch, learns a LightGBM ranking model over loop-IR
features, anneals over the space with it, and measures what it predicts is fast.

    python examples/03_tune_gemm.py

Records go to a database file; run the script twice and the second run resumes.
Then `apply_history_best` makes the template return its best known schedule.
"""

import numpy as np

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the gemm template)
from tilewise import autotune as at


def main() -> None:
    task = at.Task("gemm", (256, 256, 256), target="c")
    print(task, "-", task.config_space.size, "configs in the space")
    db = at.Database("tutorial_gemm.db")
    tuner = at.ModelTuner(task, seed=0, feature="ir")
    option = at.measure_option(builder=at.LocalBuilder(), runner=at.LocalRunner(number=4))
    summary = tuner.tune(48, option, database=db)
    option.builder.close()
    print(f"measured {summary.measured} (resumed {summary.resumed}), "
          f"best {summary.best_flops / 1e9:.1f} GFLOP/s: {summary.best_config}")

    with at.apply_history_best(db) as ctx:
        s, args = task.instantiate_best(ctx)
    mod = tw.build(s, args, target=task.target)
    rng = np.random.default_rng(0)
    a, b = (rng.random((256, 256), dtype=np.float32) for _ in range(2))
    c = np.zeros((256, 256), np.float32)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-3)
    print("the best schedule, rebuilt from the database, is correct")


if __name__ == "__main__":  # the builder and runner use child processes
    main()
