"""When enough feedback has arrived since the tagger was last trained, retrain it early.

The retrain sensor reads two facts on each tick: the latest successful training (a ``tag_model``
materialization, named by its event storage id) and the number of feedback events that
``raw_feedback`` materializations loaded since then, both from Dagster's event log.
``decide_retrain`` turns them, the threshold and the sensor's cursor into at most one run
request per threshold crossing: the cursor remembers the training it counted from and how many
crossings already asked for a run, and the run key is derived from both, so a tick replayed
after a crash asks for the same run again (which the orchestrator drops) instead of a second
one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Used when no setting overrides it (see the sensor's resource).
DEFAULT_FEEDBACK_THRESHOLD = 500


@dataclass(frozen=True)
class RetrainState:
    """The sensor cursor: the training counted from, and the crossings that asked for a run."""

    baseline: int | None = None
    crossings: int = 0
    requested_at: int = 0

    def to_cursor(self) -> str:
        return json.dumps({"baseline": self.baseline, "crossings": self.crossings,
                           "requested_at": self.requested_at}, sort_keys=True)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> RetrainState:
        """The state stored in ``cursor`` (the empty state when there is none).

        Raises:
            ValueError: The cursor is not the JSON object this sensor writes.
        """
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            return cls(baseline=None if data["baseline"] is None else int(data["baseline"]),
                       crossings=int(data["crossings"]), requested_at=int(data["requested_at"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"feedback retrain sensor cursor is not valid: {cursor[:80]!r} "
                             "(expected JSON with baseline, crossings, requested_at)") from exc


@dataclass(frozen=True)
class RetrainDecision:
    """``run_key`` is set when a run should be requested; ``reason`` says why (not)."""

    state: RetrainState
    run_key: str | None
    reason: str


def decide_retrain(state: RetrainState, baseline: int | None, count: int,
                   threshold: int) -> RetrainDecision:
    """Whether ``count`` feedback events since training ``baseline`` cross a new threshold.

    A new training (another ``baseline``) restarts the count. Within one baseline the first run
    is asked for when ``count`` reaches ``threshold``; if that retrain fails and feedback keeps
    arriving, another ``threshold`` events after the request ask again, never before.

    Args:
        state: The state from the sensor's cursor.
        baseline: The storage id of the latest ``tag_model`` materialization (None: never
            trained).
        count: Feedback events loaded since that materialization (all of them when None).
        threshold: Events that justify a retrain; at least 1.

    Raises:
        ValueError: ``threshold`` is below 1.
    """
    if threshold < 1:
        raise ValueError(f"feedback retrain threshold must be at least 1, got {threshold}")
    if state.baseline != baseline:
        state = RetrainState(baseline=baseline)
    since = "the last training" if baseline is not None else "the start (no training yet)"
    needed = state.requested_at + threshold
    if count < needed:
        return RetrainDecision(state, None, f"{count} feedback events since {since}; "
                                            f"a retrain is requested at {needed}")
    crossings = state.crossings + 1
    return RetrainDecision(
        RetrainState(baseline=baseline, crossings=crossings, requested_at=count),
        f"feedback-retrain-{baseline if baseline is not None else 'none'}-{crossings}",
        f"{count} feedback events since {since} reached {needed}",
    )
