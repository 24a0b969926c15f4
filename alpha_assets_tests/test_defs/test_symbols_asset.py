"""``symbols_asset``: the compute function of a symbols-partitioned asset runs with the process's older objects
left out of garbage collections, and Dagster still injects its context and resources and records what it yields.
"""

from __future__ import annotations

import gc
import threading

from dagster import ConfigurableResource, DagsterInstance, MaterializeResult, materialize

from alpha_assets.defs import names
from alpha_assets.defs.partitions import symbols_asset
from alpha_assets.processes import objects_left_out_of_collections

#: What the compute function saw: (partitions, its resource's label, objects frozen).
SEEN: list[tuple[list[str], str, int]] = []


class Recorder(ConfigurableResource):
    """A resource, to see that Dagster still injects it."""

    label: str


# ohlcv's key (a symbols asset's code version is looked up by key), its body a recorder.
@symbols_asset(names.OHLCV, group_name="tests", owners=["team:tests"], checks={})
def recorded(context, recorder: Recorder):
    """Records the partitions and the objects frozen while it runs."""
    SEEN.append((list(context.partition_keys), recorder.label, gc.get_freeze_count()))
    yield MaterializeResult(metadata={"frozen": gc.get_freeze_count()})


def test_a_symbols_assets_compute_leaves_the_older_objects_out_of_collections(tmp_path):
    SEEN.clear()
    with DagsterInstance.local_temp(tempdir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("symbols", ["SIM_AUSDT", "SIM_BUSDT"])
        result = materialize(
            [recorded], instance=instance, resources={"recorder": Recorder(label="injected")}, partition_key="SIM_BUSDT"
        )
        assert result.success
        (materialization,) = result.asset_materializations_for_node("ohlcv")
    ((partitions, label, frozen),) = SEEN
    assert partitions == ["SIM_BUSDT"] and label == "injected"
    # The objects of the Dagster process (modules, definitions, instance): hundreds of thousands.
    assert frozen > 100_000 and materialization.metadata["frozen"].value == frozen
    assert gc.get_freeze_count() == 0, "collected again once the step ended"


def test_objects_made_in_the_block_are_collected_and_older_ones_come_back_after_it():
    class Node:
        pass

    before = Node()
    before.itself = before
    with objects_left_out_of_collections():
        older = gc.get_freeze_count()
        made = Node()
        made.itself = made
        del made
        gc.collect()
        assert not any(type(o) is Node and o is not before for o in gc.get_objects()), "a cycle made inside is freed"
        assert gc.is_tracked(before) and older > 0
    assert gc.get_freeze_count() == 0
    with objects_left_out_of_collections(), objects_left_out_of_collections():
        pass
    assert gc.get_freeze_count() == 0


def test_objects_a_caller_froze_stay_frozen_after_the_block():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with objects_left_out_of_collections():
            pass
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()


def test_nested_blocks_ask_what_is_frozen_once_and_unfreeze_at_the_last(monkeypatch):
    # get_freeze_count walks every frozen object: an inner block (a step's forked workers) must not pay it again.
    calls = []
    real_count = gc.get_freeze_count
    monkeypatch.setattr(gc, "get_freeze_count", lambda: calls.append(1) or real_count())
    with objects_left_out_of_collections():
        with objects_left_out_of_collections():
            pass
        assert real_count() > 0, "the inner block's end leaves the outer block's objects frozen"
    assert len(calls) == 1
    assert real_count() == 0


def test_blocks_open_in_two_threads_unfreeze_when_both_ended():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    frozen_after_first: list[int] = []

    def first() -> None:
        with objects_left_out_of_collections():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with objects_left_out_of_collections():
            second_in.set()
            first_out.wait(5)
            frozen_after_first.append(gc.get_freeze_count())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert frozen_after_first and frozen_after_first[0] > 0, "still frozen while the second thread's block is open"
    assert gc.get_freeze_count() == 0
