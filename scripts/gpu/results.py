"""Check rows in the check program's JSON-lines schema (step, group, name, device, dtype, metric, value, tolerance,
status, detail, seconds), so scripts/gpu/report.py reads Python's rows and .NET's alike."""
import json
import math
import time


class Results:
    """Appends one JSON object per check to a file and prints a readable line."""

    def __init__(self, path, step, device):
        self.path, self.step, self.device = path, step, device
        self.failures = 0

    def add(self, group, name, status, detail="", metric="", value=None, tolerance=None, dtype="float32", seconds=0.0):
        if status in ("fail", "error"):
            self.failures += 1
        row = dict(step=self.step, group=group, name=name, device=self.device, dtype=dtype, metric=metric,
                   value=None if value is None or math.isnan(value) else float(value),
                   tolerance=tolerance, status=status, detail=detail, seconds=round(seconds, 3))
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
        measured = f" {metric}={value:.2e} tol={tolerance:.1e}" if value is not None and tolerance is not None else ""
        print(f"{ {'pass': 'ok  ', 'fail': 'FAIL', 'skip': 'skip'}.get(status, 'ERR ')} {group:<10} {name}{measured}"
              + (f"  ({detail})" if detail else ""), flush=True)

    def close(self, group, name, actual, expected, tolerance, detail="", started=None):
        """max |actual - expected| in float64 against an absolute tolerance."""
        if tuple(actual.shape) != tuple(expected.shape):
            self.add(group, name, "fail", f"shape {tuple(actual.shape)} vs {tuple(expected.shape)}", seconds=_since(started))
            return
        err = (actual.detach().double().cpu() - expected.detach().double().cpu()).abs().max().item()
        self.add(group, name, "pass" if err <= tolerance else "fail", detail, "max_abs", err, tolerance, seconds=_since(started))


def _since(started):
    return 0.0 if started is None else time.time() - started
