"""The lab's semantics, one file per Exchange area (copies, transport queues, cluster, ...)."""
