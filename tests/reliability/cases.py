"""Bad inputs for every command, each with the outcome the exit-code rule (README "Exit codes")
gives it: 2 for a command line wrong in itself, 1 for a run that fails on its inputs or outputs.

A case names the finding class it covers (issue 15): ``usage`` (bad arguments), ``store``
(damaged stores), ``output`` (paths that cannot be written), ``llm`` (failing LLM servers),
``qa-file`` (bad question files), ``weights`` (broken weight files), ``boxes``/``video``/``view``/
``limits`` (inputs accepted silently before), ``backend`` (unknown backends and options,
refused before any stage), ``batch`` (manifests and batch folders), ``concurrency``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from tests.reliability.lab import Lab


@dataclass(frozen=True)
class Case:
    id: str
    klass: str
    args: Callable[[Lab], list[str]]
    code: int
    words: tuple[str, ...] = ()
    """Strings the error paragraph must contain ("a|b": either)."""
    setup: Callable[[Lab], None] | None = None
    changes: bool = False
    """The run may write outputs (a partial success); else the folder must be left byte-identical."""
    env: dict = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    """Optional modules the case needs (torch...)."""
    run_in: str = "process"
    """"process": in-process (CliRunner); "subprocess": its own interpreter (limits, locks)."""


def _damage_chunk(lab: Lab, chunk: str, how: str) -> None:
    path = lab.store() / chunk
    if how == "remove":
        path.unlink()
    elif how == "garbage":
        path.write_bytes(b"this is not a zstd frame")
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[:7])


def _edit_attrs(lab: Lab, **changes) -> None:
    meta_path = lab.store() / "zarr.json"
    meta = json.loads(meta_path.read_text())
    for key, value in changes.items():
        if value is _DELETE:
            meta["attributes"].pop(key, None)
        else:
            meta["attributes"][key] = value
    meta_path.write_text(json.dumps(meta))


_DELETE = object()


def _boxes(lab: Lab, box, **extra) -> str:
    entry = {"category": "person", "box": box, "frame": 0, **extra}
    return str(lab.write("boxes.json", json.dumps([entry])))


def _process(lab: Lab, *extra) -> list[str]:
    return ["process", str(lab.video()), "-o", str(lab.path("out.zarr")), "--frames", "4", *extra]


def _qa(lab: Lab, *extra) -> list[str]:
    return ["qa", str(lab.store()), "-o", str(lab.path("q.jsonl")), "-n", "2", *extra]


def _manifest(lab: Lab, text: str, name: str = "m.csv") -> str:
    return str(lab.write(name, text))


CASES: list[Case] = [
    # --- process: usage errors (2) -------------------------------------------------------------
    Case("process-frames-1", "usage", lambda lab: _process(lab, "--frames", "1"), 2, ("--frames",)),
    Case("process-frames-text", "usage", lambda lab: _process(lab, "--frames", "many"), 2, ("--frames",)),
    Case("process-fps-zero", "usage", lambda lab: _process(lab, "--fps", "0"), 2, ("--fps",)),
    Case("process-fps-nan", "usage", lambda lab: _process(lab, "--fps", "nan"), 2, ("--fps",)),
    Case("process-start-negative", "usage", lambda lab: _process(lab, "--start", "-1"), 2, ("--start",)),
    Case("process-end-before-start", "usage", lambda lab: _process(lab, "--start", "0.5", "--end", "0.2"), 2,
         ("--end",)),
    Case("process-device", "usage", lambda lab: _process(lab, "--device", "tpu"), 2, ("--device",)),
    Case("process-unknown-option", "usage", lambda lab: _process(lab, "--fast"), 2, ("--fast",)),
    Case("process-no-video", "usage", lambda lab: ["process"], 2, ("VIDEO",)),
    Case("process-O-malformed", "usage", lambda lab: _process(lab, "-O", "recon"), 2, ("STAGE.KEY=VALUE",)),
    Case("process-O-unknown-stage", "usage", lambda lab: _process(lab, "-O", "paint.x=1"), 2, ("paint",)),
    # --- process: backends and options, refused before any stage -------------------------------
    Case("process-recon-unknown", "backend", lambda lab: _process(lab, "--recon", "nerf"), 2, ("nerf", "classic")),
    Case("process-tracker-unknown", "backend", lambda lab: _process(lab, "--tracker", "yolo"), 2, ("yolo",)),
    Case("process-orient-unknown", "backend", lambda lab: _process(lab, "--orient", "compass"), 2, ("compass",)),
    Case("process-O-unknown-key", "backend", lambda lab: _process(lab, "-O", "recon.speed=3"), 2, ("speed",)),
    Case("process-O-wrong-type", "backend", lambda lab: _process(lab, "-O", "recon.focal_px=wide"), 2,
         ("recon.focal_px",)),
    Case("process-O-lift-unknown", "backend", lambda lab: _process(lab, "-O", "lift.speed=1"), 2, ("lift.speed",)),
    Case("process-O-bool-word", "backend", lambda lab: _process(lab, "-O", "recon.bundle_adjust=maybe"), 2,
         ("bundle_adjust",)),
    Case("process-objects-classic", "backend", lambda lab: _process(lab, "--tracker", "classic", "--objects", "dog."),
         2, ("--objects",)),
    Case("process-pi3-no-weights", "backend", lambda lab: _process(lab, "--recon", "pi3"), 1,
         ("needs weights", "--recon classic")),
    # --- process: the video --------------------------------------------------------------------
    Case("process-video-missing", "video", lambda lab: ["process", str(lab.path("none.mp4")), "-o",
                                                        str(lab.path("o.zarr"))], 1, ("none.mp4", "does not exist")),
    Case("process-video-folder", "video", lambda lab: ["process", str(lab.folder), "-o", str(lab.path("o.zarr"))],
         1, ("directory",)),
    Case("process-video-empty", "video", lambda lab: ["process", str(lab.write("e.mp4", b"")), "-o",
                                                      str(lab.path("o.zarr"))], 1, ("e.mp4", "empty")),
    Case("process-video-garbage", "video", lambda lab: ["process", str(lab.write("g.mp4", b"\x00junk" * 99)), "-o",
                                                        str(lab.path("o.zarr"))], 1, ("g.mp4",)),
    Case("process-video-truncated", "video",
         lambda lab: ["process", str(lab.write("t.mp4", lab.originals.video.read_bytes()[:3000])), "-o",
                      str(lab.path("o.zarr"))], 1, ("t.mp4",)),
    Case("process-start-after-end", "video", lambda lab: _process(lab, "--start", "99"), 1,
         ("starts after the video ends",)),
    Case("process-frames-beyond-memory", "limits", lambda lab: _process(lab, "--frames", "2000000"), 2,
         ("--frames",)),
    # --- process: user boxes -------------------------------------------------------------------
    Case("boxes-missing-file", "boxes", lambda lab: _process(lab, "--boxes", str(lab.path("nope.json"))), 1,
         ("nope.json", "does not exist")),
    Case("boxes-not-json", "boxes", lambda lab: _process(lab, "--boxes", str(lab.write("b.json", "{oops"))), 1,
         ("b.json", "not valid JSON")),
    Case("boxes-outside-frame", "boxes", lambda lab: _process(lab, "--boxes", _boxes(lab, [400, 300, 500, 380])), 1,
         ("outside", "160x96")),
    Case("boxes-huge", "boxes", lambda lab: _process(lab, "--boxes", _boxes(lab, [0, 0, 1e308, 50])), 1,
         ("outside", "160x96")),
    Case("boxes-negative-only", "boxes", lambda lab: _process(lab, "--boxes", _boxes(lab, [-90, -60, -10, -5])), 1,
         ("outside",)),
    Case("boxes-frame-beyond-clip", "boxes",
         lambda lab: _process(lab, "--boxes", _boxes(lab, [10, 10, 60, 80], frame=50)), 1, ("frame 50",)),
    # --- process: the output path --------------------------------------------------------------
    Case("process-out-exists", "output", lambda lab: _process(lab), 1, ("out.zarr", "--overwrite"),
         setup=lambda lab: lab.store("out.zarr")),
    Case("process-out-is-file-overwrite", "output", lambda lab: _process(lab, "--overwrite"), 1,
         ("out.zarr", "is a file"), setup=lambda lab: lab.write("out.zarr", "my notes")),
    Case("process-out-foreign-folder-overwrite", "output", lambda lab: _process(lab, "--overwrite"), 1,
         ("out.zarr", "not a scene store written by recon4d"),
         setup=lambda lab: lab.write("out.zarr/thesis.tex", "precious")),
    Case("process-out-parent-is-file", "output",
         lambda lab: ["process", str(lab.video()), "-o", str(lab.path("f/out.zarr"))], 1, ("is a file",),
         setup=lambda lab: lab.write("f", "x")),
    Case("process-out-read-only", "output",
         lambda lab: ["process", str(lab.video()), "-o", str(lab.path("ro/out.zarr")), "--frames", "4"], 1,
         ("ro/out.zarr", "not writable|not permitted|permission denied|read-only"),
         setup=lambda lab: lab.read_only(lab.path("ro")), run_in="subprocess"),
    Case("qa-out-read-only", "output", lambda lab: ["qa", str(lab.store()), "-o", str(lab.path("ro/q.jsonl"))], 1,
         ("ro/q.jsonl", "not writable|not permitted|permission denied|read-only"),
         setup=lambda lab: lab.read_only(lab.path("ro")), run_in="subprocess"),
    Case("process-out-file-size-limit", "output", lambda lab: _process(lab), 1, ("file-size limit",),
         env={"RECON4D_TEST_FSIZE": "600"}, run_in="subprocess"),
    Case("process-out-locked", "concurrency", lambda lab: _process(lab), 1, ("being written by another recon4d run",),
         setup=lambda lab: lab.hold_lock(lab.path("out.zarr")), run_in="subprocess"),
    # --- synth -----------------------------------------------------------------------------------
    Case("synth-size-word", "usage", lambda lab: ["synth", "-o", str(lab.path("s")), "--size", "big"], 2,
         ("WIDTHxHEIGHT",)),
    Case("synth-size-odd", "usage", lambda lab: ["synth", "-o", str(lab.path("s")), "--size", "161x96"], 2,
         ("even",)),
    Case("synth-frames-zero", "usage", lambda lab: ["synth", "-o", str(lab.path("s")), "--frames", "0"], 2,
         ("--frames",)),
    Case("synth-fps-negative", "usage", lambda lab: ["synth", "-o", str(lab.path("s")), "--fps", "-3"], 2,
         ("--fps",)),
    Case("synth-objects-many", "usage", lambda lab: ["synth", "-o", str(lab.path("s")), "--objects", "99"], 2,
         ("objects",)),
    Case("synth-out-exists", "output", lambda lab: ["synth", "-o", str(lab.folder / "s"), "--frames", "4", "--size",
                                                    "64x48"], 1, ("--overwrite",),
         setup=lambda lab: lab.store("s/scene.zarr")),
    Case("synth-out-is-file", "output", lambda lab: ["synth", "-o", str(lab.path("s")), "--frames", "4"], 1,
         ("is a file",), setup=lambda lab: lab.write("s", "x")),
    # --- inspect: damaged stores -----------------------------------------------------------------
    Case("inspect-missing", "store", lambda lab: ["inspect", str(lab.path("nope.zarr"))], 1, ("nope.zarr",)),
    Case("inspect-plain-folder", "store", lambda lab: ["inspect", str(lab.path("d"))], 1,
         ("is not a recon4d scene store",), setup=lambda lab: lab.write("d/x.txt", "x")),
    Case("inspect-missing-chunk", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("chunk camera/cam_to_world/c/0/0/0 is missing",),
         setup=lambda lab: _damage_chunk(lab, "camera/cam_to_world/c/0/0/0", "remove")),
    Case("inspect-missing-heavy-chunk", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("geometry/local_points/c/3/0/0/0 is missing",),
         setup=lambda lab: _damage_chunk(lab, "geometry/local_points/c/3/0/0/0", "remove")),
    Case("inspect-garbage-chunk", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("objects/center_world cannot be decoded",),
         setup=lambda lab: _damage_chunk(lab, "objects/center_world/c/0/0/0", "garbage")),
    Case("inspect-truncated-chunk", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("time/timestamps cannot be decoded",),
         setup=lambda lab: _damage_chunk(lab, "time/timestamps/c/0", "truncate")),
    Case("inspect-bad-zarr-json", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("cannot be opened as a Zarr v3 group",), setup=lambda lab: lab.write("scene.zarr/zarr.json", "{oops")),
    Case("inspect-bad-array-json", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("objects/visible",), setup=lambda lab: (lab.store(), lab.write("scene.zarr/objects/visible/zarr.json", "[]"))),
    Case("inspect-source-wrong-type", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("attribute 'source'",), setup=lambda lab: _edit_attrs(lab, source="clip.mp4")),
    Case("inspect-config-wrong-type", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("attribute 'config'",), setup=lambda lab: _edit_attrs(lab, config=[1, 2])),
    Case("inspect-source-missing-key", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("attributes are malformed",),
         setup=lambda lab: _edit_attrs(lab, source={"path": "x.mp4"})),
    Case("inspect-format-missing", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("not a recon4d scene store",), setup=lambda lab: _edit_attrs(lab, format=_DELETE)),
    Case("inspect-version-future", "store", lambda lab: ["inspect", str(lab.store())], 1,
         ("store version 7", "newer"), setup=lambda lab: _edit_attrs(lab, version=7)),
    Case("inspect-verify-changed", "store", lambda lab: ["inspect", str(lab.store()), "--verify"], 1,
         ("is damaged", "objects/orient_conf"), setup=lambda lab: lab.rewrite_array(lab.store(), "objects/orient_conf")),
    # --- qa compile ------------------------------------------------------------------------------
    Case("qa-n-negative", "usage", lambda lab: _qa(lab) + ["-n", "-1"], 2, ("-n",)),
    Case("qa-n-huge", "limits", lambda lab: _qa(lab) + ["-n", "1000000"], 2, ("-n", "10000")),
    Case("qa-types-unknown", "usage", lambda lab: _qa(lab, "--types", "abs_nope"), 2, ("abs_nope",)),
    Case("qa-format-unknown-suffix", "usage", lambda lab: ["qa", str(lab.store()), "-o", str(lab.path("q.txt"))], 2,
         ("--format",)),
    Case("qa-llm-url-ftp", "llm", lambda lab: _qa(lab, "--llm-url", "ftp://example.org/v1"), 2, ("--llm-url",)),
    Case("qa-scene-missing", "store", lambda lab: ["qa", str(lab.path("none.zarr")), "-o", str(lab.path("q.jsonl"))],
         1, ("none.zarr",)),
    Case("qa-scene-damaged", "store", lambda lab: _qa(lab), 1, ("chunk objects/visible/c/0/0 is missing",),
         setup=lambda lab: _damage_chunk(lab, "objects/visible/c/0/0", "remove")),
    Case("qa-out-is-folder", "output", lambda lab: ["qa", str(lab.store()), "-o", str(lab.path("dir.jsonl"))], 1,
         ("is a folder",), setup=lambda lab: lab.write("dir.jsonl/keep", "x")),
    Case("qa-out-parent-is-file", "output", lambda lab: ["qa", str(lab.store()), "-o", str(lab.path("f/q.jsonl"))],
         1, ("is a file",), setup=lambda lab: lab.write("f", "x")),
    Case("qa-out-disk-full", "output", lambda lab: _qa(lab), 1, ("the disk is full",),
         env={"RECON4D_TEST_ENOSPC": "q.jsonl"}, run_in="subprocess"),
    # --- qa audit / explain ------------------------------------------------------------------------
    Case("audit-missing", "qa-file", lambda lab: ["qa", "audit", str(lab.path("none.jsonl"))], 1, ("none.jsonl",)),
    Case("audit-empty", "qa-file", lambda lab: ["qa", "audit", str(lab.write("e.jsonl", ""))], 1,
         ("e.jsonl", "at least one question")),
    Case("audit-not-json", "qa-file", lambda lab: ["qa", "audit", str(lab.write("b.jsonl", "{nope\n"))], 1,
         ("b.jsonl",)),
    Case("audit-wrong-shape", "qa-file", lambda lab: ["qa", "audit", str(lab.write("n.json", "[1, 2, 3]"))], 1,
         ("n.json",)),
    Case("audit-dsr-missing-letter", "qa-file",
         lambda lab: ["qa", "audit", str(lab.write("d.json", json.dumps({"v": [{"Question": "q", "A": "a"}]})))], 1,
         ("d.json",)),
    Case("audit-folder", "qa-file", lambda lab: ["qa", "audit", str(lab.folder)], 1, ("is a folder",)),
    Case("audit-binary", "qa-file", lambda lab: ["qa", "audit", str(lab.write("x.parquet", b"\x00\x01garbage"))], 1,
         ("x.parquet",)),
    Case("audit-unknown-suffix", "qa-file", lambda lab: ["qa", "audit", str(lab.write("q.csv", "a,b\n"))], 1,
         ("q.csv",)),
    Case("explain-id-out-of-range", "qa-file",
         lambda lab: ["qa", "explain", str(lab.qa()), "--id", "999", "-o", str(lab.path("e.png"))], 1, ("--id 999",)),
    Case("explain-not-jsonl", "qa-file",
         lambda lab: ["qa", "explain", str(lab.write("x.jsonl", "[]\n")), "--id", "0", "-o", str(lab.path("e.png"))],
         1, ("x.jsonl",)),
    Case("explain-missing", "qa-file",
         lambda lab: ["qa", "explain", str(lab.path("none.jsonl")), "--id", "0", "-o", str(lab.path("e.png"))], 1,
         ("none.jsonl",)),
    # --- plot / view / report ------------------------------------------------------------------
    Case("plot-missing-store", "store", lambda lab: ["plot", str(lab.path("none.zarr")), "-o", str(lab.path("p.png"))],
         1, ("none.zarr",)),
    Case("plot-pair-malformed", "usage", lambda lab: ["plot", str(lab.store()), "-o", str(lab.path("p.png")),
                                                      "--pair", "1"], 2, ("A,B",)),
    Case("plot-observer-unknown", "usage", lambda lab: ["plot", str(lab.store()), "-o", str(lab.path("p.png")),
                                                        "--observer", "999"], 1, ("999",)),
    Case("plot-out-is-folder", "output", lambda lab: ["plot", str(lab.store()), "-o", str(lab.path("p.png"))], 1,
         ("is a folder",), setup=lambda lab: lab.write("p.png/x", "x")),
    Case("view-frame-out-of-range", "view", lambda lab: ["view", str(lab.store()), "--frame", "999", "--screenshot",
                                                         str(lab.path("v.png"))], 1, ("frame 999",)),
    Case("view-nan-poses", "view", lambda lab: ["view", str(lab.store()), "--screenshot", str(lab.path("v.png"))], 1,
         ("camera poses", "not finite"), setup=lambda lab: lab.poison_poses(lab.store())),
    Case("report-out-is-folder", "output", lambda lab: ["report", str(lab.store()), "-o", str(lab.path("r.html")),
                                                        "--no-renders"], 1, ("is a folder",),
         setup=lambda lab: lab.write("r.html/x", "x")),
    Case("report-bad-qa", "qa-file", lambda lab: ["report", str(lab.store()), "-o", str(lab.path("r.html")),
                                                  "--no-renders", "--qa", str(lab.write("b.jsonl", "nope\n"))], 1,
         ("b.jsonl",)),
    # --- curate ----------------------------------------------------------------------------------
    Case("curate-no-videos", "usage", lambda lab: ["curate", "-o", str(lab.path("k.txt"))], 2, ("VIDEOS",)),
    Case("curate-negative-threshold", "usage",
         lambda lab: ["curate", str(lab.video()), "-o", str(lab.path("k.txt")), "--min-camera-motion", "-1"], 2,
         ("--min-camera-motion",)),
    Case("curate-out-is-folder", "output",
         lambda lab: ["curate", str(lab.video()), "-o", str(lab.path("k.txt"))], 1, ("is a folder",),
         setup=lambda lab: lab.write("k.txt/x", "x")),
    # --- weights ---------------------------------------------------------------------------------
    Case("weights-import-unknown-name", "usage", lambda lab: ["weights", "import", "dino3", str(lab.video()),
                                                              "--weights-dir", str(lab.path("w"))], 2, ("dino3",)),
    Case("weights-import-missing-path", "weights", lambda lab: ["weights", "import", "pi3", str(lab.path("none")),
                                                                "--weights-dir", str(lab.path("w"))], 1, ("none",)),
    Case("weights-import-garbage", "weights",
         lambda lab: ["weights", "import", "pi3", str(lab.write("model.safetensors", b"\x00" * 64)),
                      "--weights-dir", str(lab.path("w"))], 1, ("model.safetensors", "safetensors"), needs=("torch",)),
    Case("weights-verify-garbage", "weights", lambda lab: ["weights", "verify", "pi3", "--weights-dir",
                                                           str(lab.path("w"))], 1, ("pi3", "load check"),
         setup=lambda lab: lab.write("w/pi3/model.safetensors", b"junk"), needs=("torch",)),
    Case("weights-download-unknown-name", "usage", lambda lab: ["weights", "download", "dino3", "--weights-dir",
                                                                str(lab.path("w"))], 2, ("dino3",)),
    # --- batch -----------------------------------------------------------------------------------
    Case("batch-manifest-missing", "batch", lambda lab: ["batch", str(lab.path("m.csv")), "-o", str(lab.path("out"))],
         1, ("m.csv", "does not exist")),
    Case("batch-manifest-no-video-column", "batch",
         lambda lab: ["batch", _manifest(lab, "path\nx.mp4\n"), "-o", str(lab.path("out"))], 1, ("'video' column",)),
    Case("batch-manifest-bad-number", "batch",
         lambda lab: ["batch", _manifest(lab, "video,start\nx.mp4,soon\n"), "-o", str(lab.path("out"))], 1,
         ("line 2", "start")),
    Case("batch-manifest-duplicate-id", "batch",
         lambda lab: ["batch", _manifest(lab, "video,id\na.mp4,x\nb.mp4,x\n"), "-o", str(lab.path("out"))], 1,
         ("line 3", "already used")),
    Case("batch-manifest-bad-jsonl", "batch",
         lambda lab: ["batch", _manifest(lab, '{"video": 1\n', "m.jsonl"), "-o", str(lab.path("out"))], 1,
         ("m.jsonl", "line 1")),
    Case("batch-address-without-ray", "usage",
         lambda lab: ["batch", _manifest(lab, "video\nx.mp4\n"), "-o", str(lab.path("out")), "--address", "h:1"], 2,
         ("--address",)),
    Case("batch-workers-zero", "usage",
         lambda lab: ["batch", _manifest(lab, "video\nx.mp4\n"), "-o", str(lab.path("out")), "--workers", "0"], 2,
         ("--workers",)),
    Case("batch-out-is-file", "batch",
         lambda lab: ["batch", _manifest(lab, "video\nx.mp4\n"), "-o", str(lab.write("out", "x"))], 1, ("is a file",)),
    Case("batch-out-foreign", "batch",
         lambda lab: ["batch", _manifest(lab, "video\nx.mp4\n"), "-o", str(lab.path("out"))], 1,
         ("not a batch output folder",), setup=lambda lab: lab.write("out/mine.txt", "x")),
    Case("batch-recon-unknown", "backend",
         lambda lab: ["batch", _manifest(lab, "video\nx.mp4\n"), "-o", str(lab.path("out")), "--recon", "nerf"], 2,
         ("nerf",)),
    # --- a missing video inside a batch: a partial success, the rest still processed -------------
    Case("batch-video-missing", "batch",
         lambda lab: ["batch", _manifest(lab, f"video,id\n{lab.video()},good\nnone.mp4,bad\n"), "-o",
                      str(lab.path("out")), "--frames", "4"], 1, ("bad", "does not exist"), changes=True),
]
