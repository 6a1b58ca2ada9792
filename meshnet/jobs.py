"""Training that survives: node outages, checkpoints and recovery of training jobs.

The fluid engine (:mod:`meshnet.engine`) keeps the flows and the step-by-step job state; this
module holds what a job remembers across interruptions (:class:`Resilience`: the last
checkpoint, the work done, the interruptions) and the node outages that interrupt it
(:class:`NodeOutages`), so the rules of recovery read in one place (docs/faults.md, "Training
that survives"):

- A job is interrupted at the first instant one of its nodes is down (a failed satellite or
  an accelerator restart). Its flows in flight are cancelled.
- ``restart``: roll back to the last checkpoint (the steps since are lost), wait until every
  node of the job is up, then pay ``restart_s``.
- ``spare``: a spare node that is up takes the failed node's rank (same ring position), the
  job rolls back to the last checkpoint and resumes after ``restart_s``; with no spare up it
  falls back to ``restart``.
- ``elastic``: the down nodes leave the job (the ring re-forms, per-step bytes follow the
  smaller ring), only the current step is lost, it resumes after ``restart_s``; below
  ``min_nodes`` it falls back to ``restart``. Nodes that come back do not rejoin.
- A node going down while the job recovers starts the recovery again from that instant (as
  in Daly's model, a failure during restart restarts it).
- Checkpoints: after the step that ends ``checkpoint_interval_s`` or more after the last
  checkpoint (or the resume), each rank sends ``checkpoint_bytes / n`` to the next rank of
  the ring (``neighbour``) or to its nearest ground station by path delay at that instant
  (``ground``) as real flows; the job pauses until all are delivered (no overlap).

Examples
--------
>>> import numpy as np
>>> out = NodeOutages(np.array([3, 3]), np.array([10.0, 25.0]), np.array([25.0, 40.0]))
>>> out.ready_s(np.array([1, 3]), 12.0)  # back-to-back outages of node 3 chain
40.0
>>> out.next_start(np.array([1, 3]), 10.0)
25.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Bytes of model state per parameter when ``checkpoint_bytes`` is unset (see
#: :data:`meshnet.traffic.config.CHECKPOINT_BYTES_PER_PARAM`).
CHECKPOINT_BYTES_PER_PARAM = 14.0


class NodeOutages:
    """Intervals ``[start_s, end_s)`` during which a network node cannot compute."""

    def __init__(self, node, start_s, end_s):
        node = np.asarray(node, dtype=np.int64)
        start = np.asarray(start_s, dtype=np.float64)
        end = np.asarray(end_s, dtype=np.float64)
        order = np.lexsort((node, start))
        self.node, self.start_s, self.end_s = node[order], start[order], end[order]

    def __len__(self) -> int:
        return int(self.node.shape[0])

    def next_start(self, nodes, after_s: float) -> float:
        """Earliest outage start strictly after ``after_s`` among ``nodes`` (inf: none)."""
        hit = np.isin(self.node, nodes) & (self.start_s > after_s)
        return float(self.start_s[hit].min()) if hit.any() else np.inf

    def down(self, nodes, t_s: float) -> np.ndarray:
        """Which of ``nodes`` are down at ``t_s`` (bool, same order)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        act = (self.start_s <= t_s) & (t_s < self.end_s)
        return np.isin(nodes, self.node[act])

    def ready_s(self, nodes, t_s: float) -> float:
        """First time at or after ``t_s`` when every one of ``nodes`` is up, following
        outages that start before the previous ones end (inf: a node never returns)."""
        mine = np.isin(self.node, nodes)
        r = float(t_s)
        while True:
            cover = mine & (self.start_s <= r) & (r < self.end_s)
            if not cover.any():
                return r
            r = float(self.end_s[cover].max())
            if not np.isfinite(r):
                return np.inf


@dataclass
class Resilience:
    """What one job remembers across interruptions (see the module docs for the rules)."""

    recovery: str
    restart_s: float
    checkpoint_interval_s: float | None
    checkpoint_bytes: float
    n_full: int  # ranks at the start: a step on n ranks is worth n / n_full of a full step
    min_nodes: int = 2
    n_spares: int = 0
    spares: list = field(default_factory=list)  # network node ids held as hot spares
    committed_step: int = 0
    committed_work: float = 0.0
    work: float = 0.0  # useful steps done (rolled back on restart / spare)
    progress_since_s: float = 0.0  # last checkpoint or resume: work after it is at risk
    last_ckpt_s: float = 0.0
    ckpt_start_s: float = np.nan
    resume_s: float = np.inf
    fault_seen_s: float = -np.inf  # outages starting at or before this are handled
    interruptions: list = field(default_factory=list)
    checkpoints: list = field(default_factory=list)  # (start_s, end_s)
    open: list = field(default_factory=list)  # interruptions waiting for the resume
    replan: bool = False  # nodes changed (spare, elastic): re-plan the ring at the resume
    checkpoint_to: str = "neighbour"
    ground_pairs: tuple | None = None  # (ranks, stations) of the last ground checkpoint

    @classmethod
    def for_job(cls, job) -> Resilience | None:
        """The job's state from its ``resilience`` (or ``cfg.resilience``) table; None for
        ``recovery = "none"`` or no table."""
        cfg = getattr(job, "resilience", None)
        if cfg is None:
            cfg = getattr(getattr(job, "cfg", None), "resilience", None)
        if cfg is None or cfg.recovery == "none":
            return None
        nbytes = cfg.checkpoint_bytes
        if nbytes is None:
            params = float(getattr(getattr(job, "cfg", None), "model_params", 0.0) or 0.0)
            nbytes = CHECKPOINT_BYTES_PER_PARAM * params
        start = float(getattr(job, "start_s", 0.0))
        return cls(recovery=cfg.recovery, restart_s=float(cfg.restart_s),
                   checkpoint_interval_s=cfg.checkpoint_interval_s,
                   checkpoint_bytes=float(nbytes), n_full=len(job.nodes),
                   min_nodes=int(getattr(cfg, "min_nodes", 2)),
                   n_spares=int(getattr(cfg, "spares", 0)), progress_since_s=start,
                   checkpoint_to=str(getattr(cfg, "checkpoint_to", "neighbour")),
                   last_ckpt_s=start)

    def checkpoint_due(self, t_s: float) -> bool:
        iv = self.checkpoint_interval_s
        return iv is not None and t_s - self.last_ckpt_s >= iv - 1e-9

    def summary(self, t_end_s: float, start_s: float) -> dict:
        """Interruption and checkpoint figures of the run (seconds, counts)."""
        rec = [r["recovery_s"] for r in self.interruptions if np.isfinite(r["recovery_s"])]
        days = max(t_end_s - start_s, 1e-9) / 86400.0
        ck = np.array([e - s for s, e in self.checkpoints]) if self.checkpoints else np.zeros(0)
        return {
            "recovery": self.recovery,
            "interruptions": len(self.interruptions),
            "interruptions_per_day": len(self.interruptions) / days,
            "steps_rolled_back": int(sum(r["steps_rolled_back"] for r in self.interruptions)),
            "lost_work_s": float(sum(r["lost_s"] for r in self.interruptions)),
            "mean_recovery_s": float(np.mean(rec)) if rec else None,
            "checkpoints": len(self.checkpoints),
            "mean_checkpoint_s": float(ck.mean()) if ck.size else None,
            "useful_steps": float(self.work),
            "interruption_log": [
                {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                 for k, v in r.items()} for r in self.interruptions],
        }
