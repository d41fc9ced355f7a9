"""pla.attribute_dataset on Ray: a local Ray instance of 2 CPUs, the tiny GGUF, deterministic
scoring (so Ray and in-process runs give identical numbers)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import ray
from cli_run import run

import pyllmattr as pla
import pyllmattr.dataset
from pyllmattr._testing import ExitingWorker, WaitingWorker, first_actor_runs
from pyllmattr.dataset import make_tasks, run_tasks
from pyllmattr.dataset.batch import Work
from pyllmattr.dataset.ray_runner import RayRunner
from pyllmattr.dataset.shard import make_chunks

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PROMPTS = [
    "Paris is the capital of",
    "Rome is the capital of",
    "Berlin is the capital of",
    "Madrid is the capital of",
]
TARGETS = [" France", " Italy", " Germany", " Spain"]
LOAD = {"n_ctx": 512, "deterministic": True}


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    # Ray puts the driver's working directory on its workers' sys.path: started from the
    # repository root, they would import the source folder instead of the installed package.
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray"))
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    finally:
        os.chdir(here)
    yield ray
    ray.shutdown()


@pytest.fixture
def ray_runners(monkeypatch):
    """``prepare(runner)`` applied to every RayRunner that run_tasks makes; returns the
    list they are kept in, to look at afterwards."""
    made = []

    def install(prepare=lambda runner: runner):
        def make(*args, **kwargs):
            made.append(prepare(RayRunner(*args, **kwargs)))
            return made[-1]

        monkeypatch.setattr(pyllmattr.dataset, "RayRunner", make)
        return made

    return install


@pytest.fixture(scope="module")
def in_process(tiny_path):
    return pla.attribute_dataset(
        tiny_path, PROMPTS, targets=TARGETS, chunk_size=1, load_args={**LOAD, "n_threads": 1}
    )


def assert_same(results, expected) -> None:
    assert [r.target for r in results] == [r.target for r in expected]
    for a, b in zip(results, expected, strict=True):
        assert a.input_features == b.input_features
        np.testing.assert_array_equal(a.seq_attr, b.seq_attr)


def test_ray_results_equal_the_in_process_run_in_input_order(local_ray, tiny_path, in_process):
    results = pla.attribute_dataset(
        tiny_path, PROMPTS, targets=TARGETS, ray=True, chunk_size=1, load_args=LOAD
    )
    assert_same(results, in_process)
    assert ray.is_initialized()  # an instance it did not start is left running


def test_ray_streams_in_input_order(local_ray, tiny_path, in_process):
    stream = pla.attribute_dataset(
        tiny_path, PROMPTS, targets=TARGETS, ray="auto", chunk_size=1, load_args=LOAD, stream=True
    )
    assert_same(list(stream), in_process)


def test_an_actor_that_dies_loses_no_input(local_ray, tiny_path, in_process, ray_runners):
    made = ray_runners(lambda runner: first_actor_runs(runner, ExitingWorker))
    tasks = make_tasks(PROMPTS, TARGETS)
    items = list(run_tasks(tiny_path, tasks, ray=True, actors=2, chunk_size=1, load_args=LOAD))
    [runner] = made
    assert runner.restarts == 1
    assert len({w["worker"] for w in runner.workers}) == 3  # two, and the first one's successor
    assert [item.index for item in items] == [0, 1, 2, 3]
    assert_same([item.result for item in items], in_process)
    assert runner.workers[0]["worker"] not in {item.worker for item in items}


def test_an_idle_actor_takes_over_the_waiting_chunks_of_a_slow_one(local_ray, tiny_path, tmp_path):
    release = tmp_path / "release"  # the first actor starts no chunk before this file exists
    runner = RayRunner(ray, tiny_path, "feature-ablation", LOAD, actors=2)
    first_actor_runs(runner, WaitingWorker, str(release))
    cities = ["Athens", "Bern", "Cairo", "Dublin", "Lima", "Oslo", "Paris", "Rome"]
    chunks = make_chunks(make_tasks([f"{c} is the capital of" for c in cities], [" x"] * 8), 1)
    assert [chunk[0].index for chunk in chunks] == list(range(8))  # already in prefix order
    finished = []
    for items in runner.run(Work(chunks)):
        finished += items
        if len(finished) == 5:  # the second actor's shard of 4, and one taken over
            release.touch()
    first, second = (w["worker"] for w in runner.workers)
    ran = {item.index: item.worker for item in finished}
    assert sorted(ran) == list(range(8))  # every input once
    # Shards [0, 1, 2, 3] and [4, 5, 6, 7]. The first actor holds 0 and 1 (two chunks are
    # sent ahead) with 2 and 3 waiting; the second runs its four, then takes 3, the first
    # shard's last, and leaves 2: a single waiting chunk stays where it is.
    assert [i for i in range(8) if ran[i] == second] == [3, 4, 5, 6, 7]
    assert [i for i in range(8) if ran[i] == first] == [0, 1, 2]


def test_each_actor_gets_threads_from_its_cpus_and_one_model(local_ray, tiny_path, ray_runners):
    made = ray_runners()
    tasks = make_tasks(PROMPTS[:2], TARGETS[:2])
    items = list(run_tasks(tiny_path, tasks, ray=True, cpus_per_actor=2, load_args=LOAD))
    [runner] = made
    assert [w["n_threads"] for w in runner.workers] == [2]  # 2 CPUs: one actor
    assert {item.worker for item in items} == {runner.workers[0]["worker"]}


def test_inputs_that_share_a_prefix_run_on_the_same_actor(local_ray, tiny_path):
    examples = {  # longer than the 64 characters inputs are grouped by
        "a": "Spain: Madrid\nFrance: Paris\nJapan: Tokyo\nEgypt: Cairo\nPeru: Lima\n",
        "b": "hot -> cold\nbig -> small\nup -> down\nfast -> slow\nold -> young\n",
    }
    records, kinds = [], []
    for query in ("one", "two", "three"):
        for kind, text in examples.items():
            records.append({"template": "{x}" + query, "values": {"x": text}})
            kinds.append(kind)
    tasks = make_tasks(records, [" x"] * len(records))
    items = list(run_tasks(tiny_path, tasks, ray=True, actors=2, chunk_size=1, load_args=LOAD))
    worker_of = {kind: {i.worker for i, k in zip(items, kinds, strict=True) if k == kind}
                 for kind in examples}  # fmt: skip
    assert len(worker_of["a"]) == len(worker_of["b"]) == 1
    assert worker_of["a"] != worker_of["b"]


def test_the_command_line_runs_on_a_ray_cluster_by_address(local_ray, tmp_path, tiny_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"id": p, "prompt": p, "target": t} for p, t in zip(PROMPTS, TARGETS, strict=True)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    address = ray.get_runtime_context().gcs_address
    done = run(
        "attribute-dataset", str(source), "--out", str(out), "--model", str(tiny_path),
        "--n-ctx", "512", "--deterministic", "--chunk", "1", "--ray", address,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = {row["id"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert sorted(got) == sorted(PROMPTS)
    in_process = pla.attribute_dataset(
        tiny_path, PROMPTS, targets=TARGETS, chunk_size=1, load_args=LOAD
    )
    for prompt, expected in zip(PROMPTS, in_process, strict=True):
        np.testing.assert_array_equal(got[prompt]["seq_attr"], expected.seq_attr)
