"""The deployment lifecycle vocabulary: statuses, error codes and what to do about each."""

from __future__ import annotations

from enum import StrEnum


class DeploymentStatus(StrEnum):
    """Where a deployment stands in its lifecycle."""

    REQUESTED = "REQUESTED"
    DEPLOYING = "DEPLOYING"
    INITIALIZING = "INITIALIZING"
    DEPLOYED = "DEPLOYED"
    STOPPED = "STOPPED"
    ERROR = "ERROR"
    FAILED = "FAILED"
    MUST_REDOWNLOAD = "MUST_REDOWNLOAD"
    # Idle for longer than its keep_alive: no engine runs; the next request loads it again.
    UNLOADED = "UNLOADED"

    @property
    def is_active(self) -> bool:
        """True while the deployment holds (or is acquiring) engine processes."""
        return self in ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        """True once nothing more will happen without a user action."""
        return self in TERMINAL_STATUSES


ACTIVE_STATUSES = frozenset(
    {
        DeploymentStatus.REQUESTED,
        DeploymentStatus.DEPLOYING,
        DeploymentStatus.INITIALIZING,
        DeploymentStatus.DEPLOYED,
        DeploymentStatus.ERROR,
    }
)
TERMINAL_STATUSES = frozenset(
    {DeploymentStatus.STOPPED, DeploymentStatus.FAILED, DeploymentStatus.MUST_REDOWNLOAD}
)


class InstanceStatus(StrEnum):
    """Where one replica of a deployment stands."""

    REQUESTED = "REQUESTED"
    COPYING_FILES = "COPYING_FILES"
    DEPLOYED = "DEPLOYED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


class ErrorCode(StrEnum):
    """Why a deployment failed, each with a remediation a user can act on."""

    OOM = "OOM"
    CUDA_ERROR = "CUDA_ERROR"
    MODEL_LOADING_FAILURE = "MODEL_LOADING_FAILURE"
    CONTAINER_EXITED = "CONTAINER_EXITED"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    STARTUP_TIMEOUT = "STARTUP_TIMEOUT"
    MUST_REDOWNLOAD = "MUST_REDOWNLOAD"

    @property
    def remediation(self) -> str:
        """One line saying what to do about this error."""
        return REMEDIATIONS[self]


REMEDIATIONS = {
    ErrorCode.OOM: "Out of memory: reduce the context size, pick a smaller model or quant, "
    "or lower GPU memory utilization.",
    ErrorCode.CUDA_ERROR: "GPU error: check the GPU driver and that the GPU is visible "
    "(nvidia-smi); restart GPU services or the host if needed.",
    ErrorCode.MODEL_LOADING_FAILURE: "The model could not be loaded: check that every model file "
    "exists, is readable and matches the expected format; re-download it if in doubt.",
    ErrorCode.CONTAINER_EXITED: "The engine process exited: open the logs (%kz logs NAME) for "
    "details; check memory limits and engine flags.",
    ErrorCode.RUNTIME_ERROR: "The engine reported an error: open the logs (%kz logs NAME) "
    "for specifics.",
    ErrorCode.STARTUP_TIMEOUT: "The model did not become ready in time: try a smaller model or "
    "context, or raise the startup timeout.",
    ErrorCode.MUST_REDOWNLOAD: "Model files are missing or corrupt: download the model again "
    "and redeploy.",
}
