"""The Kubernetes API client of the kubernetes runtime, and the errors it raises, told apart."""

from __future__ import annotations

import os
import threading
from typing import Any

from orchestrator.runtimes.base import RuntimeError_


class KubeApi:
    """The two API groups we use, over one client; built lazily from KUBERNETES_API_URL, the in-cluster
    service account, or the kubeconfig, in that order."""

    def __init__(self, namespace: str, api_url: str | None = None) -> None:
        self.namespace = namespace
        self.api_url = api_url
        self._lock = threading.Lock()
        self._apis: tuple[Any, Any] | None = None

    def _build(self) -> tuple[Any, Any]:
        try:
            from kubernetes import client, config
        except ImportError as exc:
            raise RuntimeError_(
                "the kubernetes runtime needs the `kubernetes` package: "
                "pip install 'orchestrator[kubernetes]'"
            ) from exc
        configuration = client.Configuration()
        try:
            if self.api_url:
                configuration.host = self.api_url.rstrip("/")
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except Exception as exc:  # the loaders raise ConfigException, OSError, yaml errors
            raise RuntimeError_(f"no Kubernetes configuration: {exc}") from exc
        configuration.connection_pool_maxsize = 64
        configuration.retries = 1  # our callers retry on their own terms (the follower loops)
        api_client = client.ApiClient(configuration)
        return client.BatchV1Api(api_client), client.CoreV1Api(api_client)

    def apis(self) -> tuple[Any, Any]:
        with self._lock:
            if self._apis is None:
                self._apis = self._build()
            return self._apis

    @property
    def batch(self) -> Any:
        return self.apis()[0]

    @property
    def core(self) -> Any:
        return self.apis()[1]


def api_errors() -> tuple[type[Exception], ...]:
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return (ApiException, urllib3.exceptions.HTTPError, OSError)


def lookup_errors() -> tuple[type[Exception], ...]:
    return (RuntimeError_, *api_errors())


def status_of(exc: Exception) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def short_error(exc: Exception) -> str:
    status = status_of(exc)
    reason = getattr(exc, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return str(exc)[:300]
