"""TLS for the farm: measurement runs code that clients send, so a farm that is not on
one trusted machine runs with Dask's TLS and client certificates. One CA signs a
certificate for each scheduler, worker and client; every party proves itself with its
own certificate and trusts only the CA's (docs/farm.md shows how to make them).

Example::

    security = farm_security("ca.pem", "client.pem", "client-key.pem")
    Client("tls://farm:8786", security=security)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tilewise.distributed.device import FarmError
from tilewise.distributed.lazy import import_distributed


def farm_security(ca: str | None, cert: str | None, key: str | None) -> Any:
    """A ``distributed.security.Security`` that requires TLS with this party's
    certificate and key, trusting only ``ca``; None where none of the three is given.
    The same certificate serves as client, worker and scheduler certificate, so one
    object fits any role."""
    given = {"--tls-ca": ca, "--tls-cert": cert, "--tls-key": key}
    if not any(given.values()):
        return None
    missing = [flag for flag, path in given.items() if not path]
    if missing:
        raise FarmError(f"a TLS farm needs --tls-ca, --tls-cert and --tls-key; "
                        f"{', '.join(missing)} missing")
    for flag, path in given.items():
        if not Path(str(path)).is_file():
            raise FarmError(f"{flag} {path}: no such file")
    security_module = import_distributed().security
    return security_module.Security(
        tls_ca_file=ca,
        tls_client_cert=cert, tls_client_key=key,
        tls_worker_cert=cert, tls_worker_key=key,
        tls_scheduler_cert=cert, tls_scheduler_key=key,
        require_encryption=True,
    )


def farm_address(address: str, security: Any) -> str:
    """The scheduler's address with its protocol: ``tls://`` for a secured farm (an
    address without one gets it), ``tcp://`` otherwise; a TLS farm refuses
    ``tcp://``."""
    if "://" not in address:
        return f"{'tls' if security is not None else 'tcp'}://{address}"
    if security is not None and not address.startswith("tls://"):
        raise FarmError(f"a TLS farm is reached at tls://..., not {address}")
    return address
