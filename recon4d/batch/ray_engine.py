"""The ``ray`` batch engine: worker actors on a Ray cluster (or a local one started for the run).

Each actor holds one :class:`~recon4d.batch.worker.VideoWorker` (models load once per actor)
and asks Ray for one CPU and, when learned backends run on CUDA, ``gpus_per_task`` GPUs.
Actors restart when their process dies (``max_restarts=-1``) but a call is never retried by
Ray itself (``max_task_retries=0``): the driver sees the ``RayActorError``, records the attempt
as failed (the worker died) and the scheduler decides whether to retry, so an entry is never
processed twice behind the batch's back.

Without ``--address`` the command starts a private local Ray instance with ``workers`` CPUs and
shuts it down at the end. With ``--address`` it joins an existing cluster; then the batch folder
and the videos must be on a file system every node sees, and recon4d must be installed on every
node (the workers import it).
"""

from __future__ import annotations

from pathlib import Path

from recon4d.batch.state import BatchError
from recon4d.batch.worker import VideoWorker
from recon4d.optional import require


class RayEngine:
    """Run jobs on ``workers`` Ray actors (``address`` None: a local Ray started for the run)."""

    name = "ray"

    def __init__(self, workers: int | None, address: str | None = None, gpus_per_task: float = 0.0,
                 threads: int = 1):
        self.workers = workers
        self.address = address
        self.gpus_per_task = float(gpus_per_task)
        self.threads = threads

    def _init(self, ray) -> bool:
        """Connect to (or start) Ray; True when this call started it (and must shut it down)."""
        if ray.is_initialized():
            return False
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.workers, num_gpus=None, **kwargs)
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError from ray.init
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            raise BatchError(f"could not start or reach {where} ({type(exc).__name__}: {exc}); check the --address "
                             "(e.g. ray://head:10001 or head:6379) and that the cluster is running, or run with "
                             "--engine local.") from None
        return True

    def run(self, scheduler, settings, outdir) -> None:
        ray = require("ray", extra="ray", purpose="recon4d batch --engine ray")
        started = self._init(ray)
        try:
            self._run(ray, scheduler, settings, outdir)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, scheduler, settings, outdir) -> None:
        resources = ray.cluster_resources()
        workers = self.workers = self.workers or max(1, int(resources.get("CPU", 1)))
        if self.gpus_per_task > 0 and resources.get("GPU", 0) < self.gpus_per_task:
            raise BatchError(f"each task asks for {self.gpus_per_task:g} GPU(s) but the Ray cluster has "
                             f"{resources.get('GPU', 0):g}; lower --gpus-per-task (0 runs on CPUs) or add GPU nodes.")
        actor_class = ray.remote(num_cpus=1, num_gpus=self.gpus_per_task, max_restarts=-1,
                                 max_task_retries=0)(VideoWorker)
        actors = [actor_class.options(name=None).remote(settings, str(Path(outdir).resolve()), self.threads)
                  for _ in range(workers)]
        idle = list(actors)
        running = {}  # object ref -> (actor, job)
        errors = (ray.exceptions.RayError,)  # actor died, worker crashed, or a task error outside process()
        while True:
            while idle:
                job = scheduler.next_job()
                if job is None:
                    break
                actor = idle.pop()
                running[actor.process.remote(job)] = (actor, job)
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                actor, job = running.pop(ref)
                try:
                    state = ray.get(ref)
                except errors as exc:
                    scheduler.died(job, None, _actor_death(exc))
                    if not _revived(ray, actor, errors):
                        continue  # the actor stays dead: the others carry on
                else:
                    scheduler.finished(job, state)
                idle.append(actor)
            if not idle and not running and scheduler.queue:
                raise BatchError("every Ray worker died and none came back within a minute; see the Ray logs "
                                 "(/tmp/ray/session_latest/logs) and the state records, then run again with --resume.")
        for actor in actors:
            ray.kill(actor, no_restart=True)


def _revived(ray, actor, errors, attempts: int = 60) -> bool:
    """Wait until a worker actor that died is running again (Ray restarts it).

    A call sent right after the death can still go to the dead process, before Ray has noticed,
    and fail the same way: the next video given to it would be charged an attempt for nothing.
    """
    import time

    for _ in range(attempts):
        try:
            ray.get(actor.pid.remote(), timeout=30)
            return True
        except errors:
            time.sleep(1.0)
    return False


def _actor_death(exc) -> str:
    text = " ".join(str(exc).split())
    return f"Ray worker died: {type(exc).__name__}: {text[:300]}"
