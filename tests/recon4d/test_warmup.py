"""recon4d.warmup compiles exactly what `recon4d process` and `recon4d qa` need: afterwards they compile nothing."""

from __future__ import annotations

import sys

import pytest

from recon4d import warmup
from recon4d.pipeline import ProcessConfig, process_video
from recon4d.qa_compiler import rule_kernels
from recon4d.qa_compiler.compiler import CompileConfig, compile_scene
from recon4d.synth.scene import SynthConfig, write_synthetic


def _compiled_signatures() -> dict[str, tuple]:
    """Every numba dispatcher recon4d has loaded -> the signatures it holds."""
    from numba.core.registry import CPUDispatcher

    found = {}
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("recon4d") or module is None:
            continue
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher):
                found[f"{module_name}.{name}"] = tuple(value.signatures)
    for name in rule_kernels.KERNELS:
        found[f"rule_kernels.{name}"] = tuple(rule_kernels.compiled(name).signatures)
    return found


@pytest.mark.slow
def test_process_and_qa_compile_nothing_after_warm_up(tmp_path):
    seconds = warmup.warm_up()
    assert set(seconds) == set(warmup.KERNELS)
    before = _compiled_signatures()
    assert before["recon4d.lift.kernels.lift_kernel"] and before["rule_kernels.render_texts"]  # it compiled
    paths = write_synthetic(tmp_path, SynthConfig(seed=1, n_frames=24, width=320, height=180, n_objects=3))
    result = process_video(paths.video, ProcessConfig(n_frames=16))
    assert [s.stage for s in result.stages] == ["decode", "track", "recon", "lift", "orient"]
    assert result.scene.n_objects >= 1
    compile_scene(result.scene, CompileConfig(n_per_scene=12))
    after = _compiled_signatures()
    new = {name: sigs for name, sigs in after.items() if sigs != before.get(name, ())}
    assert not new, f"compiled after the warm-up (add them to recon4d.warmup): {new}"


def test_warmup_main_reports_each_stage(capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(warmup, "KERNELS", {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")})
    warmup.main([])
    out = capsys.readouterr().out
    assert calls == ["a", "b"] and "[warmup] a:" in out and "[warmup] b:" in out and "cached in" in out
