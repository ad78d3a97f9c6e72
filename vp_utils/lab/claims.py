"""A paper's claim in miniature: a measured value against its baseline, asserted with both numbers
in the message. When `VP_CLAIMS_LOG` names a file (the seed sweep, `./vp claims`), every claim is
appended to it instead, held or not, and a failed one does not stop the notebook.

    claim("DINO attention IoU", dino_iou, baseline=random_iou, margin=0.1)            # value > baseline + 0.1
    claim("masked MSE", mae_mse, baseline=mean_colour_mse, factor=0.8, higher=False)  # value < 0.8 x baseline

A claim holds when the value clears its threshold, `factor * baseline + margin` when higher is
better and `factor * baseline - margin` when lower is. `claim_near` asserts the opposite kind of
finding: that a value stays within a tolerance of its baseline (a method at chance, a gain of ~0).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

LOG_VARIABLE = "VP_CLAIMS_LOG"


class ClaimFailed(AssertionError):
    """A claim that did not hold; the message gives the value, the baseline and the threshold."""


@dataclass(frozen=True)
class Claim:
    name: str
    value: float
    baseline: float
    threshold: float
    kind: str  # "higher", "lower" or "near"

    @property
    def excess(self) -> float:
        """How far the value cleared its threshold (negative when it did not)."""
        if self.kind == "higher":
            return self.value - self.threshold
        if self.kind == "lower":
            return self.threshold - self.value
        return self.threshold - abs(self.value - self.baseline)

    @property
    def holds(self) -> bool:
        return self.excess > 0

    def __str__(self):
        relation = {"higher": ">", "lower": "<", "near": "within"}[self.kind]
        target = (f"{self.threshold:.3g} of {self.baseline:.4g}" if self.kind == "near"
                  else f"{self.threshold:.4g} (baseline {self.baseline:.4g})")
        verdict = "holds" if self.holds else "FAILED"
        return f"claim {verdict}: {self.name}: {self.value:.4g} {relation} {target}"

    def _ipython_display_(self):
        """As a cell's last value, show nothing: `claim` has already printed its line."""


def claim(name: str, value, baseline, margin: float = 0.0, *, factor: float = 1.0,
          higher: bool = True) -> Claim:
    """Assert that `value` beats `factor * baseline` by more than `margin`; print and record it."""
    value, baseline = _finite(value, "value", name), _finite(baseline, "baseline", name)
    if margin < 0 or factor <= 0:
        raise ValueError(f"{name}: margin must be >= 0 and factor > 0, got {margin} and {factor}")
    threshold = factor * baseline + (margin if higher else -margin)
    return _settle(Claim(name, value, baseline, threshold, "higher" if higher else "lower"))


def claim_near(name: str, value, baseline, tolerance: float) -> Claim:
    """Assert that `value` lies within `tolerance` of `baseline`; print and record it."""
    value, baseline = _finite(value, "value", name), _finite(baseline, "baseline", name)
    if tolerance <= 0:
        raise ValueError(f"{name}: tolerance must be positive, got {tolerance}")
    return _settle(Claim(name, value, baseline, float(tolerance), "near"))


def _finite(number, role: str, name: str) -> float:
    number = float(number)  # also takes 0-d tensors and numpy scalars
    if not math.isfinite(number):
        raise ClaimFailed(f"claim FAILED: {name}: the {role} is {number}")
    return number


def _settle(result: Claim) -> Claim:
    """Print a claim that holds; raise on one that does not, unless the seed sweep is recording:
    then it is logged and the notebook runs on, so the claims after it are measured too."""
    path = os.environ.get(LOG_VARIABLE)
    if path:
        with open(path, "a") as log:
            log.write(json.dumps(asdict(result) | {"holds": result.holds, "excess": result.excess}) + "\n")
    if not result.holds and not path:
        raise ClaimFailed(str(result))
    print(result)
    return result
