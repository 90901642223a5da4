"""Maintenance transitions: the steps that take a DAG member into maintenance and back, their waits,
the interlocks that refuse an unsafe transition, and the journal that makes a run resumable."""
