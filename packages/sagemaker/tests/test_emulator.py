"""The SageMaker emulator, driven only through real boto3 clients (and its control API)."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sagemaker_helpers import (
    EmulatorClients,
    make_client,
    training_job_request,
    with_framework_images,
)

from steplift.testing.emulation import (
    Emulator,
    EmulatorControl,
    FaultDecider,
    Faults,
    ScriptStep,
    group_alive,
    wait_until,
)
from steplift_sagemaker.emulator import SageMakerEmulator

BUCKET = "steplift-emulator-tests"  # created by the `execute` fixture's emulator
Script = Callable[[str], list[str]]
_names = itertools.count()


def unique(prefix: str) -> str:
    """A job name no other test uses."""
    return f"{prefix}-{next(_names)}"


def job_request(
    name: str,
    command: list[str] | None = None,
    *,
    max_runtime: int = 60,
    spot: bool = False,
    checkpoint: bool = False,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """CreateTrainingJob parameters writing to the test bucket."""
    return training_job_request(
        name,
        command,
        bucket=BUCKET,
        max_runtime=max_runtime,
        spot=spot,
        checkpoint=checkpoint,
        environment=environment,
    )


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    error = excinfo.value.response["Error"]
    status = excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return error["Code"], error["Message"], status


def _group_gone(pgid: int) -> bool:
    return not group_alive(pgid)


# --------------------------------------------------------------------------- API basics


def test_create_describe_and_list(scripted: EmulatorClients) -> None:
    names = [unique("listing"), unique("listing"), unique("other")]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for name in names:
        arn = scripted.sagemaker.create_training_job(**job_request(name))["TrainingJobArn"]
        assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"

    described = scripted.sagemaker.describe_training_job(TrainingJobName=names[0])
    assert described["TrainingJobStatus"] == "InProgress"
    assert described["SecondaryStatus"] == "Starting"
    assert described["Environment"] == {"STEPLIFT_TEST": "1"}
    assert described["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 60}
    assert described["CreationTime"] >= before

    listed = scripted.sagemaker.list_training_jobs(NameContains="listing", MaxResults=100)
    assert {job["TrainingJobName"] for job in listed["TrainingJobSummaries"]} >= set(names[:2])
    assert all("listing" in job["TrainingJobName"] for job in listed["TrainingJobSummaries"])

    recent = scripted.sagemaker.list_training_jobs(CreationTimeAfter=before, MaxResults=100)
    assert {job["TrainingJobName"] for job in recent["TrainingJobSummaries"]} == set(names)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert (
        scripted.sagemaker.list_training_jobs(CreationTimeAfter=future)["TrainingJobSummaries"]
        == []
    )

    seen: list[str] = []
    page = scripted.sagemaker.list_training_jobs(CreationTimeAfter=before, MaxResults=2)
    seen += [job["TrainingJobName"] for job in page["TrainingJobSummaries"]]
    assert len(seen) == 2 and "NextToken" in page
    page = scripted.sagemaker.list_training_jobs(
        CreationTimeAfter=before, MaxResults=2, NextToken=page["NextToken"]
    )
    seen += [job["TrainingJobName"] for job in page["TrainingJobSummaries"]]
    assert seen == names and "NextToken" not in page

    scripted.sagemaker.stop_training_job(TrainingJobName=names[2])
    stopping = scripted.sagemaker.list_training_jobs(StatusEquals="Stopping", MaxResults=100)
    assert [job["TrainingJobName"] for job in stopping["TrainingJobSummaries"]] == [names[2]]


def _bad(name: str, change: Any) -> dict[str, Any]:
    request = job_request(name)
    change(request)
    return request


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda r: r.update(TrainingJobName="bad_name"),
            "at 'trainingJobName' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        ),
        (
            lambda r: r.update(TrainingJobName="a" * 64),
            "Member must have length less than or equal to 63",
        ),
        (
            lambda r: r["ResourceConfig"].update(InstanceType="ml.gpu.huge"),
            "Value 'ml.gpu.huge' at 'resourceConfig.instanceType' failed to satisfy constraint: "
            "Member must satisfy enum value set: [",
        ),
        (
            lambda r: r["OutputDataConfig"].update(S3OutputPath="https://bucket/out"),
            "it must start with s3://",
        ),
        (
            lambda r: r.update(CheckpointConfig={"S3Uri": "/local/checkpoints"}),
            "at 'checkpointConfig.s3Uri' failed to satisfy constraint",
        ),
        (
            lambda r: r.update(EnableManagedSpotTraining=True),
            "Invalid MaxWaitTimeInSeconds. It must be present and be greater than or equal to "
            "MaxRuntimeInSeconds",
        ),
        (
            lambda r: r.update(
                EnableManagedSpotTraining=True,
                StoppingCondition={"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 30},
            ),
            "Invalid MaxWaitTimeInSeconds",
        ),
        (
            lambda r: r.update(Environment={f"K{i}": "v" for i in range(101)}),
            "at 'environment' failed to satisfy constraint: Member must have length less than "
            "or equal to 100",
        ),
        (
            lambda r: r.update(Environment={"K": "v" * 513}),
            "Map value must satisfy constraint: [Member must have length less than or equal "
            "to 512]",
        ),
        (
            lambda r: r["AlgorithmSpecification"].update(ContainerArguments=["x"] * 101),
            "at 'algorithmSpecification.containerArguments' failed to satisfy constraint",
        ),
        (
            lambda r: r["AlgorithmSpecification"].update(ContainerEntrypoint=["x"] * 101),
            "at 'algorithmSpecification.containerEntrypoint' failed to satisfy constraint",
        ),
        (
            lambda r: r["AlgorithmSpecification"].update(ContainerArguments=["a\nb"]),
            "at 'algorithmSpecification.containerArguments.1.member' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: ^.*",
        ),
        (
            lambda r: r.update(RoleArn="arn:aws:iam::123:user/someone"),
            "at 'roleArn' failed to satisfy constraint: Member must satisfy regular expression",
        ),
    ],
    ids=[
        "name-pattern",
        "name-length",
        "instance-type",
        "https-output",
        "checkpoint-uri",
        "spot-no-wait",
        "spot-short-wait",
        "env-count",
        "env-value",
        "args-count",
        "entrypoint-count",
        "multiline-arg",
        "role-arn",
    ],
)
def test_validation_refusals(scripted: EmulatorClients, change: Any, fragment: str) -> None:
    name = unique("refused")
    with pytest.raises(ClientError) as excinfo:
        scripted.sagemaker.create_training_job(**_bad(name, change))
    code, message, status = _error(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert fragment in message
    assert "validation error" in message or "MaxWait" in message or "S3" in message
    assert scripted.sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"] == []


def test_a_job_with_neither_image_nor_algorithm_is_refused(scripted: EmulatorClients) -> None:
    name = unique("imageless")
    request = job_request(name)
    del request["AlgorithmSpecification"]["TrainingImage"]
    with pytest.raises(ClientError) as excinfo:
        scripted.sagemaker.create_training_job(**request)
    code, message, status = _error(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert "AlgorithmName" in message and "TrainingImage" in message
    assert scripted.sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"] == []


def test_duplicate_name_is_resource_in_use(scripted: EmulatorClients) -> None:
    name = unique("duplicate")
    scripted.sagemaker.create_training_job(**job_request(name))
    with pytest.raises(ClientError) as excinfo:
        scripted.sagemaker.create_training_job(**job_request(name))
    code, message, _ = _error(excinfo)
    assert code == "ResourceInUse"
    assert "Training job names must be unique within an AWS account and region" in message


def test_missing_job_is_validation_exception(scripted: EmulatorClients) -> None:
    for call in (scripted.sagemaker.describe_training_job, scripted.sagemaker.stop_training_job):
        with pytest.raises(ClientError) as excinfo:
            call(TrainingJobName="no-such-job")
        assert _error(excinfo) == ("ValidationException", "Requested resource not found.", 400)


# --------------------------------------------------------------------------- execute mode


def test_execute_completes_and_streams_logs(execute: EmulatorClients, script: Script) -> None:
    name = unique("hello")
    code = (
        "import os\nfor i in range(3): print('line', i)\n"
        "open(os.path.join(os.environ['SM_MODEL_DIR'], 'model.txt'), 'w').write('w')"
    )
    execute.sagemaker.create_training_job(**job_request(name, script(code)))
    done = execute.wait_for(name)
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Completed", "Completed")
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert done["TrainingStartTime"] <= done["TrainingEndTime"] <= done["LastModifiedTime"]
    assert "FailureReason" not in done
    assert execute.log_lines(name) == ["line 0", "line 1", "line 2"]
    streams = execute.logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/"
    )
    assert streams["logStreams"][0]["logStreamName"].startswith(f"{name}/algo-1-")
    artifact = done["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/output/{name}/output/model.tar.gz"
    execute.s3.head_object(Bucket=BUCKET, Key=f"output/{name}/output/model.tar.gz")


def test_a_blank_output_line_loses_no_other_line(execute: EmulatorClients, script: Script) -> None:
    # CloudWatch refuses an empty message (and with it its whole batch); the log driver drops it.
    name = unique("blank")
    code = "print('before')\nprint()\nprint('after')"
    execute.sagemaker.create_training_job(**job_request(name, script(code)))
    assert execute.wait_for(name)["TrainingJobStatus"] == "Completed"
    assert execute.log_lines(name) == ["before", "after"]


def test_filter_log_events_by_stream_prefix_reads_only_that_job(
    scripted: EmulatorClients,
) -> None:
    group = "/aws/sagemaker/TrainingJobs"
    first, other = unique("prefix"), unique("prefix")
    logs = scripted.logs
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    for job in (first, other):
        stream = f"{job}/algo-1-{now // 1000}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [{"timestamp": now + i, "message": f"{job} line {i}"} for i in range(3)]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    answer = logs.filter_log_events(logGroupName=group, logStreamNamePrefix=f"{first}/")
    assert [event["message"] for event in answer["events"]] == [
        f"{first} line {i}" for i in range(3)
    ]
    assert {event["logStreamName"] for event in answer["events"]} == {
        f"{first}/algo-1-{now // 1000}"
    }
    # Paged one event at a time, still only that job's lines (and the paging ends).
    messages: list[str] = []
    token: dict[str, str] = {}
    for _ in range(20):
        page = logs.filter_log_events(
            logGroupName=group, logStreamNamePrefix=f"{other}/", limit=1, **token
        )
        messages += [event["message"] for event in page["events"]]
        if "nextToken" not in page:
            break
        token = {"nextToken": page["nextToken"]}
    assert messages == [f"{other} line {i}" for i in range(3)]


def test_execute_nonzero_exit_fails_like_sagemaker(
    execute: EmulatorClients, script: Script
) -> None:
    name = unique("broken")
    code = (
        "import os, sys\nprint('about to fail')\n"
        "open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('bad input')\n"
        "sys.exit(3)"
    )
    execute.sagemaker.create_training_job(**job_request(name, script(code)))
    done = execute.wait_for(name)
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Failed", "Failed")
    assert done["FailureReason"] == "AlgorithmError: bad input, exit code: 3"
    assert execute.log_lines(name) == ["about to fail"]


def test_a_missing_output_bucket_is_a_client_error_naming_it(
    execute: EmulatorClients, script: Script
) -> None:
    name = unique("no-bucket")
    request = training_job_request(
        name, script("print('trained')"), bucket="steplift-no-such-bucket"
    )
    execute.sagemaker.create_training_job(**request)
    done = execute.wait_for(name)
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Failed", "Failed")
    reason = done["FailureReason"]
    assert reason.startswith("ClientError: "), reason
    assert "steplift-no-such-bucket" in reason
    assert "InternalServerError" not in reason
    assert execute.log_lines(name) == ["trained"]


def test_job_process_gets_container_env_and_reaches_emulator_s3(
    execute: EmulatorClients, script: Script
) -> None:
    name = unique("env")
    code = """
