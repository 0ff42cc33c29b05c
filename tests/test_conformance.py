"""Every file of the conformance corpus (tests/corpus.py) and every real NWB file in
../shared/fixtures/nwb, served as assets by the real local archive over its S3 API,
opened with dandilab and read equal to local h5py: every dataset, attribute, reference
and link; ``to_dask`` chunk-aligned and equal on every array; open_nwb as pynwb reads it
locally. What nobody supports is an expected, exactly worded error."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest
from dandilab import arrays, codec
from dandilab.archive import Archive
from dandilab.arrays import to_dask
from dandilab.stream import NWBError, open_hdf5, open_nwb

from . import corpus
from .localarchive_fixtures import SyntheticAsset, _asset_record, _digest, write_users
from .paths import SHARED

DANDISET = "000777"
REAL = SHARED / "fixtures" / "nwb"
REAL_FILES = sorted(p.name for p in REAL.glob("*.nwb")) if REAL.is_dir() else []
LEGACY = "legacy_nwb1_brain_observatory_496908818s.nwb"
# Layouts nobody reads over a stream, with the exact error: an external link names its
# target by a local file name, which a file read over HTTP does not have (h5py's words).
# (Before dandilab gave h5py a plain link access list, HDF5 opened the streamed file itself
# as the link's target: "object 'data' doesn't exist", or worse, the wrong data.)
LINK_ERROR = r"^\"Unable to synchronously open object \(can't open file\)\"$"
# Fast-path filters: these cases must be decoded by dandilab.codec, not h5py.
FAST_CASES = ("gzip-shuffle", "blosc-lz4", "blosc-zstd", "blosc-blosclz", "blosc-zlib", "zstd",
              "shuffle-zstd")


def _params():
    params = [pytest.param(f"corpus/{name}.{'nwb' if case.nwb else 'h5'}", case.error, id=name)
              for name, case in corpus.CASES.items()]
    params += [pytest.param(f"real/{name}", None, id=name) for name in REAL_FILES
               if name != LEGACY]
    if not REAL_FILES:
        params.append(pytest.param("real/", None, id="real-fixtures", marks=pytest.mark.skip(
            reason=f"{REAL} is absent: the real NWB files are not in the corpus")))
    return params


@pytest.fixture(scope="session")
def corpus_files(tmp_path_factory) -> dict:
    """asset path -> local file: the corpus, written once per session, and the real files."""
    folder = tmp_path_factory.mktemp("corpus")
    files = {f"corpus/{p.name}": p for p in corpus.build(folder).values()}
    files["corpus/external-link_target.h5"] = folder / "external-link_target.h5"
    files.update({f"real/{name}": REAL / name for name in REAL_FILES})
    return files


@pytest.fixture(scope="session")
def corpus_archive(tmp_path_factory, corpus_files):
    """A local archive whose Dandiset 000777 holds every corpus file as an asset."""
    from dandihub.localarchive.server import LocalArchive

    root = tmp_path_factory.mktemp("corpus-archive")
    (root / "blobs").mkdir()
    folder = root / "dandisets" / DANDISET
    folder.mkdir(parents=True)
    records = []
    for i, (path, local) in enumerate(sorted(corpus_files.items())):
        blob = f"c0000000-0000-4000-8000-{i:012d}"
        asset = SyntheticAsset(f"0c000000-0000-4000-8000-{i:012d}", path, blob=blob)
        (root / "blobs" / blob).symlink_to(local)
        records.append(_asset_record(asset, local.stat().st_size, _digest(local),
                                     "application/x-nwb"))
    (folder / "draft.assets.json").write_text(json.dumps(records))
    (folder / "draft.metadata.json").write_text(json.dumps({
        "schemaKey": "Dandiset", "schemaVersion": "0.6.4", "id": f"DANDI:{DANDISET}/draft",
        "identifier": f"DANDI:{DANDISET}", "version": "draft",
        "name": "Conformance corpus", "description": "tests/corpus.py and the real fixtures",
        "contributor": [], "license": ["spdx:CC-BY-4.0"], "dateCreated": "2024-01-02T10:00:00Z"}))
    (folder / "dandiset.json").write_text(json.dumps({
        "identifier": DANDISET, "created": "2024-01-02T10:00:00+00:00",
        "modified": "2024-01-02T10:00:00+00:00", "contact_person": "Tester, Ada",
        "embargo_status": "OPEN", "owners": ["alice"]}))
    write_users(root)
    with LocalArchive(root) as running:
        yield running


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DANDILAB_CACHE_DIR", str(tmp_path / "cache"))
    arrays._handles.clear()


@pytest.fixture(scope="module")
def dandiset(corpus_archive):
    return Archive(corpus_archive.api_url).dandiset(DANDISET, "draft")


# -- comparing what h5py reads -------------------------------------------------------------
def comparable(value, f: h5py.File):
    """``value`` (read from ``f``) with references replaced by what they point at."""
    if isinstance(value, h5py.RegionReference):
        if not value:
            return ("null region",)
        return ("region", f[value].name, f[value][value].tolist())
    if isinstance(value, h5py.Reference):
        return ("ref", f[value].name) if value else ("null ref",)
    if isinstance(value, np.ndarray) and value.dtype.names and any(
            value.dtype[n].kind == "O" for n in value.dtype.names):
        return [tuple(comparable(v, f) for v in row) for row in value.ravel()]
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return [comparable(v, f) for v in value.ravel()]
    if isinstance(value, np.void) and value.dtype.names:
        return tuple(comparable(value[n], f) for n in value.dtype.names)
    if isinstance(value, h5py.Empty):
        return ("empty", value.dtype.str)
    return value


def assert_same(a, b, what: str) -> None:
    if isinstance(b, tuple | list):
        assert type(a) is type(b) and len(a) == len(b), what
        for x, y in zip(a, b):
            assert_same(x, y, what)
    else:
        np.testing.assert_equal(a, b, err_msg=what)


def undecodable(dataset) -> str | None:
    try:
        codec.check_decodable(dataset)
    except codec.UnsupportedFilterError as e:
        return str(e)
    return None


def compare_files(remote: h5py.File, local: h5py.File, expected_error) -> dict:
    """Walk every link of ``local``; the same object, attributes and data in ``remote``."""
    seen = {"datasets": 0, "arrays": [], "errors": []}
    links = []
    local.visit_links(links.append)
    for name in [""] + links:
        link = local.get(name, getlink=True) if name else None
        if isinstance(link, h5py.ExternalLink):
            remote_link = remote.get(name, getlink=True)
            assert isinstance(remote_link, h5py.ExternalLink), name
            assert (remote_link.filename, remote_link.path) == (link.filename, link.path)
            with pytest.raises(KeyError, match=LINK_ERROR):
                remote[name]
            seen["errors"].append(name)
            continue
        lobj, robj = local[name or "/"], remote[name or "/"]
        assert type(robj) is type(lobj), name
        assert sorted(robj.attrs) == sorted(lobj.attrs), name
        for key in lobj.attrs:
            assert_same(comparable(robj.attrs[key], remote), comparable(lobj.attrs[key], local),
                        f"{name}@{key}")
        if not isinstance(lobj, h5py.Dataset):
            continue
        assert (robj.shape, robj.dtype, robj.chunks) == (lobj.shape, lobj.dtype, lobj.chunks)
        message = undecodable(robj)
        if message is not None:  # nobody decodes it: the expected, worded error
            assert expected_error and re.search(expected_error, message), message
            with pytest.raises(codec.UnsupportedFilterError, match=expected_error):
                to_dask(robj)
            with pytest.raises(OSError):
                lobj[()]  # (local h5py cannot read it either)
            seen["errors"].append(name)
            continue
        assert_same(comparable(robj[()], remote), comparable(lobj[()], local), name)
        seen["datasets"] += 1
        if lobj.dtype.kind in "iuf" and lobj.ndim >= 1 and lobj.size:
            seen["arrays"].append(name)
    return seen


def assert_dask_matches(remote_ds, local_ds, name: str) -> None:
    """to_dask: tasks cover whole stored chunks (contiguous data: rows up to the limit),
    and compute equal to local h5py; with the default limit and a small one."""
    expected = local_ds[()]
    stored = local_ds.chunks
    item = local_ds.dtype.itemsize
    small = 16 * 1024
    for limit in (arrays.DEFAULT_LIMIT, small):
        array = to_dask(remote_ds, limit=limit)
        for axis, task_chunks in enumerate(array.chunks):
            edges = np.cumsum(task_chunks)[:-1]
            if stored:
                assert all(e % stored[axis] == 0 for e in edges), (name, axis, array.chunks)
            elif axis:  # contiguous: split along rows only, like its bytes
                assert task_chunks == (local_ds.shape[axis],), (name, array.chunks)
        if not stored:
            row = item * int(np.prod(local_ds.shape[1:]))
            assert max(array.chunks[0]) * row <= max(limit, row), (name, array.chunks)
            if local_ds.nbytes > 2 * limit:
                assert array.numblocks[0] > 1, (name, array.chunks)
        np.testing.assert_array_equal(array.compute(scheduler="threads"), expected,
                                      err_msg=name)


def local_objects(path):
    import pynwb

    with pynwb.NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        return {o.object_id: (type(o).__name__, o.name) for o in io.read().all_children()
                if hasattr(o, "object_id")}


@pytest.mark.parametrize("path, expected_error", _params())
def test_every_asset_reads_as_local(dandiset, corpus_files, path, expected_error):
    asset = dandiset.asset(path)
    local_path = corpus_files[path]
    with open_hdf5(asset) as remote, h5py.File(local_path, "r") as local:
        seen = compare_files(remote, local, expected_error)
        assert seen["datasets"] > 0
        assert bool(seen["errors"]) == bool(expected_error or "external-link" in path), seen
        for name in seen["arrays"]:
            assert_dask_matches(remote[name], local[name], name)
        if path.removeprefix("corpus/").split(".")[0] in FAST_CASES:
            series = [n for n in seen["arrays"] if n.startswith("acquisition/")]
            assert series and all(codec.filters_of(remote[n]) for n in series), series
    if corpus.CASES.get(path.removeprefix("corpus/").rsplit(".", 1)[0], corpus.Case(None)).nwb:
        expected = local_objects(local_path)
        with open_nwb(asset) as nwb:
            got = {o.object_id: (type(o).__name__, o.name) for o in nwb.all_children()
                   if hasattr(o, "object_id")}
        assert got == expected


def test_the_legacy_nwb1_asset_gives_a_clear_error(dandiset, corpus_files):
    if f"real/{LEGACY}" not in corpus_files:
        pytest.skip(f"{REAL} is absent")
    with pytest.raises(NWBError, match="NWB-1.0.5: pynwb reads NWB 2.x only"):
        open_nwb(dandiset.asset(f"real/{LEGACY}"))


def test_filters_without_hdf5plugin_are_named_with_the_fix(corpus_files, monkeypatch):
    """Without hdf5plugin's filters, a Blosc file names filter 32001 (Blosc) and the fix,
    and dandilab.codec still decodes it (the fast path needs no HDF5 filter)."""
    monkeypatch.setattr(h5py.h5z, "filter_avail", lambda code: code in (1, 2, 3, 32000))
    path = corpus_files["corpus/bitshuffle-lz4.nwb"]
    with h5py.File(path) as f, pytest.raises(
            codec.UnsupportedFilterError,
            match=rf"^/acquisition/int16/data in {re.escape(str(path))} is compressed with HDF5 "
                  r"filter 32008 \(bitshuffle\), which neither dandilab nor h5py can decode "
                  r"here; fix: install hdf5plugin \("):
        to_dask(f["acquisition/int16/data"])
    with h5py.File(corpus_files["corpus/blosc-lz4.nwb"]) as f:
        ds = f["acquisition/int16/data"]
        np.testing.assert_array_equal(to_dask(ds).compute(), corpus.signal("int16"))



PLUGIN_SCRIPT = """
import sys
import numpy as np
import dandilab
assert "hdf5plugin" not in sys.modules
with dandilab.open_nwb(sys.argv[1]) as nwb:
    print(int(np.asarray(nwb.acquisition["int16"].data[:]).astype(np.int64).sum()))
