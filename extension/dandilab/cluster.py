"""cluster(): the Dask client to analyse with.

On the hub, the spawner sets ``DASK_GATEWAY__ADDRESS`` (and the proxy address and
auth type the same way): then the cluster comes from Dask Gateway and its workers
run the user's image. Elsewhere it is a LocalCluster sized to this machine.
"""

from __future__ import annotations

import os

__all__ = ["cluster"]


def cluster(workers: int | None = None, *, gateway: bool | None = None, **options):
    """A ``distributed.Client`` (``client.cluster`` is the cluster).

    ``workers``: how many (default: Gateway 2, local one process per core);
    ``gateway``: force (True) or refuse (False) Dask Gateway, default when
    ``DASK_GATEWAY__ADDRESS`` is set; ``options``: cluster options
    (Gateway: ``worker_cores=``, ``worker_memory=`` ...; local: LocalCluster's).
    Close the client (``with cluster() as client:``) to shut everything down.
    """
    if gateway is None:
        gateway = bool(os.environ.get("DASK_GATEWAY__ADDRESS"))
    if gateway:
        return _gateway_client(workers, **options)
    return _local_client(workers, **options)


def _gateway_client(workers, **options):
    import dask
    from dask_gateway import GatewayCluster

    try:
        cluster = GatewayCluster(shutdown_on_close=True, **options)
    except Exception as e:
        address = dask.config.get("gateway.address", None)
        raise RuntimeError(f"Dask Gateway at {address} did not give a cluster: {e}") from e
    cluster.scale(2 if workers is None else workers)
    client = cluster.get_client(set_as_default=True)
    _close_cluster_with(client, cluster)
    return client


def _local_client(workers, **options):
    from dask.system import CPU_COUNT
    from distributed import Client, LocalCluster

    # processes: h5py's global lock would serialise threads that decompress chunks;
    # two threads each: a task's network wait overlaps another's computation.
    options.setdefault("threads_per_worker", 2)
    options.setdefault("dashboard_address", ":0")
    local = LocalCluster(n_workers=workers or CPU_COUNT, processes=True, **options)
    client = Client(local, set_as_default=True)
    _close_cluster_with(client, local)
    return client


def _close_cluster_with(client, cluster) -> None:
    """``client.close()`` (and ``with client:``) also shuts the cluster down."""
    close = client.close

    def close_both(*args, **kwargs):
        client.close = close  # once: Client.__del__ closes again at garbage collection
        try:
            return close(*args, **kwargs)
        finally:
            cluster.close()

    client.close = close_both
