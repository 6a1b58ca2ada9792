"""Training workloads as practitioners describe them (docs/workloads.md).

- :mod:`.model`: dense and MoE transformers and their FLOPs per layer;
- :mod:`.layout`: TP x PP x DP (x EP) layouts, communicator groups and placement on nodes;
- :mod:`.nccl`: collectives with NCCL's names, nccl-tests' bytes and their algorithms;
- :mod:`.schedule`: the ops of one step (1F1B micro-batches, bucketed gradient reduce);
- :mod:`.simulate`: op costs from the mesh's measured pair rates, step time and breakdown;
- :mod:`.job`: ``kind = "model"`` and ``kind = "trace"`` jobs for the fluid engine;
- :mod:`.aicb`, :mod:`.chakra`: traces in; :mod:`.perfetto`, :mod:`.astrasim`: traces out.

Importing this package compiles nothing.
"""
