"""Threads that run beside the scrape in `serve` and hand it their latest state: the canary's
probes and the kernel log watcher."""
