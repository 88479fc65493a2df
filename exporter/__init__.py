"""netpol-exporter: network-policy verdicts from Hubble and Calico flow logs as Prometheus metrics."""

__version__ = "0.1.0"
