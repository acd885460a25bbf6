"""Training metrics: one JSON line per logged step, and TensorBoard / W&B when installed and asked for."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from recon4d.outputs import output_error


class MetricsLog:
    """Appends metric rows to ``metrics.jsonl`` (flushed per row, so a killed run keeps what it logged)
    and mirrors the numbers to the optional sinks of ``report_to``."""

    def __init__(self, folder: Path, report_to: tuple[str, ...], config: dict, keep_until_step: int | None = None
                 ) -> None:
        self.path = Path(folder) / "metrics.jsonl"
        self._trim(keep_until_step)
        try:
            self.handle = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise output_error(self.path, exc) from exc
        self.tensorboard = self.wandb = None
        if "tensorboard" in report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(Path(folder) / "tensorboard"))
            except ImportError:
                pass  # optional: "jsonl" always runs; the run prints which sinks are active
        if "wandb" in report_to:
            try:
                import wandb

                self.wandb = wandb.init(project="recon4d", config=config, dir=str(folder), resume="allow")
            except ImportError:
                warnings.warn("report_to has wandb but wandb is not installed; metrics go to metrics.jsonl only.",
                              stacklevel=2)

    def _trim(self, keep_until_step: int | None) -> None:
        """On resume, drop rows of steps after the checkpoint (they will be logged again)."""
        if keep_until_step is None or not self.path.is_file():
            return
        from recon4d.outputs import write_text

        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= keep_until_step:
                    kept.append(line)
            except (ValueError, AttributeError):
                continue  # a line cut by a kill
        write_text(self.path, "".join(f"{line}\n" for line in kept), what="metrics log")

    @property
    def sinks(self) -> list[str]:
        return ["jsonl"] + (["tensorboard"] if self.tensorboard else []) + (["wandb"] if self.wandb else [])

    def log(self, row: dict) -> None:
        self.handle.write(json.dumps(row) + "\n")
        self.handle.flush()
        step = row["step"]
        scalars = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}
        scalars.update({f"lr/{k}": v for k, v in row.get("lr", {}).items()})
        if self.tensorboard is not None:
            for key, value in scalars.items():
                self.tensorboard.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        self.handle.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
