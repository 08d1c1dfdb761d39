"""Template registry and tasks."""

import json
import pickle

import pytest
import toy_templates  # noqa: F401  (registers the toy templates)

from tilewise.autotune import Task, TaskKey, get_template, list_templates
from tilewise.errors import InvalidConfigError, UnknownTemplateError


def test_registry():
    assert get_template("toy_matmul").name == "toy_matmul"
    assert "toy_matmul" in [t.name for t in list_templates()]
    with pytest.raises(UnknownTemplateError, match="no template named 'nope'"):
        get_template("nope")


def test_task_key_is_hashable_and_json():
    task = Task("toy_matmul", [256, 256], "c")
    assert task.args == (256, 256)
    key = task.key
    assert {key: 1}[TaskKey("toy_matmul", (256, 256), task.target)] == 1
    assert TaskKey.from_json(json.loads(json.dumps(key.to_json()))) == key
    assert task == Task("toy_matmul", (256, 256), "c")


def test_config_space_is_cached():
    task = Task("toy_matmul", (256, 256))
    assert task.config_space is task.config_space
    assert task.config_space.size == 9 * 45 * 4


def test_instantiate_returns_the_template_result():
    task = Task("toy_matmul", (256, 256))
    cfg = task.config_space.get(11)
    returned, tensors = task.instantiate(cfg)
    assert returned == cfg and tensors == []
    assert str(returned.target) == task.target  # the template sees the task's target


def test_instantiate_can_reject():
    task = Task("toy_invalid", (16,))
    bad = next(i for i in range(task.config_space.size) if task.config_space.get(i)["bad"].val)
    with pytest.raises(InvalidConfigError):
        task.instantiate(task.config_space.get(bad))


def test_flop_from_template_or_add_flop():
    assert Task("toy_matmul", (4, 8)).flop == 2.0 * 4 * 8 * 4
    assert Task("toy_flops", (10,)).flop == 20
    assert Task("toy_flops", (10,)).config_space.get(0).flop == 20
    assert Task("toy_invalid", (16,)).flop is None


def test_task_pickles_without_its_cached_space():
    task = Task("toy_matmul", (256, 256))
    _ = task.config_space
    again = pickle.loads(pickle.dumps(task))
    assert again == task and "config_space" not in again.__dict__
    assert again.template_module == "toy_templates"
