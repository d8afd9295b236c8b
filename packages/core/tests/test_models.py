"""Job names, GPU requests and payloads."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steplift.models import Resources, StepRunInfo, parse_gpu
from steplift.payloads import decode, encode

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,40}", fullmatch=True)


def info(pipeline: str, run: str, step: str, attempt: int) -> StepRunInfo:
    return StepRunInfo(pipeline=pipeline, run=run, step=step, attempt=attempt, artifact_uri="/x")


@given(names, names, names, st.integers(min_value=1, max_value=99))
def test_job_names_follow_provider_rules_and_are_deterministic(
    pipeline: str, run: str, step: str, attempt: int
) -> None:
    one = info(pipeline, run, step, attempt)
    sagemaker_like = one.job_name(max_length=63)
    assert re.fullmatch(r"[a-zA-Z](-*[a-zA-Z0-9]){0,62}", sagemaker_like), sagemaker_like
    assert sagemaker_like == info(pipeline, run, step, attempt).job_name(max_length=63)
    label_like = one.job_name(max_length=63, lowercase=True, allowed="a-z0-9-")
    assert re.fullmatch(r"[a-z][a-z0-9-]{0,62}", label_like), label_like


@given(names, names, st.integers(min_value=1, max_value=5))
def test_different_attempts_never_share_a_job_name(run: str, step: str, attempt: int) -> None:
    assert info("p", run, step, attempt).job_name() != info("p", run, step, attempt + 1).job_name()
    # Sanitising maps '.' and '_' to '-', but the hash keeps the names apart.
    assert info("p", run, "a.b", attempt).job_name() != info("p", run, "a_b", attempt).job_name()


@pytest.mark.parametrize(
    ("text", "expected"), [("A10G:1", ("A10G", 1)), ("a100:8", ("A100", 8)), ("T4", ("T4", 1))]
)
def test_gpu_requests_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_gpu(text) == expected


def test_resources_normalise_the_gpu() -> None:
    resources = Resources(gpu="a100:8", nodes=2)
    assert (resources.gpu, resources.gpu_type, resources.gpu_count) == ("A100:8", "A100", 8)


plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(plain)
def test_plain_data_round_trips_as_json(value: object) -> None:
    data, fmt = encode(value)
    assert fmt == "json"
    assert decode(data, fmt) == value


@given(st.tuples(st.integers(), st.text()) | st.sets(st.integers()) | st.binary().map(bytearray))
def test_other_values_round_trip_through_pickle(value: object) -> None:
    data, fmt = encode(value)
    assert fmt == "pickle"
    assert decode(data, fmt) == value


@given(st.binary())
def test_bytes_are_stored_as_they_are(value: bytes) -> None:
    data, fmt = encode(value)
    assert fmt == "bytes" and data is value
    assert decode(data, fmt) == value
