"""A conformance corpus: small HDF5/NWB files with the filters and layouts real converters
write, generated here (pynwb, h5py, hdf5plugin) so the suite stands on its own data.

``CASES`` maps a case name to ``Case(write, error)``: ``write(path)`` writes the file;
``error`` is the exact message (a regex) that dandilab must give for a layout nobody
supports, else None. ``build(folder)`` writes every case once into ``folder``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

ROWS, COLS, CHUNK = 3_000, 8, (500, 8)
START = datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
UNSUPPORTED_FILTER = 32002  # MAFISC: registered with the HDF Group, in no library we install


@dataclass(frozen=True)
class Case:
    write: Callable[[Path], None]
    error: str | None = None  # the exact message dandilab gives, for what nobody supports
    nwb: bool = True  # an NWB file (open_nwb and the explorer apply), else plain HDF5


def signal(dtype="int16") -> np.ndarray:
    """Smooth data with noise: compresses like a real recording, not like zeros."""
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.integers(-20, 21, (ROWS, COLS)), axis=0)
    return walk.astype(dtype)


def _nwbfile(identifier: str):
    from pynwb import NWBFile
    from pynwb.file import Subject

    return NWBFile(session_description=f"conformance corpus: {identifier}",
                   identifier=identifier, session_start_time=START,
                   subject=Subject(subject_id="01", species="Mus musculus", sex="U", age="P90D"))


def _write_nwb(path: Path, nwb) -> None:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def filtered(**options) -> Callable[[Path], None]:
    """An NWB file whose TimeSeries is chunked and compressed with ``options``
    (h5py/hdf5plugin keyword arguments: compression, compression_opts, shuffle)."""

    def write(path: Path) -> None:
        from hdmf.backends.hdf5 import H5DataIO
        from pynwb import TimeSeries

        nwb = _nwbfile(path.stem)
        warnings.filterwarnings("ignore", "(.*) compression may not be available")
        for name, dtype in (("int16", "int16"), ("float32", "float32")):
            nwb.add_acquisition(TimeSeries(
                name=name, unit="uV", rate=1000.0,
                data=H5DataIO(signal(dtype), chunks=CHUNK, allow_plugin_filters=True,
                              **options)))
        _write_nwb(path, nwb)

    return write


def write_long(path: Path) -> None:
    """A 20 s, 16-channel recording at 30 kHz in Blosc-lz4 chunks of 20 000 rows (~19 MB
    of samples): big enough that a view reading whole datasets would show in bytes."""
    import hdf5plugin
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import TimeSeries

    warnings.filterwarnings("ignore", "(.*) compression may not be available")
    rng = np.random.default_rng(3)
    data = np.cumsum(rng.integers(-30, 31, (600_000, 16)), axis=0).astype("int16")
    nwb = _nwbfile("long")
    nwb.add_acquisition(TimeSeries(
        name="long", unit="uV", rate=30000.0,
        data=H5DataIO(data, chunks=(20_000, 16), allow_plugin_filters=True,
                      **hdf5plugin.Blosc(cname="lz4", shuffle=2))))
    _write_nwb(path, nwb)


def plugin(name: str, **kwargs) -> dict:
    """hdf5plugin's filter options as h5py keyword arguments."""
    import hdf5plugin

    return dict(getattr(hdf5plugin, name)(**kwargs))


def write_layouts(path: Path) -> None:
    """What converters write besides chunked series: contiguous data, tiny (1 x 384) chunks,
    variable-length strings, compound columns with object references (pynwb's own), then
    compact datasets, region references and compound data added with h5py."""
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import TimeSeries
    from pynwb.ecephys import ElectricalSeries

    nwb = _nwbfile("layouts")
    device = nwb.create_device("probe")
    group = nwb.create_electrode_group("shank0", description="a shank", location="CA1",
                                       device=device)
    for i in range(384):
        nwb.add_electrode(group=group, location=["CA1", "CA3", "DG"][i % 3], x=0.0,
                          y=float(i), z=0.0)
    tiny = np.random.default_rng(1).integers(-99, 99, (200, 384), dtype=np.int16)
    nwb.add_acquisition(ElectricalSeries(
        name="tiny_chunks", rate=30000.0, data=H5DataIO(tiny, chunks=(1, 384)),
        electrodes=nwb.create_electrode_table_region(list(range(384)), "all")))
    nwb.add_acquisition(TimeSeries(name="contiguous", unit="uV", rate=1000.0,
                                   data=signal("float64")))  # no chunks: contiguous
    nwb.add_trial_column("outcome", "a variable-length string per trial")
    for t in range(12):
        nwb.add_trial(start_time=float(t), stop_time=t + 0.5,
                      outcome=["hit", "miss", "a longer outcome ünïcode"][t % 3])
    nwb.add_epoch(start_time=0.0, stop_time=2.0, tags=["a"],
                  timeseries=[nwb.acquisition["contiguous"]])  # compound with object refs
    _write_nwb(path, nwb)
    with h5py.File(path, "a") as f:
        extra = f.require_group("corpus_extra")  # untyped: pynwb leaves it to h5py
        space = h5py.h5s.create_simple((16, 4))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        compact = h5py.Dataset(h5py.h5d.create(extra.id, b"compact", h5py.h5t.NATIVE_INT32,
                                               space, dcpl=dcpl))
        compact[...] = np.arange(64, dtype=np.int32).reshape(16, 4)
        rows = np.zeros(20, dtype=[("id", "<i8"), ("x", "<f4"), ("flag", "u1")])
        rows["id"], rows["x"], rows["flag"] = np.arange(20), np.linspace(0, 1, 20), 1
        extra["compound"] = rows
        target = f["acquisition/contiguous/data"]
        regions = extra.create_dataset("regions", (3,), dtype=h5py.regionref_dtype)
        regions[0], regions[1], regions[2] = (target.regionref[0:10], target.regionref[5:6],
                                              target.regionref[100:300])
        extra["vlen_strings"] = np.array(["a", "bb", "ccc ünïcode"], dtype=h5py.string_dtype())
        extra.attrs["ref_attr"] = target.ref


