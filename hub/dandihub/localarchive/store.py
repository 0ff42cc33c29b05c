"""Read an archive folder (layout in the package docstring) into memory.

Dandisets load lazily, one at a time, on first access, and stay cached; a
Version's assets load on first access too (the 57 718 listing rows of a large
Dandiset take well under a second). Everything here is read-only and safe to
share between the server's worker threads.

Records keep the public archive's URLs; rewriting them is the server's job.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import mimetypes
import operator
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

#: The public archive's URLs, as stored in records; the server rewrites them.
PUBLIC_API_URL = "https://api.dandiarchive.org/api"
PUBLIC_S3_URL = "https://dandiarchive.s3.amazonaws.com"

DRAFT = "draft"
_VERSION_RE = re.compile(r"^(draft|0\.\d{6}\.\d{4})$")
_DANDISET_ID_RE = re.compile(r"^\d{6}$")
# Namespace of the asset and blob ids made up for listing rows that have none.
_SYNTHETIC_NS = uuid.UUID("6f1c1d1e-6a57-4d6b-9a43-6c6f63616c61")
_SYNTHETIC_NS_BYTES = _SYNTHETIC_NS.bytes
_FALLBACK_DATE = "1970-01-01T00:00:00+00:00"


class ArchiveFolderError(ValueError):
    """The archive folder does not follow the documented layout."""


def blob_key(blob_id: str) -> str:
    """The S3 key of a blob, as on the public archive: blobs/abc/def/abcdef..."""
    return f"blobs/{blob_id[0:3]}/{blob_id[3:6]}/{blob_id}"


def zarr_key(zarr_id: str, key: str = "") -> str:
    """The S3 key of a file of a zarr (its prefix, ending in '/', for key '')."""
    return f"zarr/{zarr_id}/{key}"


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _read_json(path: Path) -> Any:
    try:
        with _open_text(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ArchiveFolderError(f"cannot read {path}: {e}") from e


def _existing(base: Path, name: str) -> Path | None:
    """``base/name`` or ``base/name.gz``, whichever exists."""
    for candidate in (base / name, base / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def stable_uuid(name: str) -> str:
    """``str(uuid.uuid5(namespace, name))`` for made-up ids, several times faster."""
    h = hashlib.sha1(_SYNTHETIC_NS_BYTES + name.encode(), usedforsecurity=False).hexdigest()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def _guess_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".nwb"):
        return "application/x-nwb"
    if lower.endswith((".zarr", ".ngff")):
        return "application/x-zarr"
    return mimetypes.guess_type(lower)[0] or "application/octet-stream"


def contact_person(metadata: dict) -> str:
    """The first contributor with the ContactPerson role, as the archive computes it."""
    for contributor in metadata.get("contributor") or []:
        name = contributor.get("name")
        if name is not None and "dcite:ContactPerson" in (contributor.get("roleName") or []):
            return name
    return ""


class Asset:
    """One asset: a blob or a zarr at a path, with its metadata.

    ``metadata`` is the stored record's; for rows of a listing it is made up
    on first use (and says so in ``wasGeneratedBy``).
    """

    __slots__ = (
        "_format", "_metadata", "_schema_version", "_sha256",
        "asset_id", "blob", "created", "modified", "path", "size", "zarr",
    )

    def __init__(
        self, asset_id: str, path: str, size: int, created: str, modified: str,
        blob: str | None, zarr: str | None, metadata: dict | None = None,
        sha256: str | None = None, encoding_format: str | None = None,
        schema_version: str | None = None,
    ) -> None:
        self.asset_id, self.path, self.size = asset_id, path, size
        self.created, self.modified = created, modified
        self.blob, self.zarr = blob, zarr
        self._metadata = metadata
        self._sha256, self._format, self._schema_version = sha256, encoding_format, schema_version

    @classmethod
    def from_record(cls, record: dict) -> Asset:
        try:
            return cls(
                asset_id=record["asset_id"], path=record["path"], size=int(record["size"]),
                created=record["created"], modified=record["modified"],
                blob=record.get("blob"), zarr=record.get("zarr"),
                metadata=record.get("metadata") or {},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ArchiveFolderError(f"asset record without {e}: {str(record)[:200]}") from e

    @property
    def s3_url(self) -> str:
        """The public S3 URL of the content (a prefix ending in '/' for a zarr)."""
        if self.zarr:
            return f"{PUBLIC_S3_URL}/{zarr_key(self.zarr)}"
        return f"{PUBLIC_S3_URL}/{blob_key(self.blob or '')}"

    @property
    def metadata(self) -> dict:
        # made up afresh each time: caching would keep ~57 000 dicts alive for a large listing
        return self._metadata if self._metadata is not None else self._synthesize_metadata()

    def _synthesize_metadata(self) -> dict:
        digest = {"dandi:sha2-256": self._sha256} if self._sha256 else {}
        return {
            "id": f"dandiasset:{self.asset_id}",
            "identifier": self.asset_id,
            "schemaKey": "Asset",
            "schemaVersion": self._schema_version or "0.6.0",
            "path": self.path,
            "contentSize": self.size,
            "encodingFormat": self._format or _guess_format(self.path),
            "digest": digest,
            "contentUrl": [f"{PUBLIC_API_URL}/assets/{self.asset_id}/download/", self.s3_url],
            "access": [{"schemaKey": "AccessRequirements", "status": "dandi:OpenAccess"}],
            "dateModified": self.modified,
            "wasGeneratedBy": [{
                "schemaKey": "Activity",
                "name": "DANDI Hub local archive",
                "description": "Minimal metadata made up from an asset listing"
                               " (the real record was not available)",
            }],
        }


@dataclass(frozen=True)
class PathNode:
    """An entry of folder browsing: a folder (asset None) or a file, with aggregates."""

    path: str
    aggregate_files: int
    aggregate_size: int
    asset: Asset | None


class AssetIndex:
    """The assets of a version, indexed by id and path, with a folder tree.

    Published versions without their own assets file share the draft's index.
    """

    def __init__(self, assets: list[Asset]) -> None:
        self.assets = sorted(assets, key=lambda a: a.path)
        self.by_id = {a.asset_id: a for a in self.assets}
        self.by_path = {a.path: a for a in self.assets}
        self.size = sum(a.size for a in self.assets)
        self._orderings: dict[tuple[str, ...], list[Asset]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.assets)

    def ordered(self, fields: tuple[str, ...]) -> list[Asset]:
        """All assets sorted by ``fields`` (created, modified, path; '-' reverses), cached."""
        with self._lock:
            cached = self._orderings.get(fields)
        if cached is not None:
            return cached
        result = list(self.assets)  # already by path: the final tie-breaker
        for name in reversed(fields):
            result.sort(key=operator.attrgetter(name.lstrip("-")), reverse=name[0] == "-")
        with self._lock:
            self._orderings[fields] = result
        return result

    @cached_property
    def _tree(self) -> tuple[dict[str, list[int]], dict[str, list[str]]]:
        """Folder aggregates ([files, size] by folder path, '' = root) and children."""
        totals: dict[str, list[int]] = {"": [0, 0]}
        children: dict[str, list[str]] = {"": []}
        for asset in self.assets:
            parent = ""
            parts = asset.path.split("/")
            totals[""][0] += 1
            totals[""][1] += asset.size
            for i, part in enumerate(parts[:-1]):
                folder = part if i == 0 else f"{parent}/{part}"
                agg = totals.get(folder)
                if agg is None:
                    totals[folder] = agg = [0, 0]
                    children[folder] = []
                    children[parent].append(folder)
                agg[0] += 1
                agg[1] += asset.size
                parent = folder
            children[parent].append(asset.path)
        for names in children.values():
            names.sort()
        return totals, children

    def children(self, folder: str) -> list[PathNode] | None:
        """Direct children of ``folder`` ('' = root), sorted by path; None if no such path.

        Like the archive's ``paths/`` endpoint: a trailing '/' is ignored, and a
        file has no children.
        """
        folder = folder.rstrip("/")
        totals, children = self._tree
        if folder in self.by_path:
            return []
        if folder not in totals:
            return None
        nodes = []
        for path in children[folder]:
            asset = self.by_path.get(path)
            if asset is not None:
                nodes.append(PathNode(path, 1, asset.size, asset))
            else:
                files, size = totals[path]
                nodes.append(PathNode(path, files, size, None))
        return nodes


@dataclass
class Version:
    """A version of a Dandiset: its metadata and (lazily) its assets."""

    dandiset: Dandiset = field(repr=False)
    version: str
    metadata: dict = field(repr=False)
    created: str
    modified: str
    number: int  # a stable integer id, like the archive's primary key
    _assets_file: Path | None = None
    _listing_file: Path | None = None
    #: a published version without its own assets file shares the draft's
    shares_with: Version | None = field(default=None, repr=False)
    _index: AssetIndex | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.metadata.get("name", "")

    @property
    def status(self) -> str:
        return "Valid" if self.version == DRAFT else "Published"

    @property
    def assets(self) -> AssetIndex:
        if self.shares_with is not None:
            return self.shares_with.assets
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = self._load_assets()
        return self._index

    def _load_assets(self) -> AssetIndex:
        if self._assets_file is not None:
            records = _read_json(self._assets_file)
            if not isinstance(records, list):
                raise ArchiveFolderError(f"{self._assets_file}: expected a list of asset records")
            return AssetIndex([Asset.from_record(r) for r in records])
        if self._listing_file is not None:
            return AssetIndex(list(self._read_listing(self._listing_file)))
        return AssetIndex([])

    def _read_listing(self, path: Path) -> Iterator[Asset]:
        """Minimal records from a listing; rows without ids get stable made-up ones."""
        ident = self.dandiset.identifier
        schema_version = self.metadata.get("schemaVersion")
        date = self.modified
        with _open_text(path) as f:
            rows = csv.reader(f, delimiter="\t")
            header = next(rows, [])
            col = {name: i for i, name in enumerate(header)}
            missing = {"path", "size"} - col.keys()
            if missing:
                raise ArchiveFolderError(f"{path}: no column(s) {', '.join(sorted(missing))}")
            # absent columns read the empty cell padded at the end of every row
            width = len(header)
            c_path, c_size, c_storage, c_backend, c_hash, c_id, c_blob, c_zarr, c_format = (
                col.get(name, width) for name in (
                    "path", "size", "storage", "key_backend", "key_hash",
                    "asset_id", "blob", "zarr", "encodingFormat",
                )
            )
            for line, row in enumerate(rows, start=2):
                if len(row) <= width:
                    row += [""] * (width + 1 - len(row))
                p = row[c_path]
                if not p or p == "dandiset.yaml":
                    continue  # dandiset.yaml is the Dandiset's metadata, not an asset
                sha = row[c_hash] if row[c_backend].startswith("SHA256") else ""
                zarr, blob = row[c_zarr], row[c_blob]
                if not zarr and row[c_storage] == "zarr-submodule":
                    zarr = stable_uuid(f"zarr:{ident}/{p}")
                if not zarr and not blob:
                    blob = stable_uuid(f"blob:{sha or ident + '/' + p}")
                try:
                    size = max(int(row[c_size] or 0), 0)  # -1: unknown (zarrs in listings)
                except ValueError:
                    raise ArchiveFolderError(f"{path}:{line}: size {row[c_size]!r}") from None
                yield Asset(
                    asset_id=row[c_id] or stable_uuid(f"asset:{ident}/{p}"),
                    path=p, size=size,
                    created=date, modified=date, blob=blob or None, zarr=zarr or None,
                    metadata=None, sha256=sha or None, encoding_format=row[c_format] or None,
                    schema_version=schema_version,
                )


@dataclass
class Dandiset:
    """A Dandiset: identity, dates, owners and its versions (draft first)."""

    identifier: str
    created: str
    modified: str
    contact_person: str
    embargo_status: str
    owners: list[str]
    versions: dict[str, Version] = field(repr=False)  # by version id, ordered by creation

    @property
    def draft(self) -> Version:
        return self.versions[DRAFT]

    @property
    def most_recent_published(self) -> Version | None:
        published = [v for k, v in self.versions.items() if k != DRAFT]
        return max(published, key=lambda v: v.version) if published else None

    @property
    def latest(self) -> Version:
        """The most recently created version (what the archive orders names by)."""
        return self.most_recent_published or self.draft

    @cached_property
    def search_text(self) -> str:
        """Lower-cased metadata of all versions, for ``search=`` (like the archive's)."""
        return "\n".join(
            [self.identifier]
            + [json.dumps(v.metadata, ensure_ascii=False).lower() for v in self.versions.values()]
        )


@dataclass(frozen=True)
class User:
    username: str
    first_name: str
    last_name: str
    email: str
    status: str
    api_key: str
    admin: bool
    created: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class Embargo:
    """What embargoed Dandisets hold: blob and zarr ids, each with the Dandisets (ids)
    that may reveal it. Content is embargoed when any embargoed Dandiset refers to it."""

    blobs: dict[str, frozenset[str]]
    zarrs: dict[str, frozenset[str]]

    def s3_keys(self) -> list[str]:
        """The S3 keys (blobs) and prefixes (zarrs, ending in '/') no one may read anonymously."""
        return sorted([blob_key(b) for b in self.blobs] + [zarr_key(z) for z in self.zarrs])


@dataclass(frozen=True)
class ZarrFile:
    key: str
    size: int
    etag: str
    last_modified: str


class ArchiveStore:
    """An archive folder, loaded lazily. Construct with the folder's path."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        if not ((self.root / "dandisets").is_dir() or (self.root / "archive.json").is_file()):
            raise ArchiveFolderError(
                f"{self.root} is not an archive folder: it has neither dandisets/ nor archive.json"
            )
        accounts = self.root / "archive.json"
        info = _read_json(accounts) if accounts.is_file() else {}
        self.name: str = info.get("name", self.root.name)
        joined = _mtime(accounts) if accounts.is_file() else _FALLBACK_DATE
        self.users: list[User] = [self._user(u, joined) for u in info.get("users", [])]
        self._dandisets: dict[str, Dandiset] = {}
        self._lock = threading.RLock()
        self._version_numbers = iter(range(1, 1 << 62))
        self._zarr_listings: dict[str, list[ZarrFile]] = {}

    @staticmethod
    def _user(u: dict, joined: str) -> User:
        try:
            return User(
                username=u["username"], first_name=u.get("first_name", ""),
                last_name=u.get("last_name", ""), email=u.get("email", ""),
                status=u.get("status", "APPROVED"), api_key=u["api_key"],
                admin=bool(u.get("admin", False)), created=u.get("created", joined),
            )
        except KeyError as e:
            raise ArchiveFolderError(f"archive.json: a user has no {e}: {u!r}") from e

    # --- Dandisets -----------------------------------------------------------

    def dandiset_ids(self) -> list[str]:
        base = self.root / "dandisets"
        if not base.is_dir():
            return []
        return sorted(
            p.name for p in base.iterdir()
            if p.is_dir() and _DANDISET_ID_RE.match(p.name)
            and _existing(p, "draft.metadata.json") is not None
        )

    def dandiset(self, identifier: str) -> Dandiset | None:
        """The Dandiset, loaded on first access; None if the folder has none by that id."""
        if not _DANDISET_ID_RE.match(identifier):
            return None
        with self._lock:
            if identifier not in self._dandisets:
                folder = self.root / "dandisets" / identifier
                if _existing(folder, "draft.metadata.json") is None:
                    return None
                self._dandisets[identifier] = self._load_dandiset(folder)
            return self._dandisets[identifier]

    def dandisets(self) -> list[Dandiset]:
        return [d for d in (self.dandiset(i) for i in self.dandiset_ids()) if d is not None]

    def version(self, identifier: str, version: str) -> Version | None:
        d = self.dandiset(identifier)
        return None if d is None else d.versions.get(version)

    def _load_dandiset(self, folder: Path) -> Dandiset:
        ident = folder.name
        metadata = {}
        for path in folder.iterdir():
            m = re.match(r"^(.+)\.metadata\.json(\.gz)?$", path.name)
            if m and _VERSION_RE.match(m.group(1)):
                metadata[m.group(1)] = _read_json(path)
        draft_md = metadata[DRAFT]
        info_file = _existing(folder, "dandiset.json")
        info = _read_json(info_file) if info_file else {}
        published = sorted(k for k in metadata if k != DRAFT)
        created = info.get("created") or draft_md.get("dateCreated") or _FALLBACK_DATE
        modified = info.get("modified") or max(
            [created] + [metadata[v].get("datePublished") or created for v in published]
        )
        dandiset = Dandiset(
            identifier=ident, created=created, modified=modified,
            contact_person=info.get("contact_person")
            or contact_person(metadata[published[-1]] if published else draft_md),
            embargo_status=info.get("embargo_status", "OPEN"),
            owners=list(info.get("owners", [])),
            versions={},
        )
        draft_assets = _existing(folder, "draft.assets.json")
        listing = _existing(folder, "draft.asset_listing.tsv")
        draft = Version(
            dandiset, DRAFT, draft_md, created=created, modified=modified,
            number=next(self._version_numbers),
            _assets_file=draft_assets, _listing_file=None if draft_assets else listing,
        )
        dandiset.versions[DRAFT] = draft
        for v in published:
            md = metadata[v]
            date = md.get("datePublished") or modified
            own = _existing(folder, f"{v}.assets.json")
            dandiset.versions[v] = Version(
                dandiset, v, md, created=date, modified=date,
                number=next(self._version_numbers), _assets_file=own,
                shares_with=None if own else draft,
            )
        return dandiset

    # --- Assets across Dandisets -------------------------------------------

    def find_asset(self, asset_id: str) -> tuple[Version, Asset] | None:
        """An asset by id in any version of any Dandiset (loads what it must)."""
        for d in self.dandisets():
            for v in d.versions.values():
                asset = v.assets.by_id.get(asset_id)
                if asset is not None:
                    return v, asset
        return None

    # --- Content -------------------------------------------------------------

    def blob_file(self, blob_id: str) -> Path | None:
        """The file holding a blob's bytes, or None for a metadata-only blob."""
        if not blob_id or "/" in blob_id or blob_id.startswith("."):
            return None
        path = self.root / "blobs" / blob_id
        return path if path.is_file() else None

    def blob_files(self) -> Iterator[tuple[str, Path]]:
        folder = self.root / "blobs"
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    yield path.name, path

    def zarr_folder(self, zarr_id: str) -> Path | None:
        """The folder holding a zarr's keys, or None when the zarr has no content here."""
        if not zarr_id or "/" in zarr_id or zarr_id.startswith("."):
            return None
        path = self.root / "zarr" / zarr_id
        return path if path.is_dir() else None

    def zarr_ids_with_content(self) -> list[str]:
        folder = self.root / "zarr"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir())

    def zarr_files(self, zarr_id: str) -> list[ZarrFile] | None:
        """Every key of a zarr (sorted), from its content or its listing; None if neither."""
        with self._lock:
            if zarr_id in self._zarr_listings:
                return self._zarr_listings[zarr_id]
        files: list[ZarrFile] | None = None
        folder = self.zarr_folder(zarr_id)
        if folder is not None:
            files = []
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                key = path.relative_to(folder).as_posix()
                files.append(ZarrFile(key, path.stat().st_size, _md5(path), _mtime(path)))
        elif zarr_id and "/" not in zarr_id:
            listing = _existing(self.root / "zarr", f"{zarr_id}.files.tsv")
            if listing is not None:
                files = []
                listed = _mtime(listing)  # when the listing has no last_modified column
                with _open_text(listing) as f:
                    for row in csv.DictReader(f, delimiter="\t"):
                        files.append(ZarrFile(
                            row["key"], int(row.get("size") or 0),
                            row.get("md5_etag") or "", row.get("last_modified") or listed,
                        ))
                files.sort(key=lambda z: z.key)
        if files is not None:
            with self._lock:
                self._zarr_listings[zarr_id] = files
        return files

    def find_zarr(self, zarr_id: str) -> tuple[Version, Asset] | None:
        """The (draft-first) asset whose content is this zarr, if any."""
        for d in self.dandisets():
            for v in d.versions.values():
                for asset in v.assets.assets:
                    if asset.zarr == zarr_id:
                        return v, asset
        return None

    # --- Embargo -------------------------------------------------------------

    @cached_property
    def embargo(self) -> Embargo:
        """The blobs and zarrs of embargoed Dandisets (loads those Dandisets' assets once;
        the folder is read at start, so this holds until a restart)."""
        blobs: dict[str, set[str]] = {}
        zarrs: dict[str, set[str]] = {}
        for d in self.dandisets():
            if d.embargo_status == "OPEN":
                continue
            for v in d.versions.values():
                for asset in v.assets.assets:
                    if asset.blob:
                        blobs.setdefault(asset.blob, set()).add(d.identifier)
                    if asset.zarr:
                        zarrs.setdefault(asset.zarr, set()).add(d.identifier)
        return Embargo(
            {k: frozenset(v) for k, v in blobs.items()}, {k: frozenset(v) for k, v in zarrs.items()}
        )

    # --- Users ---------------------------------------------------------------

    def user_by_key(self, api_key: str) -> User | None:
        for user in self.users:
            if user.api_key == api_key:
                return user
        return None


def _md5(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()


__all__ = [
    "PUBLIC_API_URL", "PUBLIC_S3_URL", "ArchiveFolderError", "ArchiveStore", "Asset",
    "AssetIndex", "Dandiset", "Embargo", "PathNode", "User", "Version", "ZarrFile",
    "blob_key", "contact_person", "zarr_key",
]
