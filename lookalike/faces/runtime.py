"""Inference models: export -> cache -> compile -> serve, each on the fastest runtime this machine has.

A model serves in torch (its own module) from the start. :meth:`InferenceModel.prepare` exports it to
ONNX once (cached as ``<cache_dir>/<name>-<digest>.onnx``), and, the first time on a machine, times the
runtimes that are installed on a warm-up input and keeps the fastest whose outputs match torch's. The
choice is cached beside the export (``<name>-<digest>.runtime.json``) under :func:`machine_key`, so a
later start only compiles the chosen runtime. What serves is one immutable :class:`Served`, replaced
whole: a call that began on the old one finishes on it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import platform
import threading
import time
import warnings
from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from lookalike.atomic import write_atomic
from lookalike.faces.compiled import CompiledNetwork, Session, onnxruntime_session, torch_session

log = logging.getLogger(__name__)

RUNTIMES = ("openvino", "onnxruntime", "torch")
"""The runtimes a model may run in, by their one name each."""

AUTO = "auto"
"""Choose the runtime by timing every installed one (the default)."""

def check_runtime(value: str) -> str:
    """``value`` when it names a runtime or ``"auto"``, else ValueError naming the choices."""
    if value == AUTO or value in RUNTIMES:
        return value
    raise ValueError(f"unknown runtime {value!r}: one of {AUTO!r}, " + ", ".join(repr(r) for r in RUNTIMES))


@dataclass(frozen=True)
class Served:
    """What a model serves with: the runtime's name and its session."""

    runtime: str
    run: Session


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s "model name", else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_key() -> str:
    """What a timed choice holds for: the CPU model and the runtimes' versions (not the thread count, so
    that the indexer's choice also serves the app, which runs fewer threads per call)."""
    versions = []
    for package in ("torch", "onnxruntime", "openvino"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} missing")
    return f"{cpu_model()}; {', '.join(versions)}"