"""


@pytest.mark.parametrize("name", ["bitshuffle-lz4", "lz4", "blosc-zstd"])
def test_a_fresh_process_reads_plugin_filters(corpus_files, name):
    """open_nwb registers hdf5plugin's filters itself: h5py then reads chunks that only a
    plugin decodes (the user imports nothing)."""
    import subprocess
    import sys

    path = corpus_files[f"corpus/{name}.nwb"]
    run = subprocess.run([sys.executable, "-c", PLUGIN_SCRIPT, str(path)],
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(run.stdout) == int(corpus.signal("int16").astype(np.int64).sum())


# -- the explorer: a view of every object, reading only what it shows ------------------------
SMALL_VIEW = 1024 * 1024  # bytes any view may fetch (a window of a small file is all of it)


def _nwb_params():
    return [p for p in _params() if not p.id.startswith("real-fixtures")
            and (corpus.CASES.get(p.id) or corpus.Case(None)).nwb]


@pytest.mark.parametrize("path, expected_error", _nwb_params())
def test_the_explorer_views_every_object_reading_only_what_it_shows(dandiset, path,
                                                                     expected_error):
    """NWBExplorer builds the view of every object of the streamed file; no view fetches
    more than a quarter of the file (1 MiB for small files): none reads whole datasets."""
    from dandilab.widgets import FieldsView, NWBExplorer
    from dandilab.widgets.explorer import _isa

    asset = dandiset.asset(path)
    with open_nwb(asset, cache=False) as nwb:
        remote = nwb._dandilab_handles[2]
        budget = max(SMALL_VIEW, asset.size // 4)
        before = remote.bytes_fetched
        explorer = NWBExplorer(nwb)  # builds (and starts loading) its first view
        first = explorer.select.value
        rows = [(first, explorer.by_path[first][1])] + [
            (row, obj) for row, _label, obj, _depth in explorer.rows
            if obj is not None and row != first]
        problems, fetched, allowed = [], {}, {}
        for i, (row, obj) in enumerate(rows):
            if i:
                before = remote.bytes_fetched
            view = explorer.show(row)
            view.wait(120)
            fetched[row] = remote.bytes_fetched - before
            # the masks view draws every ROI's mask: all of image_mask is what it shows
            mask = getattr(obj, "image_mask", None) if _isa(obj, "PlaneSegmentation") else None
            allowed[row] = budget + (mask.data.id.get_storage_size() if mask is not None else 0)
            if getattr(view, "error", None) is not None:
                problems.append(f"{row}: {view.error!r}")
            if isinstance(view, FieldsView) and "cannot be drawn" in view.children[0].value:
                problems.append(f"{row}: {view.children[0].value}")
        assert not problems, problems
        assert fetched, "no object was viewed"
        too_much = {row: (n, allowed[row]) for row, n in fetched.items() if n > allowed[row]}
        assert not too_much, too_much
        if path == "corpus/long-blosc.nwb":  # the recording's view drew from a few chunks
            assert type(explorer.views["acquisition/long"]).__name__ == "TimeSeriesView"
            assert 0 < fetched["acquisition/long"] < asset.size / 4
