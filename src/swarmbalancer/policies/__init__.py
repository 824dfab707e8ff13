"""Scheduling policies: routing, stealing, rebalancing, per-agent queues and admission control."""
