"""One module per collector: snapshots in, prometheus_client metric families out; base runs
them (timing, containment, the page's streaming) and registry builds the set the flags ask for."""