def export_onnx(module: torch.nn.Module, example: torch.Tensor, input_name: str, output_names: Sequence[str],
                dynamic_axes: dict[str, dict[int, str]]) -> bytes:
    """``module`` as an ONNX model (opset 17, TorchScript exporter), traced on ``example``."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(copy.deepcopy(module).cpu().eval(), (example,), buffer,  # type: ignore[arg-type]
                          input_names=[input_name],
                          output_names=list(output_names), dynamic_axes=dynamic_axes, opset_version=17,
                          dynamo=False)
    return buffer.getvalue()


def weights_digest(*modules: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) of the modules' weights: names the cached exports of exactly these weights."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class InferenceModel(ABC):
    """One network served by the fastest runtime (or the one forced), switched to safely while serving.

    Subclasses name the model and describe its ONNX graph and a warm-up input. Call the model (or its
    :attr:`served` ``.run``) with a contiguous float32 array.
    """

    name: ClassVar[str]
    """Names its cached files; unique among models."""
    input_name: ClassVar[str] = "x"
    output_names: ClassVar[tuple[str, ...]]
    example_shape: ClassVar[tuple[int, ...]]
    """The export's example input."""
    dynamic_axes: ClassVar[dict[str, dict[int, str]]]
    warmup_shape: ClassVar[tuple[int, ...]]
    """A typical call's input: what the runtimes are timed on."""
    tolerance: ClassVar[float] = 1e-4
    """The largest difference from torch's outputs a runtime may give on the warm-up input."""
    static_shapes: ClassVar[int] = 0
    """Input shapes OpenVINO may compile a fixed-shape model for (:class:`lookalike.faces.compiled.CompiledNetwork`)."""
    timed_runs: ClassVar[int] = 3

    def __init__(self, module: torch.nn.Module, *, cache_dir: Path | None = None, runtime: str = AUTO,
                 device: str = "cpu", threads: int | None = None, digest: str | None = None):
        """``runtime``: ``"auto"`` or a runtime to force (off the CPU, torch is the only one).
        ``cache_dir``: where exports and choices are kept (``None``: in memory, timed on every prepare).
        ``threads``: the runtimes' threads (``None``: torch's thread count now). ``digest``: names these
        weights' files (``None``: a hash of the module's weights)."""
        self.module = module
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.wanted = check_runtime(runtime) if device == "cpu" else "torch"
        self.threads = threads or torch.get_num_threads()
        self._digest = digest
        self.served = Served("torch", torch_session(module, device))
        self._lock = threading.Lock()
        self._prepared = False

    def __call__(self, x: np.ndarray) -> Sequence[np.ndarray]:
        return self.served.run(np.ascontiguousarray(x, np.float32))

    @property
    def runtime(self) -> str:
        """The runtime serving now."""
        return self.served.runtime

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = weights_digest(self.module)
        return self._digest

    def cached_file(self, suffix: str) -> Path | None:
        """``<cache_dir>/<name>-<digest><suffix>``, or None without a cache folder."""
        return self.cache_dir / f"{self.name}-{self.digest}{suffix}" if self.cache_dir else None

    def needs_work(self) -> bool:
        """True when :meth:`prepare` would export or time (seconds), not only load what is cached."""
        if self.wanted == "torch":
            return False
        export = self.cached_file(".onnx")
        return export is None or not export.exists() or (self.wanted == AUTO and self.cached_choice() is None)

    def prepare(self) -> str:
        """Export, cache, compile and (first time on this machine) time, then serve the result; once per
        instance, thread-safe. A failure leaves the model in torch (only speed is lost). Returns the
        runtime serving."""
        with self._lock:
            if not self._prepared:
                self._prepared = True
                try:
                    self.served = self._build()
                except Exception as exc:  # noqa: BLE001 - any runtime's failure costs speed, not answers
                    log.warning("%s stays in torch (%s: %s)", self.name, type(exc).__name__, exc)
            return self.served.runtime

    def _build(self) -> Served:
        if self.wanted == "torch":
            return self.served
        model = self.exported()
        chosen = self.wanted if self.wanted != AUTO else self.cached_choice()
        if chosen is None:
            return self._measure(model)
        return self.served if chosen == "torch" else Served(chosen, self._session(chosen, model))

    def exported(self) -> bytes | Path:
        """The cached export, else a fresh one (cached when the folder takes it)."""
        path = self.cached_file(".onnx")
        if path is not None and path.exists():
            return path
        example = torch.zeros(self.example_shape)
        data = export_onnx(self.module, example, self.input_name, self.output_names, self.dynamic_axes)
        if path is not None:
            try:
                write_atomic(path, data)
            except OSError as exc:  # a read-only data folder: the export serves from memory
                log.debug("%s's export is not cached (%s)", self.name, exc.strerror or type(exc).__name__)
        return data

    def _session(self, runtime: str, model: bytes | Path) -> Session:
        if runtime == "openvino":
            return CompiledNetwork(model, threads=self.threads, static_shapes=self.static_shapes)
        if runtime == "onnxruntime":
            return onnxruntime_session(model, self.threads)
        raise ValueError(f"no ONNX session for {runtime!r}")

    def warmup_input(self) -> np.ndarray:
        return np.random.default_rng(0).uniform(-1, 1, self.warmup_shape).astype(np.float32)

    def _measure(self, model: bytes | Path) -> Served:
        """Time every runtime that loads and gives torch's outputs; serve and cache the fastest."""
        x = self.warmup_input()
        expected = self.served.run(x)
        candidates = {"torch": self.served.run}
        for runtime in RUNTIMES[:-1]:
            try:
                run = self._session(runtime, model)
                if not outputs_close(run(x), expected, self.tolerance):
                    raise ValueError(f"outputs differ from torch's by more than {self.tolerance}")
                candidates[runtime] = run
            except Exception as exc:  # noqa: BLE001 - not installed, or fails here: not a candidate
                log.info("%s: %s is not a candidate (%s: %s)", self.name, runtime, type(exc).__name__, exc)
        best_ms = {runtime: float("inf") for runtime in candidates}
        for _ in range(self.timed_runs):  # interleaved, so that a slow moment hits every runtime alike
            for runtime, run in candidates.items():
                start = time.perf_counter()
                run(x)
                best_ms[runtime] = min(best_ms[runtime], (time.perf_counter() - start) * 1000)
        chosen = min(best_ms, key=best_ms.__getitem__)
        log.info("%s runs in %s on %s (best of %d: %s)", self.name, chosen, cpu_model(), self.timed_runs,
                 ", ".join(f"{r} {ms:.1f} ms" for r, ms in best_ms.items()))
        self._store_choice(chosen, best_ms)
        return Served(chosen, candidates[chosen])

    def cached_choice(self) -> str | None:
        """The runtime timed fastest for these weights on this machine, or None when not yet timed."""
        entry = self._choices().get(machine_key(), {})
        runtime = entry.get("runtime") if isinstance(entry, dict) else None
        return runtime if runtime in RUNTIMES else None

    def _choices(self) -> dict[str, Any]:
        path = self.cached_file(".runtime.json")
        try:
            choices = json.loads(path.read_text()) if path is not None and path.exists() else {}
        except (OSError, ValueError):
            return {}
        return choices if isinstance(choices, dict) else {}

    def _store_choice(self, runtime: str, best_ms: dict[str, float]) -> None:
        path = self.cached_file(".runtime.json")
        if path is None:
            return
        choices = self._choices()
        choices[machine_key()] = {"runtime": runtime, "threads": self.threads,
                                  "best_ms": {r: round(ms, 3) for r, ms in best_ms.items()}}
        try:
            write_atomic(path, json.dumps(choices, indent=1, sort_keys=True).encode())
        except OSError as exc:
            log.debug("%s's runtime choice is not cached (%s)", self.name, exc.strerror or type(exc).__name__)


def outputs_close(ours: Sequence[np.ndarray], expected: Sequence[np.ndarray], tolerance: float) -> bool:
    """True when both have the same shapes and no value differs by more than ``tolerance``."""
    return len(ours) == len(expected) and all(
        np.shape(o) == np.shape(e) and float(np.max(np.abs(np.asarray(o) - e), initial=0.0)) <= tolerance
        for o, e in zip(ours, expected, strict=True))


def prepare_all(models: Sequence[InferenceModel], wait: bool, thread_name: str) -> None:
    """Prepare ``models`` now when ``wait`` or when nothing needs exporting or timing; else in one
    background thread (they serve in torch meanwhile, so an app answers before its exports exist)."""
    if wait or not any(model.needs_work() for model in models):
        for model in models:
            model.prepare()
        return

    def run() -> None:
        for model in models:
            model.prepare()

    threading.Thread(target=run, name=thread_name, daemon=True).start()