def write_external_link(path: Path) -> None:
    """An NWB file whose scratch group links into another file beside it (as converters
    do for raw data kept apart)."""
    other = path.with_name(path.stem + "_target.h5")
    with h5py.File(other, "w") as f:
        f["data"] = np.arange(100, dtype="f4")
    _write_nwb(path, _nwbfile("external-link"))
    with h5py.File(path, "a") as f:
        f["scratch_link"] = h5py.ExternalLink(other.name, "/data")


def write_extension(path: Path) -> None:
    """An NWB file with a cached ndx-style extension namespace (NWBNamespaceBuilder)."""
    from pynwb import get_class, load_namespaces
    from pynwb.spec import NWBAttributeSpec, NWBGroupSpec, NWBNamespaceBuilder

    folder = path.parent / "ndx-corpus-probe"
    folder.mkdir(exist_ok=True)
    ns_path = folder / "ndx-corpus-probe.namespace.yaml"
    if not ns_path.exists():
        builder = NWBNamespaceBuilder("a probe extension for the conformance corpus",
                                      "ndx-corpus-probe", version="0.1.0",
                                      author="dandilab tests", contact="tests@example.org")
        builder.include_type("TimeSeries", namespace="core")
        spec = NWBGroupSpec(neurodata_type_def="ProbeSeries", neurodata_type_inc="TimeSeries",
                            doc="a TimeSeries with a probe name",
                            attributes=[NWBAttributeSpec("probe_name", "the probe", "text")])
        builder.add_spec("ndx-corpus-probe.extensions.yaml", spec)
        builder.export(ns_path.name, outdir=str(folder))
    load_namespaces(str(ns_path))
    ProbeSeries = get_class("ProbeSeries", "ndx-corpus-probe")
    nwb = _nwbfile("extension")
    nwb.add_acquisition(ProbeSeries(name="probe", probe_name="np1.0", unit="uV", rate=100.0,
                                    data=signal("int32")[:500]))
    _write_nwb(path, nwb)


def write_unknown_filter(path: Path) -> None:
    """A plain HDF5 file whose dataset names a filter nobody here decodes (chunks written
    raw with write_direct_chunk: the filter is only recorded)."""
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", (100, 4), dtype="i4", chunks=(50, 4),
                              compression=UNSUPPORTED_FILTER, allow_unknown_filter=True)
        for i in (0, 50):
            ds.id.write_direct_chunk((i, 0), np.zeros((50, 4), "i4").tobytes())
        f["readable"] = np.arange(10)


CASES: dict[str, Case] = {
    "gzip-shuffle": Case(filtered(compression="gzip", shuffle=True)),
    "blosc-lz4": Case(filtered(**plugin("Blosc", cname="lz4", shuffle=1))),
    "blosc-zstd": Case(filtered(**plugin("Blosc", cname="zstd", clevel=5, shuffle=2))),
    "blosc-blosclz": Case(filtered(**plugin("Blosc", cname="blosclz", shuffle=0))),
    "blosc-zlib": Case(filtered(**plugin("Blosc", cname="zlib", shuffle=1))),
    "zstd": Case(filtered(**plugin("Zstd", clevel=3))),
    "shuffle-zstd": Case(filtered(shuffle=True, **plugin("Zstd"))),
    "lzf": Case(filtered(compression="lzf", shuffle=True)),
    "bitshuffle-lz4": Case(filtered(**plugin("Bitshuffle", cname="lz4"))),
    "bitshuffle-zstd": Case(filtered(**plugin("Bitshuffle", cname="zstd"))),
    "lz4": Case(filtered(**plugin("LZ4"))),
    "long-blosc": Case(write_long),
    "layouts": Case(write_layouts),
    "external-link": Case(write_external_link),
    "extension": Case(write_extension),
    "unknown-filter": Case(
        write_unknown_filter, nwb=False,
        error=(r"^/data in corpus/unknown-filter\.h5 is compressed with HDF5 filter 32002 "
               r"\(MAFISC\), which neither dandilab nor h5py can decode here; fix: install "
               r"hdf5plugin \(pip install hdf5plugin: Blosc, Blosc2, Zstd, LZ4, LZF, bitshuffle, "
               r"bzip2, ZFP, SZ, SZ3\), or if it does not ship filter 32002, build that HDF5 "
               r"plugin and set HDF5_PLUGIN_PATH to its folder$")),
}


def build(folder: Path) -> dict[str, Path]:
    """Write every case into ``folder`` (once: existing files are kept); name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, case in CASES.items():
        path = folder / f"{name}.{'nwb' if case.nwb else 'h5'}"
        if not path.exists():
            case.write(path)
        paths[name] = path
    return paths
