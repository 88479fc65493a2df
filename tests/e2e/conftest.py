from tests.e2e.promstack import alertmanager_factory, exporter_factory, prometheus_factory  # noqa: F401  (fixtures)
