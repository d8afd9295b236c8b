"""A step attempt's job, found or created once: receipts, adoption and a careful submit.

A launch first looks for the attempt's job (its receipt in the artifact store, else the
provider's own lookup) and adopts it; only when there is none does it submit, and a submit
that failed transiently is checked with ``find_job`` before it is tried again, because the
create may have gone through before the error. Never two jobs for one attempt.
"""

from __future__ import annotations

from steplift.launch.control import ControlPlane
from steplift.launch.observer import LaunchObserver
from steplift.models import JobHandle, StepRunInfo
from steplift.store import join_uri

RECEIPT = "receipt.json"
"""The file, in a step attempt's folder, that records its job's handle once submitted."""


def receipt_uri(info: StepRunInfo) -> str:
    """Where the step attempt's receipt is stored."""
    return join_uri(info.artifact_uri, RECEIPT)


def find_adoptable(
    control: ControlPlane, info: StepRunInfo, observer: LaunchObserver
) -> JobHandle | None:
    """The job of this step attempt: from its receipt, else from the provider."""
    operator = control.operator
    uri = receipt_uri(info)
    try:
        if control.call(lambda: operator.artifact_store.exists(uri)):
            handle = JobHandle.model_validate_json(
                control.call(lambda: operator.artifact_store.get(uri))
            )
            if handle.flavor == operator.flavor:
                return handle
    except Exception as error:  # a receipt is a shortcut; the provider is the truth
        observer.on_warning(f"could not read the receipt {uri}: {error}")
    return control.find_job_patiently(info, observer)


def submit_once(
    control: ControlPlane,
    info: StepRunInfo,
    entrypoint_command: list[str],
    observer: LaunchObserver,
) -> JobHandle:
    """Submit once; after a transient failure, check for the job before trying again."""
    operator = control.operator
    environment = operator.job_environment(info)

    def create() -> JobHandle:
        try:
            return control.call(lambda: operator.submit(info, entrypoint_command, environment))
        except Exception as error:
            if not operator.is_transient_error(error):
                raise
            # The create may have gone through before the error: never submit blindly.
            existing = control.find_job_patiently(info, observer)
            if existing is not None:
                return existing
            raise

    handle = control.patiently(create, "submitting the job", observer)
    try:
        receipt = handle.model_dump_json().encode()
        control.call(lambda: operator.artifact_store.put(receipt_uri(info), receipt))
    except Exception as error:  # the provider-side name or label still finds the job
        observer.on_warning(f"could not write the receipt of {handle.name}: {error}")
    return handle
