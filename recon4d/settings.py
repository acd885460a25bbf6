"""The one module that reads the environment (STYLE §5).

RECON4D_HOME   root of recon4d's local files (default ~/.cache/recon4d); weights live in
               $RECON4D_HOME/weights.
HF_ENDPOINT    the Hugging Face Hub `recon4d weights download` fetches from (default
               https://huggingface.co; tests point it at a local server).
OPENAI_API_KEY default variable holding the key of an OpenAI-compatible LLM server
               (`recon4d qa --llm-url`); another variable can be named with --llm-key-env.
"""

from __future__ import annotations

import os
from pathlib import Path


def recon4d_home() -> Path:
    return Path(os.environ.get("RECON4D_HOME") or Path.home() / ".cache" / "recon4d")


def weights_dir() -> Path:
    return recon4d_home() / "weights"


def hub_endpoint() -> str:
    """Base URL of the Hugging Face Hub for `recon4d weights download`."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def quiet_library_progress() -> None:
    """Silence the progress bars third-party libraries print themselves (tqdm in sam2,
    transformers' weight loading), so the CLI's own stage bars are the only ones shown."""
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def malloc_arenas_set() -> bool:
    """Whether the user chose glibc's malloc arena count (``MALLOC_ARENA_MAX``), which
    :func:`recon4d.workers.share_malloc_arena` then leaves alone."""
    return "MALLOC_ARENA_MAX" in os.environ


def blas_threads_set() -> bool:
    """Whether the user chose OpenBLAS's thread count (``OPENBLAS_NUM_THREADS``), which
    :func:`recon4d.workers.one_blas_thread` then leaves alone."""
    return "OPENBLAS_NUM_THREADS" in os.environ


def environ() -> dict[str, str]:
    """A copy of the environment, for configs that take secrets from a mapping."""
    return dict(os.environ)


def single_process_launch() -> None:
    """Give torch.distributed a one-process world when no launcher set one (``recon4d train`` with a
    DeepSpeed config run directly, not under ``accelerate launch``): rank 0 of 1 on a free local port."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})


def launch_rank() -> int:
    """This process's rank under a launcher (``accelerate launch``, torchrun, DeepSpeed): RANK, 0 when alone."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0