import json, os, boto3
config = json.load(open(os.path.join(os.environ['SM_INPUT_CONFIG_DIR'], 'resourceconfig.json')))
report = {key: os.environ.get(key) for key in (
    'SM_HOSTS', 'SM_CURRENT_HOST', 'SM_NUM_GPUS', 'TRAINING_JOB_NAME', 'AWS_DEFAULT_REGION',
    'AWS_ACCESS_KEY_ID', 'MY_SETTING', 'CKPT')}
report['hosts'] = config['hosts']
report['job_in_training_env'] = json.loads(os.environ['SM_TRAINING_ENV'])['job_name']
report['ckpt_is_dir'] = os.path.isdir(os.environ['CKPT'])
boto3.client('s3').put_object(Bucket={bucket!r}, Key='from-job/{name}.json',
                              Body=json.dumps(report))
""".replace("{bucket!r}", repr(BUCKET)).replace("{name}", name)
    request = job_request(
        name,
        script(code),
        checkpoint=True,
        environment={"MY_SETTING": "on", "CKPT": "/opt/ml/checkpoints"},
    )
    execute.sagemaker.create_training_job(**request)
    done = execute.wait_for(name, timeout=20)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    body = execute.s3.get_object(Bucket=BUCKET, Key=f"from-job/{name}.json")["Body"].read()
    report = json.loads(body)
    assert report["SM_HOSTS"] == '["algo-1"]'
    assert report["SM_CURRENT_HOST"] == "algo-1"
    assert report["SM_NUM_GPUS"] == "0"
    assert report["TRAINING_JOB_NAME"] == name
    assert report["job_in_training_env"] == name
    assert report["AWS_ACCESS_KEY_ID"] == "testing"
    assert report["MY_SETTING"] == "on"
    assert report["hosts"] == ["algo-1"]
    assert report["ckpt_is_dir"] is True
    assert not report["CKPT"].startswith("/opt/ml")
    assert done["Environment"]["CKPT"] == "/opt/ml/checkpoints"


_SLEEPER = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
    "print('started', flush=True)\ntime.sleep(30)"
)


def test_stop_terminates_process_group(execute: EmulatorClients, script: Script) -> None:
    name = unique("stopped")
    execute.sagemaker.create_training_job(**job_request(name, script(_SLEEPER)))
    assert wait_until(lambda: execute.log_lines(name) == ["started"], timeout=10)
    runner = execute.emulator.runner(name)
    assert runner is not None and runner.process is not None and runner.process.pid
    pgid = runner.process.pid
    started = time.monotonic()
    execute.sagemaker.stop_training_job(TrainingJobName=name)
    assert execute.status(name)[0] in ("Stopping", "Stopped")
    done = execute.wait_for(name)
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert "Stopping" in [t["Status"] for t in done["SecondaryStatusTransitions"]]
    assert time.monotonic() - started < 10
    assert wait_until(lambda: _group_gone(pgid), timeout=5)
    with pytest.raises(ClientError) as excinfo:
        execute.sagemaker.stop_training_job(TrainingJobName=name)
    assert _error(excinfo)[0] == "ValidationException"


def test_max_runtime_is_enforced(execute: EmulatorClients) -> None:
    name = unique("too-long")
    started = time.monotonic()
    execute.sagemaker.create_training_job(
        **job_request(name, ["python", "-c", "import time; time.sleep(30)"], max_runtime=1)
    )
    done = execute.wait_for(name, timeout=15)
    assert time.monotonic() - started < 10
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]][-2:] == [
        "Stopping",
        "MaxRuntimeExceeded",
    ]


def test_missing_entrypoint_fails_clearly(execute: EmulatorClients) -> None:
    name = unique("no-entry")
    execute.sagemaker.create_training_job(**job_request(name))
    done = execute.wait_for(name)
    assert done["TrainingJobStatus"] == "Failed"
    assert "ContainerEntrypoint" in done["FailureReason"]


# --------------------------------------------------------------------------- scripted mode


def test_scripted_default_progression(scripted: EmulatorClients) -> None:
    name = unique("steps")
    scripted.sagemaker.create_training_job(**job_request(name))
    seen = [scripted.status(name) for _ in range(6)]
    assert seen == [
        ("InProgress", "Starting"),
        ("InProgress", "Downloading"),
        ("InProgress", "Training"),
        ("InProgress", "Uploading"),
        ("Completed", "Completed"),
        ("Completed", "Completed"),
    ]
    done = scripted.sagemaker.describe_training_job(TrainingJobName=name)
    assert "TrainingEndTime" in done and "TrainingStartTime" in done


def test_scripted_failure(scripted: EmulatorClients) -> None:
    name = unique("scripted-fail")
    scripted.emulator.script(
        name, ["Starting", "Training", ScriptStep("Failed", "AlgorithmError: boom, exit code: 1")]
    )
    scripted.sagemaker.create_training_job(**job_request(name))
    seen = [scripted.status(name)[1] for _ in range(3)]
    assert seen == ["Starting", "Training", "Failed"]
    done = scripted.sagemaker.describe_training_job(TrainingJobName=name)
    assert done["TrainingJobStatus"] == "Failed"
    assert done["FailureReason"] == "AlgorithmError: boom, exit code: 1"


def test_scripted_stop_and_default_script(scripted: EmulatorClients) -> None:
    scripted.emulator.script(None, ["Starting", "Training"])
    name = unique("scripted-stop")
    scripted.sagemaker.create_training_job(**job_request(name))
    assert [scripted.status(name)[1] for _ in range(3)] == ["Starting", "Training", "Training"]
    scripted.sagemaker.stop_training_job(TrainingJobName=name)
    assert scripted.status(name) == ("Stopped", "Stopped")
    with pytest.raises(ValueError, match="unknown SageMaker secondary status"):
        scripted.emulator.script(None, ["Sleeping"])


def test_scripted_queue_and_capacity_faults(scripted: EmulatorClients) -> None:
    scripted.emulator.set_faults(Faults(stuck_in_queue=True))
    queued = unique("scripted-queued")
    scripted.sagemaker.create_training_job(**job_request(queued))
    assert {scripted.status(queued) for _ in range(3)} == {("InProgress", "Starting")}
    scripted.emulator.set_faults(Faults(refuse_create="capacity"))
    assert scripted.status(queued) == ("InProgress", "Downloading")
    refused = unique("scripted-capacity")
    scripted.sagemaker.create_training_job(**job_request(refused))
    assert scripted.status(refused) == ("Failed", "Failed")


def _listed(clients: EmulatorClients, **filters: Any) -> list[tuple[str, str, str]]:
    page = clients.sagemaker.list_training_jobs(MaxResults=100, **filters)
    return [
        (job["TrainingJobName"], job["TrainingJobStatus"], job["SecondaryStatus"])
        for job in page["TrainingJobSummaries"]
    ]


def test_a_listing_moves_scripted_jobs_like_a_describe(scripted: EmulatorClients) -> None:
    name = unique("listed-progress")
    scripted.emulator.script(
        name, ["Starting", "Training", ScriptStep("Failed", "AlgorithmError: boom")]
    )
    scripted.sagemaker.create_training_job(**job_request(name))
    assert _listed(scripted, NameContains=name) == [(name, "InProgress", "Starting")]
    assert scripted.status(name) == ("InProgress", "Training")  # a describe takes turns
    # The observation that ends the job leaves it out of a listing of jobs in progress...
    assert _listed(scripted, NameContains=name, StatusEquals="InProgress") == []
    # ...and its describe tells why it ended.
    described = scripted.sagemaker.describe_training_job(TrainingJobName=name)
    assert described["FailureReason"] == "AlgorithmError: boom"

    stopped = unique("listed-stop")
    scripted.sagemaker.create_training_job(**job_request(stopped))
    scripted.sagemaker.stop_training_job(TrainingJobName=stopped)
    # A stop settles on a describe only: listings keep showing the job Stopping.
    assert _listed(scripted, NameContains=stopped) == [(stopped, "Stopping", "Stopping")]
    assert _listed(scripted, NameContains=stopped) == [(stopped, "Stopping", "Stopping")]
    assert scripted.status(stopped) == ("Stopped", "Stopped")


def test_listing_pages_skip_no_job_when_jobs_end_between_pages(
    scripted: EmulatorClients,
) -> None:
    prefix = unique("paged")
    names = [f"{prefix}-{number}" for number in range(5)]
    for name in names:
        scripted.emulator.script(name, ["Training"])
        scripted.sagemaker.create_training_job(**job_request(name))
    filters: dict[str, Any] = {"NameContains": prefix, "StatusEquals": "InProgress"}
    first = scripted.sagemaker.list_training_jobs(MaxResults=2, **filters)
    assert [job["TrainingJobName"] for job in first["TrainingJobSummaries"]] == names[:2]
    for name in names[:2]:  # the first page's jobs end before the next page is asked for
        scripted.emulator.script(name, ["Completed"])
        assert scripted.status(name) == ("Completed", "Completed")
    seen: list[str] = []
    token = first["NextToken"]
    while token:  # an offset token would now skip names[2] and names[3]
        page = scripted.sagemaker.list_training_jobs(MaxResults=2, NextToken=token, **filters)
        seen += [job["TrainingJobName"] for job in page["TrainingJobSummaries"]]
        token = page.get("NextToken", "")
    assert seen == names[2:]
    newest_first = scripted.sagemaker.list_training_jobs(
        MaxResults=2, SortOrder="Descending", **filters
    )
    assert [job["TrainingJobName"] for job in newest_first["TrainingJobSummaries"]] == [
        names[4],
        names[3],
    ]
    with pytest.raises(ClientError, match="Invalid pagination token"):
        scripted.sagemaker.list_training_jobs(
            NextToken=newest_first["NextToken"], SortBy="Name", **filters
        )


# --------------------------------------------------------------------------- faults


def _seed_with(pattern: list[str | None], rate: float) -> int:
    for seed in range(1000):
        decider = FaultDecider(Faults(throttle_rate=rate, seed=seed))
        if [decider.decide("DescribeTrainingJob") for _ in pattern] == pattern:
            return seed
    raise AssertionError("no seed gives that pattern")


def test_throttling_fault(scripted: EmulatorClients) -> None:
    name = unique("throttled")
    scripted.sagemaker.create_training_job(**job_request(name))
    scripted.emulator.set_faults(Faults(throttle_rate=1.0))
    no_retry = scripted.sagemaker_with(total_attempts=1)
    with pytest.raises(ClientError) as excinfo:
        no_retry.describe_training_job(TrainingJobName=name)
    assert _error(excinfo)[0::2] == ("ThrottlingException", 400)
    scripted.emulator.requests.clear()
    with pytest.raises(ClientError) as excinfo:  # listings are control-plane calls too
        no_retry.list_training_jobs(NameContains=name)
    assert _error(excinfo)[0::2] == ("ThrottlingException", 400)
    assert [r.params for r in scripted.emulator.requests.filter("ListTrainingJobs")] == [
        {"NameContains": name}
    ]

    # One throttle, then served: botocore's standard retry recovers (one sub-second backoff).
    scripted.emulator.set_faults(
        Faults(throttle_rate=0.5, seed=_seed_with(["throttle", None], 0.5))
    )
    scripted.emulator.requests.clear()
    answer = scripted.sagemaker_with(total_attempts=3).describe_training_job(TrainingJobName=name)
    assert answer["TrainingJobName"] == name
    assert len(scripted.emulator.requests.filter("DescribeTrainingJob")) == 2


def test_server_error_and_latency_faults(scripted: EmulatorClients) -> None:
    name = unique("flaky")
    scripted.sagemaker.create_training_job(**job_request(name))
    scripted.emulator.set_faults(Faults(error_rate=1.0))
    no_retry = scripted.sagemaker_with(total_attempts=1)
    answers = []
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            no_retry.describe_training_job(TrainingJobName=name)
        answers.append(_error(excinfo)[0::2])
    assert sorted(answers) == [("InternalFailure", 500), ("ServiceUnavailable", 503)]

    scripted.emulator.set_faults(Faults(latency=0.2))
    started = time.monotonic()
    scripted.sagemaker.describe_training_job(TrainingJobName=name)
    assert time.monotonic() - started >= 0.2


def test_quota_refusal(scripted: EmulatorClients) -> None:
    scripted.emulator.set_faults(Faults(refuse_create="quota"))
    name = unique("no-quota")
    with pytest.raises(ClientError) as excinfo:
        scripted.sagemaker.create_training_job(**job_request(name))
    code, message, status = _error(excinfo)
    assert (code, status) == ("ResourceLimitExceeded", 400)
    assert "'ml.g5.xlarge for training job usage' is 0 Instances" in message
    assert scripted.sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"] == []


def test_capacity_refusal_fails_at_start(execute: EmulatorClients) -> None:
    execute.emulator.set_faults(Faults(refuse_create="capacity"))
    name = unique("no-capacity")
    request = job_request(name, ["python", "-c", "print('never runs')"])
    execute.sagemaker.create_training_job(**request)
    done = execute.wait_for(name)
    assert done["TrainingJobStatus"] == "Failed"
    assert done["FailureReason"].startswith(
        "CapacityError: Unable to provision requested ML compute capacity."
    )
    assert execute.log_lines(name) == []


def test_stuck_in_queue_then_released(execute: EmulatorClients) -> None:
    execute.emulator.set_faults(Faults(stuck_in_queue=True))
    name = unique("queued")
    execute.sagemaker.create_training_job(**job_request(name, ["python", "-c", "print('ran')"]))
    assert not wait_until(lambda: execute.status(name) != ("InProgress", "Starting"), timeout=0.5)
    execute.emulator.set_faults(Faults())
    assert execute.wait_for(name)["TrainingJobStatus"] == "Completed"

    execute.emulator.set_faults(Faults(stuck_in_queue=True))
    other = unique("queued")
    execute.sagemaker.create_training_job(**job_request(other, ["python", "-c", "print('ran')"]))
    execute.sagemaker.stop_training_job(TrainingJobName=other)
    assert execute.wait_for(other)["SecondaryStatus"] == "Stopped"
    assert execute.log_lines(other) == []


def test_spot_job_never_launched_runs_out_of_wait_time(execute: EmulatorClients) -> None:
    execute.emulator.set_faults(Faults(stuck_in_queue=True))
    name = unique("spot-queued")
    request = job_request(name, ["python", "-c", "print('never runs')"], spot=True, max_runtime=1)
    request["StoppingCondition"]["MaxWaitTimeInSeconds"] = 1
    execute.sagemaker.create_training_job(**request)
    done = execute.wait_for(name, timeout=10)
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == (
        "Stopped",
        "MaxWaitTimeExceeded",
    )
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]] == [
        "Starting",
        "Stopping",
        "MaxWaitTimeExceeded",
    ]


_RESUMABLE = """
import os, time
path = os.environ['CKPT_FILE']
if os.path.exists(path):
    print('resumed from', open(path).read(), flush=True)
