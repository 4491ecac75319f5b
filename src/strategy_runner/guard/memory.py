"""How much memory the run may use, and how much the worker uses right now.

Limit discovery, first hit wins:

1. ``MEMORY_LIMIT_MB`` (settings.memory_limit_mb);
2. cgroup v2 ``memory.max`` of this process's cgroup or an ancestor ("max" = unlimited);
3. cgroup v1 ``memory.limit_in_bytes`` likewise (a value near 2**63 = unlimited);
4. ECS task metadata v4 ``/task`` ``Limits.Memory`` (MiB): on Fargate the container's
   cgroup may be unlimited while the task has the limit;
5. the machine's physical memory.

A cgroup value at or above physical memory is no limit at all. Filesystem roots and the
metadata reader are parameters so tests can point them at fake trees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

MB = 1024 * 1024


@dataclass(frozen=True)
class MemoryLimit:
    mb: int
    source: str  # where the number came from, for the log and the error message

    def soft_mb(self, pct: float) -> float:
        return self.mb * pct / 100.0


def _cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """(cgroup v2 path, cgroup v1 memory path) of this process, from /proc/self/cgroup."""
    v2 = v1 = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def _candidates(base: Path, path: str | None) -> list[Path]:
    """The process's cgroup dir and its ancestors under ``base``, then ``base`` itself.

    Inside a container the mount root is often the container's own cgroup while
    /proc/self/cgroup still names the host path: hence the fall back to ``base``.
    """
    dirs: list[Path] = []
    if path and path != "/":
        rel = Path(path.lstrip("/"))
        dirs += [base / rel, *(base / p for p in rel.parents if str(p) != ".")]
    dirs.append(base)
    return dirs


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_limit(base: Path, path: str | None, filename: str, physical: int) -> tuple[int, Path] | None:
    """The smallest real limit on the process's cgroup chain (bytes, file), or None."""
    found: list[tuple[int, Path]] = []
    for directory in _candidates(base, path):
        raw = _read(directory / filename)
        if raw is None or raw == "max":
            continue
        try:
            value = int(raw)
        except ValueError:
            continue
        if 0 < value < physical:  # v1 "unlimited" is 2**63 rounded down to a page
            found.append((value, directory / filename))
    return min(found) if found else None


def _any_exists(base: Path, path: str | None, filename: str) -> bool:
    return any((d / filename).exists() for d in _candidates(base, path))


def discover_limit(
    override_mb: int | None,
    *,
    cgroup_root: Path = Path("/sys/fs/cgroup"),
    proc_cgroup: Path = Path("/proc/self/cgroup"),
    ecs_task: Callable[[], dict[str, Any]] = dict,
    physical_bytes: int | None = None,
) -> MemoryLimit:
    """The memory limit of this run and where it came from (see the module docstring)."""
    if override_mb:
        return MemoryLimit(int(override_mb), "MEMORY_LIMIT_MB")
    physical = physical_bytes if physical_bytes is not None else psutil.virtual_memory().total
    v2_path, v1_path = _cgroup_paths(proc_cgroup)
    unlimited: list[str] = []
    # Pure v2 mounts memory.max at the root; a hybrid system has no memory controller in v2.
    for base in (cgroup_root, cgroup_root / "unified"):
        hit = _cgroup_limit(base, v2_path, "memory.max", physical)
        if hit:
            return MemoryLimit(hit[0] // MB, f"cgroup v2 {hit[1]}")
        if _any_exists(base, v2_path, "memory.max"):
            unlimited.append("cgroup v2 memory.max")
    hit = _cgroup_limit(cgroup_root / "memory", v1_path, "memory.limit_in_bytes", physical)
    if hit:
        return MemoryLimit(hit[0] // MB, f"cgroup v1 {hit[1]}")
    if _any_exists(cgroup_root / "memory", v1_path, "memory.limit_in_bytes"):
        unlimited.append("cgroup v1 memory.limit_in_bytes")
    limits = (ecs_task() or {}).get("Limits") or {}
    try:
        ecs_mb = int(float(limits.get("Memory") or 0))
    except (TypeError, ValueError):
        ecs_mb = 0
    if ecs_mb > 0:
        return MemoryLimit(ecs_mb, "ECS task metadata Limits.Memory")
    note = f" ({', '.join(unlimited)}: unlimited)" if unlimited else ""
    return MemoryLimit(physical // MB, f"physical memory{note}")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children, in MiB (0 once it is gone)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # exited between the listing and the read
            continue
    return total / MB


class MemoryWatch:
    """Samples the supervisor and every process under it (what the task's limit counts).

    ``over()`` says when the sum passed the soft limit; ``peak_mb`` goes on the status item.
    """

    def __init__(self, limit: MemoryLimit, soft_pct: float, root_pid: int):
        self.limit = limit
        self.soft_pct = soft_pct
        self.soft_mb = limit.soft_mb(soft_pct)
        self.root_pid = root_pid
        self.peak_mb = 0.0
        self.last_mb = 0.0

    def sample(self) -> float:
        self.last_mb = tree_rss_mb(self.root_pid)
        self.peak_mb = max(self.peak_mb, self.last_mb)
        return self.last_mb

    def over(self) -> bool:
        return self.last_mb > self.soft_mb

    def describe_limit(self) -> str:
        return f"limit {self.limit.mb} MiB ({self.limit.source}), soft limit {self.soft_pct:g}% = {self.soft_mb:.0f} MiB"
