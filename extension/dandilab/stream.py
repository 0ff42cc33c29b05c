"""open_nwb / open_zarr: read DANDI assets lazily, wherever they are.

A reference (``ref``) is any of: an ``Asset``; ``"DANDI:000004/0.220126.1852/sub-X/f.nwb"``
(version optional: ``"DANDI:000004/sub-X/f.nwb"`` is the latest published, else
draft); a Dandiset id with ``path=``; an asset id (UUID); an ``https://`` or
``s3://`` URL; a local path. How remote HDF5 bytes are read is decided in
``dandilab.remote`` and nowhere else.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, urlparse

import h5py

from .archive import Archive, Asset

__all__ = ["NWBError", "open_hdf5", "open_nwb", "open_zarr", "resolve"]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_DANDI_REF = re.compile(r"^DANDI:(\d{6})(?:/(draft|\d+\.\d{6}\.\d{4}))?/(.+)$", re.IGNORECASE)
PUBLIC_S3 = "https://dandiarchive.s3.amazonaws.com"


class NWBError(ValueError):
    """A file that pynwb cannot read (not NWB, or NWB 1.x); the message says which."""


class Source:
    """What a reference resolved to: a local ``path`` or a remote ``url`` (+ digest, size)."""

    def __init__(self, name, *, path=None, url=None, digest=None, size=None, asset=None):
        self.name, self.path, self.url = name, path, url
        self.digest, self.size, self.asset = digest, size, asset

    def __repr__(self) -> str:
        return f"<Source {self.name} {self.path or self.url}>"


def resolve(ref, path: str | None = None, *, version: str | None = None,
            archive: Archive | None = None) -> Source:
    """Turn any accepted reference into a ``Source`` (see the module docstring)."""
    if isinstance(ref, Source):
        return ref
    if isinstance(ref, Asset):
        return _asset_source(ref)
    if isinstance(ref, os.PathLike):
        return Source(str(ref), path=Path(ref))
    if not isinstance(ref, str):
        raise TypeError(f"cannot open {ref!r}: expected an Asset, a DANDI reference, "
                        "a URL or a path")
    match = _DANDI_REF.match(ref)
    if match:
        dandiset_id, version, path = match.groups()
        ref = dandiset_id
    if re.fullmatch(r"\d{6}", ref.removeprefix("DANDI:")):
        if not path:
            raise ValueError(f"{ref} is a Dandiset: also give the asset's path")
        archive = archive or Archive()
        return _asset_source(archive.dandiset(ref, version).asset(path))
    if _UUID.match(ref):
        return _asset_source((archive or Archive()).asset(ref))
    if ref.startswith(("http://", "https://")):
        return Source(ref, url=ref)
    if ref.startswith("s3://"):
        return Source(ref, url=s3_to_https(ref))
    return Source(ref, path=Path(ref).expanduser())


def s3_to_https(url: str) -> str:
    """``s3://bucket/key`` as an anonymous HTTPS URL (``$AWS_ENDPOINT_URL`` if set)."""
    parsed = urlparse(url)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    key = quote(parsed.path.lstrip("/"))
    if endpoint:
        return f"{endpoint.rstrip('/')}/{parsed.netloc}/{key}"
    return f"https://{parsed.netloc}.s3.amazonaws.com/{key}"


def _asset_source(asset: Asset) -> Source:
    return Source(asset.path, url=asset.s3_url, digest=asset.digest, size=asset.size,
                  asset=asset)


def _signer(source: Source) -> tuple[str, dict] | None:
    """Where embargoed bytes of the source's asset get a signed URL: the archive's download
    URL, with the user's key (if any)."""
    asset = source.asset
    token = asset.archive.token if asset is not None else None
    if not token:
        return None
    return f"{asset.archive.url}/assets/{asset.identifier}/download/", {
        "Authorization": f"token {token}"}


def open_hdf5(ref, path: str | None = None, *, cache=None, **kwargs) -> h5py.File:
    """An h5py File over any reference, read lazily (remote files through ``RemoteFile``)."""
    source = ref if isinstance(ref, Source) else resolve(ref, path, **kwargs)
    if source.path is not None:
        if not source.path.exists():
            raise FileNotFoundError(f"{source.path} does not exist")
        from .codec import register_plugins

        register_plugins()  # so that h5py decodes Blosc, Zstd, bitshuffle... chunks too
        return h5py.File(source.path, "r")
    from .remote import RemoteFile, open_h5

    remote = RemoteFile(source.url, name=source.name, digest=source.digest, size=source.size,
                        cache=cache, signer=_signer(source))
    try:
        return open_h5(remote)
    except OSError as e:
        remote.close()
        if remote.requests and isinstance(e.__cause__ or e.__context__, OSError):
            raise
        raise NWBError(f"{source.name} is not an HDF5 file ({e})") from None


def _check_nwb(h5file: h5py.File, name: str) -> None:
    version = h5file.attrs.get("nwb_version")
    if version is None and "nwb_version" in h5file:  # NWB 1.x keeps it in a dataset
        old = h5file["nwb_version"][()]
        old = old.decode() if isinstance(old, bytes) else str(old)
        raise NWBError(f"{name} is {old}: pynwb reads NWB 2.x only. Convert it to NWB 2 "
                       "or read it with h5py (dandilab.open_hdf5).")
    if version is None:
        raise NWBError(f"{name} is an HDF5 file but not NWB (no nwb_version attribute at "
                       "its root); read it with h5py (dandilab.open_hdf5).")
    version = version.decode() if isinstance(version, bytes) else str(version)
    if not version.lstrip("NWB-").startswith("2"):
        raise NWBError(f"{name} is NWB {version}: pynwb reads NWB 2.x only.")


