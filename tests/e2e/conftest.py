from tests.e2e.promstack import (  # noqa: F401  (fixtures)
    alertmanager_factory,
    exporter_factory,
    prometheus_factory,
    webhook_receiver,
)