else:
    open(path, 'w').write('7')
    print('checkpointed', flush=True)
    time.sleep(30)
"""


def test_preempt_spot_job_restarts_from_checkpoint(
    execute: EmulatorClients, script: Script
) -> None:
    name = unique("spot")
    request = job_request(
        name,
        script(_RESUMABLE),
        spot=True,
        checkpoint=True,
        environment={"CKPT_FILE": "/opt/ml/checkpoints/step"},
    )
    execute.sagemaker.create_training_job(**request)
    assert wait_until(lambda: "checkpointed" in execute.log_lines(name), timeout=10)
    runner = execute.emulator.runner(name)
    assert runner is not None and runner.process is not None and runner.process.pid
    first_pid = runner.process.pid

    execute.emulator.preempt(name)
    done = execute.wait_for(name)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    statuses = [t["Status"] for t in done["SecondaryStatusTransitions"]]
    assert statuses == [
        "Starting",
        "Downloading",
        "Training",
        "Interrupted",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert execute.log_lines(name) == ["checkpointed", "resumed from 7"]
    assert _group_gone(first_pid)
    execute.s3.head_object(Bucket=BUCKET, Key=f"checkpoints/{name}/step")

    on_demand = unique("on-demand")
    execute.sagemaker.create_training_job(**job_request(on_demand, ["python", "-c", "print(1)"]))
    with pytest.raises(ValueError, match="not a managed spot training job"):
        execute.emulator.preempt(on_demand)


def test_request_log(scripted: EmulatorClients) -> None:
    scripted.emulator.requests.clear()
    name = unique("logged")
    scripted.sagemaker.list_training_jobs()
    assert scripted.emulator.requests.filter("CreateTrainingJob") == []
    scripted.sagemaker.create_training_job(**job_request(name))
    scripted.logs.describe_log_groups()
    created = scripted.emulator.requests.filter("CreateTrainingJob")
    assert len(created) == 1
    assert created[0].service == "sagemaker"
    assert created[0].params["TrainingJobName"] == name
    assert created[0].params["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert [r.operation for r in scripted.emulator.requests.list()] == [
        "ListTrainingJobs",
        "CreateTrainingJob",
        "DescribeLogGroups",
    ]
    assert scripted.emulator.requests.filter("DescribeLogGroups", service="logs")


# --------------------------------------------------------------------------- control API


def test_control_api_over_http(scripted: EmulatorClients) -> None:
    assert isinstance(scripted.emulator, Emulator)
    control = EmulatorControl(scripted.emulator.endpoint_url)
    assert control.health() == {"status": "ok", "mode": "scripted"}
    faults = Faults(throttle_rate=0.25, latency=0.01, seed=3)
    assert control.set_faults(faults) == faults
    assert scripted.emulator.faults == faults == control.faults()
    control.reset()
    assert control.faults() == Faults()

    name = unique("controlled")
    control.script(name, ["Starting", {"status": "Failed", "failure_reason": "scripted"}])
    scripted.sagemaker.create_training_job(**job_request(name, spot=False))
    assert [r.operation for r in control.requests()] == ["CreateTrainingJob"]
    assert control.requests("DescribeTrainingJob") == []
    with pytest.raises(RuntimeError, match="409"):
        control.preempt(name)
    with pytest.raises(RuntimeError, match="404"):
        control.preempt("no-such-job")
    with pytest.raises(RuntimeError, match="404"):
        control.kill_node("no-such-job", 1)
    not_a_node = urllib.request.Request(
        f"{scripted.emulator.endpoint_url}/_steplift/jobs/{name}/kill-node",
        data=b'{"node": "two"}',
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as bad_node:
        urllib.request.urlopen(not_a_node, timeout=5)
    assert bad_node.value.code == 400
    bad_node.value.close()
    refused = urllib.request.Request(
        f"{scripted.emulator.endpoint_url}/_steplift/faults",
        data=b'{"throttle_rate": 2}',
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as http_error:
        urllib.request.urlopen(refused, timeout=5)
    assert http_error.value.code == 400
    assert "throttle_rate" in json.loads(http_error.value.read())["error"]
    http_error.value.close()
    assert [scripted.status(name)[1] for _ in range(2)] == ["Starting", "Failed"]

    spot = unique("control-spot")
    scripted.sagemaker.create_training_job(**job_request(spot, spot=True))
    assert [scripted.status(spot)[1] for _ in range(3)] == ["Starting", "Downloading", "Training"]
    control.preempt(spot)
    steps = [scripted.status(spot)[1] for _ in range(6)]
    assert steps == ["Interrupted", "Starting", "Downloading", "Training", "Uploading", "Completed"]

    with pytest.raises(ValueError, match="127.0.0.1"):
        EmulatorControl("http://example.com:8080")


# --------------------------------------------------------------------------- lifecycle


def test_stop_ends_running_jobs(script: Script) -> None:
    threads_before = set(threading.enumerate())
    with with_framework_images(SageMakerEmulator(mode="execute", stop_grace=0.5)) as emulator:
        sagemaker = make_client(emulator, "sagemaker")
        name = unique("left-running")
        sagemaker.create_training_job(**job_request(name, script(_SLEEPER)))
        assert wait_until(
            lambda: (
                (r := emulator.runner(name)) is not None
                and r.process is not None
                and r.process.pid is not None
            ),
            timeout=10,
        )
        runner = emulator.runner(name)
        assert runner is not None and runner.process is not None
        pgid = runner.process.pid
        assert pgid is not None
    assert wait_until(lambda: _group_gone(pgid), timeout=5)
    assert not runner.alive
    assert wait_until(lambda: set(threading.enumerate()) <= threads_before, timeout=5), (
        set(threading.enumerate()) - threads_before
    )


def test_standalone_server_prints_endpoint() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen(
        [sys.executable, "-m", "steplift_sagemaker.emulator", "--port", "0", "--mode", "scripted"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        lines = _read_lines(process, count=3, timeout=20)
        assert "listening on http://127.0.0.1:" in lines[0], lines
        endpoint = lines[0].rsplit(" ", 1)[1]
        assert f"export AWS_ENDPOINT_URL={endpoint}" in lines
        assert EmulatorControl(endpoint).wait_until_healthy(timeout=5)["mode"] == "scripted"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
            assert process.stdout is not None
            process.stdout.close()


def _read_lines(process: subprocess.Popen[bytes], count: int, timeout: float) -> list[str]:
    """The first `count` output lines, read from the raw pipe (no buffering hides lines)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while data.count(b"\n") < count and time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
    finally:
        selector.close()
    return data.decode().splitlines()[:count]


def test_job_directories_are_removed_on_stop() -> None:
    with with_framework_images(SageMakerEmulator(mode="execute")) as emulator:
        make_client(emulator, "s3").create_bucket(Bucket=BUCKET)
        sagemaker = make_client(emulator, "sagemaker")
        name = unique("tidy")
        sagemaker.create_training_job(**job_request(name, ["python", "-c", "print('x')"]))
        assert wait_until(
            lambda: (
                sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
                == "Completed"
            ),
            timeout=10,
        )
        runner = emulator.runner(name)
        assert runner is not None and runner.workspace is not None
        root = runner.workspace.root
        assert root.is_dir()
    assert not root.exists()