def open_nwb(ref, path: str | None = None, *, version: str | None = None,
             archive: Archive | None = None, cache=None):
    """A pynwb ``NWBFile`` read lazily from ``ref``; close it (or use ``with``) when done.

    Only metadata is read here; datasets are h5py datasets whose slices read only
    the chunks they touch (``dandilab.to_dask`` for whole-series computations).
    In IPython the file and its containers display as ``dandilab.widgets.NWBExplorer``
    (the widgets are imported when one is first displayed; text frontends get pynwb's
    repr).
    """

    source = resolve(ref, path, version=version, archive=archive)
    h5file = open_hdf5(source, cache=cache)
    io = None
    try:
        _check_nwb(h5file, source.name)
        io = _nwb_io(h5file)
        nwbfile = io.read()
    except BaseException:
        if io is not None:
            io.close()
        _close_h5(h5file)
        raise
    from .remote import source_of

    remote = source_of(h5file)
    if remote is not None:
        remote.save()  # persist the metadata now: the next open, anywhere, is warm
    _install_display_hook()
    return _closable(nwbfile, io, h5file)


def _display_bundle(obj, include=None, exclude=None):
    from .widgets import display_bundle  # first display: only now the widgets load

    return display_bundle(obj, include, exclude)


def _install_display_hook() -> None:
    """In IPython, show what open_nwb returns as an explorer (``dandilab.widgets``)."""
    import sys

    if "IPython" not in sys.modules:  # not in IPython: nothing to display with
        return
    from IPython import get_ipython

    ip = get_ipython()
    if ip is None:
        return
    formatter = ip.display_formatter.mimebundle_formatter
    # by name: no import of hdmf's container module needed here, and it keeps a hook
    # already registered by dandilab.widgets (the same function behind this one)
    try:
        formatter.lookup_by_type("hdmf.container.AbstractContainer")
    except KeyError:
        formatter.for_type_by_name("hdmf.container", "AbstractContainer", _display_bundle)


_type_maps: dict = {}


def _nwb_io(h5file: h5py.File):
    """pynwb's reader for ``h5file``, with the namespaces cached in the file.

    Loading them builds a new type map, whose object mappers pynwb then builds again
    for every file (a fifth of a cold open's CPU time). Files that cache the same
    namespaces at the same versions share one type map in this process, as pynwb's own
    global type map is shared by every file read without ``load_namespaces``.
    """
    import pynwb
    from hdmf.build import BuildManager

    key = _specifications_key(h5file)
    type_map = _type_maps.get(key) if key else None
    if type_map is not None:
        return pynwb.NWBHDF5IO(file=h5file, mode="r", manager=BuildManager(type_map))
    io = pynwb.NWBHDF5IO(file=h5file, mode="r", load_namespaces=True)
    if key:
        _type_maps[key] = io.manager.type_map
    return io


def _specifications_key(h5file: h5py.File) -> tuple | None:
    """The namespaces and versions an NWB file caches (None if it caches none).

    Names and versions, as pynwb itself keys them (it skips a cached namespace whose
    version is already loaded): reading the specifications' text would cost a request
    on a cold remote open.
    """
    specs = h5file.get("specifications")
    if not isinstance(specs, h5py.Group):
        return None
    return tuple(sorted((name, tuple(sorted(group))) for name, group in specs.items()
                        if isinstance(group, h5py.Group)))


def _close_h5(h5file: h5py.File) -> None:
    from .remote import source_of

    remote = source_of(h5file)
    h5file.close()
    if remote is not None:
        remote.close()


_CLOSABLE: dict[type, type] = {}


def _closable(nwbfile, io, h5file):
    """Give the NWBFile ``close()`` and ``with`` support (a subclass of its own class)."""
    cls = type(nwbfile)
    if cls not in _CLOSABLE:
        def close(self):
            handles = self.__dict__.pop("_dandilab_handles", None)
            if handles:
                io, h5file, remote = handles
                io.close()
                if h5file.id.valid:
                    h5file.close()
                if remote is not None:
                    remote.close()

        _CLOSABLE[cls] = type(cls.__name__, (cls,), {
            "close": close,
            "__enter__": lambda self: self,
            "__exit__": lambda self, *exc: self.close(),
            "__module__": cls.__module__,
        })
    nwbfile.__class__ = _CLOSABLE[cls]
    from .remote import source_of

    nwbfile.__dict__["_dandilab_handles"] = (io, h5file, source_of(h5file))
    return nwbfile


def open_zarr(ref, path: str | None = None, *, version: str | None = None,
              archive: Archive | None = None, mode: str = "r", **kwargs):
    """A zarr group or array (OME-Zarr included) over the archive's S3, anonymously.

    Remote zarrs are read through fsspec's HTTP filesystem against the S3 prefix
    (public data needs no credentials; listing is not needed to read).
    """
    import zarr

    source = resolve(ref, path, version=version, archive=archive)
    if source.path is not None:
        return zarr.open(str(source.path), mode=mode, **kwargs)
    url = source.url.rstrip("/")
    if "/api/" in url and "/download" in url:
        raise NWBError(f"{source.name} has no S3 URL to read it as zarr from")
    from zarr.storage import FsspecStore

    store = FsspecStore.from_url(url, read_only=True)
    return zarr.open(store=store, mode=mode, **kwargs)
