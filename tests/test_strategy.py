"""Specification of ftlib.strategy: the four-quadrant recommender."""

from __future__ import annotations

import dataclasses
import re

import pytest

from ftlib.strategy import SMALL_DATASET_THRESHOLD, Plan, Quadrant, recommend
from ftlib.surgery.states import State


def test_small_similar_trains_only_a_new_head_on_frozen_features():
    plan = recommend(200, True)
    assert plan.quadrant is Quadrant.SMALL_SIMILAR
    assert plan.state is State.HEAD
    assert plan.freeze_first == 0
    assert "frozen" in plan.reason


@pytest.mark.parametrize(("num_blocks", "frozen"), [(3, 1), (4, 2), (6, 2), (8, 3)])
def test_small_different_freezes_a_third_to_a_half_of_the_blocks(num_blocks, frozen):
    plan = recommend(200, False, num_blocks=num_blocks)
    assert plan.quadrant is Quadrant.SMALL_DIFFERENT
    assert plan.state is State.FULL
    assert plan.freeze_first == frozen
    assert num_blocks / 3 <= frozen <= num_blocks / 2
    assert f"{frozen} of {num_blocks}" in plan.reason


@pytest.mark.parametrize("num_blocks", range(3, 21))
def test_small_different_freezes_at_least_one_block_and_trains_at_least_one(num_blocks):
    frozen = recommend(200, False, num_blocks=num_blocks).freeze_first
    assert 1 <= frozen <= num_blocks - 2  # the last block is the head


@pytest.mark.parametrize("num_blocks", [1, 2])
def test_small_different_with_a_one_block_body_says_to_freeze_layers_by_name(num_blocks):
    plan = recommend(200, False, num_blocks=num_blocks)  # e.g. VGG: features, classifier
    assert plan.state is State.FULL and plan.freeze_first is None
    assert "freeze its first layers by name" in plan.reason and "sweep" in plan.reason


def test_small_different_without_block_count_leaves_k_to_a_sweep():
    plan = recommend(200, False)
    assert plan.state is State.FULL
    assert plan.freeze_first is None
    assert "sweep" in plan.reason


def test_large_similar_fine_tunes_everything_at_a_small_body_lr():
    plan = recommend(5000, True, num_blocks=4)
    assert plan.quadrant is Quadrant.LARGE_SIMILAR
    assert (plan.state, plan.freeze_first, plan.alternative) == (State.FULL, 0, None)
    assert "1/10" in plan.lr_advice
    assert "10x the body" in plan.lr_advice


def test_large_different_fine_tunes_from_pretrained_and_offers_scratch():
    plan = recommend(5000, False)
    assert plan.quadrant is Quadrant.LARGE_DIFFERENT
    assert (plan.state, plan.freeze_first) == (State.FULL, 0)
    assert plan.alternative == "train from scratch"


def test_large_different_reason_says_the_sources_disagree():
    reason = recommend(5000, False).reason
    for needed in ("disagree", "from scratch", "CS231n", "Kornblith", "Girshick", "lesson 6"):
        assert needed in reason


def test_every_reason_is_one_paragraph():
    for images, similar in [(10, True), (10, False), (10_000, True), (10_000, False)]:
        reason = recommend(images, similar).reason
        assert reason and "\n" not in reason


def test_threshold_boundary_999_is_small_and_1000_is_large():
    assert SMALL_DATASET_THRESHOLD == 1000
    assert Quadrant.of(999, True) is Quadrant.SMALL_SIMILAR
    assert Quadrant.of(1000, True) is Quadrant.LARGE_SIMILAR
    assert recommend(999, False).quadrant is Quadrant.SMALL_DIFFERENT
    assert recommend(1000, False).quadrant is Quadrant.LARGE_DIFFERENT


@pytest.mark.parametrize("text", ["small_different", "SMALL_DIFFERENT", "Small_Different"])
def test_quadrant_parses_its_names(text):
    assert Quadrant.parse(text) is Quadrant.SMALL_DIFFERENT
    assert Quadrant.parse(Quadrant.SMALL_DIFFERENT) is Quadrant.SMALL_DIFFERENT


def test_unknown_quadrant_lists_the_valid_names():
    with pytest.raises(ValueError, match="'large_similar'"):
        Quadrant.parse("huge_similar")


def test_plan_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        recommend(10, True).state = State.FULL  # type: ignore[misc]
    assert isinstance(recommend(10, True), Plan)


@pytest.mark.parametrize("images", [-1, 0, 12.5, 1000.0, "1000", True, None])
def test_bad_images_per_class_raises_naming_the_value(images):
    with pytest.raises(ValueError, match="images_per_class") as error:
        recommend(images, True)
    assert repr(images) in str(error.value)


@pytest.mark.parametrize("similar", [1, "yes", None])
def test_similar_must_be_a_bool(similar):
    with pytest.raises(
        ValueError, match=re.escape(f"similar must be True or False, got {similar!r}")
    ):
        recommend(100, similar)


@pytest.mark.parametrize("num_blocks", [0, -2, 2.5, True])
def test_bad_num_blocks_raises_naming_the_value(num_blocks):
    with pytest.raises(
        ValueError, match=re.escape(f"num_blocks must be an int >= 1 or None, got {num_blocks!r}")
    ):
        recommend(100, False, num_blocks=num_blocks)
