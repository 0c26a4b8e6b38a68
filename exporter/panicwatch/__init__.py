"""panicwatch: a Prometheus exporter for kdump/panic readiness and NFS client health."""

__version__ = "0.1.0"
