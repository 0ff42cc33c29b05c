"""The read-only DANDI REST API over an ``ArchiveStore``, as a FastAPI app.

Routes, response shapes, pagination and errors follow dandi-archive (its DRF
views and serializers), so that the ``dandi`` client and ``dandilab`` work
unchanged. Records keep the public archive's URLs on disk; every served JSON
body has them rewritten to this server's API root and S3 bucket URL.

Pagination is DRF's page-number pagination (``page``, ``page_size`` default
100, clamped to 1000, invalid values fall back to the default). Like the
archive, Dandiset listings carry ``count`` on every page, and the other
listings (versions, assets, paths) only on the first (``null`` after).
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .oauth import mount as mount_oauth
from .store import (
    PUBLIC_API_URL,
    PUBLIC_S3_URL,
    ArchiveFolderError,
    ArchiveStore,
    Asset,
    Dandiset,
    User,
    Version,
    blob_key,
    contact_person,
    zarr_key,
)

try:  # the schema the installed dandi client speaks, when there is one
    from dandischema.consts import ALLOWED_INPUT_SCHEMAS, DANDI_SCHEMA_VERSION
except ImportError:  # pragma: no cover - the hub image has no dandischema
    DANDI_SCHEMA_VERSION = "0.6.10"
    ALLOWED_INPUT_SCHEMAS = ["0.4.4", "0.5.1", "0.5.2", "0.6.0", DANDI_SCHEMA_VERSION]

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
ZARR_LIST_LIMIT = 1000
CLI_MINIMAL_VERSION = "0.60.0"
_USERNAME_RE = re.compile(r"^[\w.@+-]+\Z")
_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


class ApiError(Exception):
    """An error answered as DRF does: ``{"detail": ...}`` with a status code."""

    def __init__(self, status: int, detail: Any, headers: dict | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, detail)


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ApiError(400, {"detail": f"Must be a valid boolean, not {value!r}."})


# --- pagination (DRF PageNumberPagination + dandi-archive's LazyPagination) ---


def _replace_query_param(url: str, key: str, value: Any | None) -> str:
    """DRF's replace_query_param/remove_query_param (value None removes)."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    if value is None:
        params.pop(key, None)
    else:
        params[key] = [str(value)]
    return urlunsplit((scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment))


def _page_size(raw: str | None) -> int:
    try:
        size = int(raw) if raw is not None else PAGE_SIZE
    except ValueError:
        return PAGE_SIZE
    return PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)


def paginate(
    request: Request, items: Sequence, serialize: Callable[[Any], Any], *, count_always: bool = False
) -> dict:
    """One page of ``items`` in the archive's envelope: count, next, previous, results."""
    raw_page = request.query_params.get("page", "1")
    try:
        page = int(raw_page)
    except ValueError:
        raise not_found("Invalid page.") from None
    size = _page_size(request.query_params.get("page_size"))
    start = (page - 1) * size
    if page < 1 or (count_always and page > 1 and start >= len(items)):
        raise not_found("Invalid page.")
    url = str(request.url)
    has_next = len(items) > start + size
    return {
        "count": len(items) if (page == 1 or count_always) else None,
        "next": _replace_query_param(url, "page", page + 1) if has_next else None,
        "previous": None if page == 1
        else _replace_query_param(url, "page", None if page == 2 else page - 1),
        "results": [serialize(item) for item in items[start:start + size]],
    }


# --- the app ----------------------------------------------------------------


def create_app(
    store: ArchiveStore,
    api_url: str,
    s3_url: str,
    *,
    web_url: str | None = None,
    hub_url: str | None = None,
    presign: Callable[[str, str], str] | None = None,
) -> FastAPI:
    """The archive API for ``store``, reachable at ``api_url`` (ending in ``/api``).

    ``s3_url`` is the bucket's URL (objects at ``{s3_url}/{key}``). ``web_url``
    and ``hub_url`` are advertised in ``/api/info/`` when given. ``presign(key, method)``
    (``BlobStore.presigned_url``) makes the short-lived signed URLs that embargoed content
    is redirected to, as the archive hands out S3 presigned URLs; without it (an S3 store
    with no access control) those redirects are plain URLs too.
    """
    api_url = api_url.rstrip("/")
    s3_url = s3_url.rstrip("/")
    rewrites = [(PUBLIC_API_URL, api_url), (PUBLIC_S3_URL, s3_url)]

    class JSON(Response):
        """JSON with the public archive's URLs rewritten to this server's."""

        media_type = "application/json"

        def render(self, content: Any) -> bytes:
            text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
            for public, local in rewrites:
                text = text.replace(public, local)
            return text.encode("utf-8")

    app = FastAPI(
        title=f"DANDI local archive: {store.name}",
        docs_url="/api/docs/swagger/", redoc_url="/api/docs/redoc/",
        openapi_url="/api/docs/openapi.json", default_response_class=JSON,
    )
    app.state.store = store

    # --- errors: always the archive's JSON, never an HTML page or a 500 page --

    @app.exception_handler(ApiError)
    def _api_error(request: Request, exc: ApiError) -> Response:
        body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        return JSON(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = "Not found." if exc.status_code == 404 else exc.detail
        headers = getattr(exc, "headers", None)
        return JSON({"detail": detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return JSON({"detail": str(exc)}, status_code=400)

    @app.exception_handler(ArchiveFolderError)
    def _folder_error(request: Request, exc: ArchiveFolderError) -> Response:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSON({"detail": f"The local archive's folder is broken: {exc}"}, status_code=500)

    @app.exception_handler(Exception)
    def _server_error(request: Request, exc: Exception) -> Response:
        return JSON(
            {"detail": f"The local archive failed: {type(exc).__name__}: {exc}"}, status_code=500
        )

    # --- authentication: API keys (DRF TokenAuthentication) and, like the archive's
    # django-oauth-toolkit, OAuth access tokens ("Bearer") from /oauth/token/ -----------

    oauth = app.state.oauth = mount_oauth(app, store)

    def current_user(request: Request) -> User | None:
        header = request.headers.get("authorization", "")
        parts = header.split()
        if not parts or parts[0].lower() not in ("token", "bearer"):
            return None
        bearer = parts[0].lower() == "bearer"
        unauthorized = {"WWW-Authenticate": 'Bearer realm="api"' if bearer else "Token"}
        if len(parts) == 1:
            raise ApiError(401, "Invalid token header. No credentials provided.", unauthorized)
        if len(parts) > 2:
            raise ApiError(401, "Invalid token header. Token string should not contain spaces.",
                           unauthorized)
        user = oauth.user_for_access_token(parts[1]) if bearer else store.user_by_key(parts[1])
        if user is None:
            raise ApiError(401, "Invalid token.", unauthorized)
        return user

    def require_user(request: Request, approved: bool) -> User:
        user = current_user(request)
        if user is None:
            raise ApiError(401, "Authentication credentials were not provided.",
                           {"WWW-Authenticate": "Token"})
        if approved and not (user.admin or user.status == "APPROVED"):
            raise ApiError(403, "You do not have permission to perform this action.")
        return user

    def visible(dandiset: Dandiset, user: User | None) -> bool:
        return dandiset.embargo_status == "OPEN" or (
            user is not None and (user.admin or user.username in dandiset.owners)
        )

    # --- lookups ----------------------------------------------------------

    def refuse(user: User | None) -> ApiError:
        """As the archive's views refuse an embargoed resource: NotAuthenticated for an
        anonymous caller, PermissionDenied for one who does not own it."""
        if user is None:
            return ApiError(401, "Authentication credentials were not provided.")
        return ApiError(403, "You do not have permission to perform this action.")

    def get_dandiset(request: Request, dandiset_id: str) -> Dandiset:
        user = current_user(request)
        dandiset = store.dandiset(dandiset_id)
        if dandiset is None:
            raise not_found()
        if not visible(dandiset, user):
            raise refuse(user)
        return dandiset

    def check_zarr(request: Request, zarr_id: str) -> None:
        """A zarr of an embargoed Dandiset is for whoever may see one of its Dandisets."""
        holders = store.embargo.zarrs.get(zarr_id)
        if holders is None:
            return
        user = current_user(request)
        if not any(visible(store.dandiset(d), user) for d in holders):
            raise refuse(user)

    def content_url(request: Request, key: str, embargoed: bool) -> str:
        """Where a redirect to S3 goes: a presigned URL (for the request's method, which
        the signature covers) for embargoed content, else the public object URL."""
        if embargoed and presign is not None:
            return presign(key, "HEAD" if request.method == "HEAD" else "GET")
        return f"{s3_url}/{quote(key, safe='/')}"

    def get_version(request: Request, dandiset_id: str, version_id: str) -> Version:
        version = get_dandiset(request, dandiset_id).versions.get(version_id)
        if version is None:
            raise not_found()
        return version

    def get_asset(request: Request, dandiset_id: str, version_id: str, asset_id: str) -> Asset:
        asset = get_version(request, dandiset_id, version_id).assets.by_id.get(asset_id)
        if asset is None:
            raise not_found()
        return asset

    def find_asset(request: Request, asset_id: str) -> Asset:
        found = store.find_asset(asset_id)
        if found is None:
            raise not_found()
        version, asset = found
        get_dandiset(request, version.dandiset.identifier)  # embargo check
        return asset

    # --- serializers (dandi-archive's, field for field) ----------------------

    def dandiset_fields(d: Dandiset) -> dict:
        return {
            "identifier": d.identifier, "created": d.created, "modified": d.modified,
            "contact_person": d.contact_person, "embargo_status": d.embargo_status,
        }

    def version_fields(v: Version, nested_dandiset: bool = True) -> dict:
        index = v.assets
        fields = {
            "version": v.version, "name": v.name, "asset_count": len(index), "size": index.size,
            "status": v.status, "created": v.created, "modified": v.modified,
        }
        if nested_dandiset:
            fields["dandiset"] = dandiset_fields(v.dandiset)
        return fields

    def dandiset_detail(d: Dandiset, nested: bool = True) -> dict:
        published = d.most_recent_published
        return {
            **dandiset_fields(d),
            "most_recent_published_version": version_fields(published, nested) if published
            else None,
            "draft_version": version_fields(d.draft, nested),
        }

    def version_info(v: Version) -> dict:
        return {
            **version_fields(v), "asset_validation_errors": [], "version_validation_errors": [],
            "metadata": v.metadata, "contact_person": contact_person(v.metadata),
        }

    def asset_metadata(a: Asset) -> dict:
        return {
            **a.metadata,
            "contentUrl": [f"{PUBLIC_API_URL}/assets/{a.asset_id}/download/", a.s3_url],
        }

    def asset_record(a: Asset, metadata: bool = True) -> dict:
        record = {
            "asset_id": a.asset_id, "blob": a.blob, "zarr": a.zarr, "path": a.path,
            "size": a.size, "created": a.created, "modified": a.modified,
        }
        if metadata:
            record["metadata"] = asset_metadata(a)
        return record

    def download(request: Request, asset: Asset) -> Response:
        if asset.zarr:
            return JSON(
                "Unable to provide download link for zarr assets."
                " Please browse the zarr files directly to do so.", status_code=400,
            )
        if asset.blob is None or store.blob_file(asset.blob) is None:
            raise not_found(
                f"The content of asset {asset.asset_id} ({asset.path}) is not held by this"
                " local archive: only its metadata is. Read it from the public DANDI archive,"
                " or put its bytes in the archive folder's blobs/ to serve it here."
            )
        return RedirectResponse(
            content_url(request, blob_key(asset.blob), asset.blob in store.embargo.blobs),
            status_code=302,
        )

    # --- routes -----------------------------------------------------------

    def get(path: str):
        """A GET route that also answers HEAD, as DRF's do."""
        return app.api_route(path, methods=["GET", "HEAD"])

    @get("/")
    def web_home() -> Response:
        # The hub's "find your key" link points at the archive's web root (web_url): say here
        # how a key is had on this archive, since it has no web UI to show one in.
        return Response(key_help_page(store), media_type="text/html; charset=utf-8")

    @get("/api/info/")
    def info() -> Response:
        return JSON({
            "instance_config": {
                "instance_name": "DANDI", "instance_identifier": None, "instance_url": None,
                "doi_prefix": None, "licenses": ["spdx:CC0-1.0", "spdx:CC-BY-4.0"],
            },
            "schema_version": DANDI_SCHEMA_VERSION,
            "schema_url": f"{api_url}/schemas/?model=Dandiset",
            "allowed_schema_versions": list(ALLOWED_INPUT_SCHEMAS),
            "version": "0.0.0+dandihub.localarchive",
            "cli-minimal-version": CLI_MINIMAL_VERSION,
            "cli-bad-versions": [],
            "services": {
                "api": {"url": api_url},
                "webui": {"url": web_url} if web_url else None,
                "jupyterhub": {"url": hub_url} if hub_url else None,
                "s3": {"url": s3_url},
            },
        })

    @get("/api/dandisets/")
    def dandisets(request: Request) -> Response:
        q = request.query_params
        user = current_user(request)
        items = [d for d in store.dandisets() if visible(d, user)]
        if q.get("user") == "me":
            items = [d for d in items if user is not None and user.username in d.owners]
        if not _bool(q.get("draft"), True):
            items = [d for d in items if d.most_recent_published is not None]
        if not _bool(q.get("embargoed"), True):
            items = [d for d in items if d.embargo_status == "OPEN"]
        if not _bool(q.get("empty"), True):
            items = [d for d in items if len(d.draft.assets) > 0]
        # Like dandi-archive's DandisetSearchFilter: the whole term, as one case-insensitive
        # substring of a version's metadata as text ("mouse ALM" does not find 000006).
        term = q.get("search", "").replace("\x00", "").strip().lower()
        if term:
            items = [d for d in items if term in d.search_text]
        items.sort(key=lambda d: d.created)
        for term in q.get("ordering", "").split(","):
            key = _DANDISET_ORDERINGS.get(term.strip().lstrip("-"))
            if key is not None:
                items.sort(key=key, reverse=term.strip().startswith("-"))
                break
        return JSON(paginate(request, items, lambda d: dandiset_detail(d, nested=False),
                             count_always=True))

    @get("/api/dandisets/{dandiset_id}/")
    def dandiset(request: Request, dandiset_id: str) -> Response:
        return JSON(dandiset_detail(get_dandiset(request, dandiset_id)))

    @get("/api/dandisets/{dandiset_id}/versions/")
    def versions(request: Request, dandiset_id: str) -> Response:
        items = sorted(get_dandiset(request, dandiset_id).versions.values(), key=lambda v: v.created)
        order = request.query_params.get("order", "")
        if order.lstrip("-") == "created":
            items.sort(key=lambda v: v.created, reverse=order.startswith("-"))
        return JSON(paginate(request, items, version_fields))

    @get("/api/dandisets/{dandiset_id}/versions/{version_id}/")
    def version(request: Request, dandiset_id: str, version_id: str) -> Response:
        return JSON(get_version(request, dandiset_id, version_id).metadata)

    @get("/api/dandisets/{dandiset_id}/versions/{version_id}/info/")
    def version_info_view(request: Request, dandiset_id: str, version_id: str) -> Response:
        return JSON(version_info(get_version(request, dandiset_id, version_id)))

    @get("/api/dandisets/{dandiset_id}/versions/{version_id}/assets/")
    def assets(request: Request, dandiset_id: str, version_id: str) -> Response:
        q = request.query_params
        index = get_version(request, dandiset_id, version_id).assets
        fields = tuple(
            f for f in (t.strip() for t in q.get("order", "").split(","))
            if f.lstrip("-") in ("created", "modified", "path")
        ) or ("created",)
        items = index.ordered(fields)
        if q.get("path"):
            prefix = q["path"].lower()
            items = [a for a in items if a.path.lower().startswith(prefix)]
        if q.get("glob") is not None:
            pattern = re.compile(
                "^" + re.escape(q["glob"]).replace(r"\*", ".*") + "$", re.IGNORECASE | re.DOTALL
            )
            items = [a for a in items if pattern.match(a.path)]
        with_metadata = _bool(q.get("metadata"), False)
        return JSON(paginate(request, items, lambda a: asset_record(a, with_metadata)))

    @get("/api/dandisets/{dandiset_id}/versions/{version_id}/assets/paths/")
    def asset_paths(request: Request, dandiset_id: str, version_id: str) -> Response:
        v = get_version(request, dandiset_id, version_id)
        nodes = v.assets.children(request.query_params.get("path_prefix", ""))
        if nodes is None:
            raise not_found("Specified path not found.")
        return JSON(paginate(request, nodes, lambda n: {
            "path": n.path, "version": v.number,
            "aggregate_files": n.aggregate_files, "aggregate_size": n.aggregate_size,
            "asset": {"asset_id": n.asset.asset_id, "url": n.asset.s3_url} if n.asset else None,
        }))

    @get("/api/dandisets/{dandiset_id}/versions/{version_id}/assets/{asset_id}/")
    def version_asset(
        request: Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> Response:
        return JSON(asset_metadata(get_asset(request, dandiset_id, version_id, asset_id)))

    @get("/api/dandisets/{dandiset_id}/versions/{version_id}/assets/{asset_id}/info/")
    def version_asset_info(
        request: Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> Response:
        return JSON(asset_record(get_asset(request, dandiset_id, version_id, asset_id)))

    @app.api_route(
        "/api/dandisets/{dandiset_id}/versions/{version_id}/assets/{asset_id}/download/",
        methods=["GET", "HEAD"],
    )
    def version_asset_download(
        request: Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> Response:
        return download(request, get_asset(request, dandiset_id, version_id, asset_id))

    @get("/api/assets/{asset_id}/")
    def asset(request: Request, asset_id: str) -> Response:
        return JSON(asset_metadata(find_asset(request, asset_id)))

    @get("/api/assets/{asset_id}/info/")
    def asset_info(request: Request, asset_id: str) -> Response:
        return JSON(asset_record(find_asset(request, asset_id)))

    @app.api_route("/api/assets/{asset_id}/download/", methods=["GET", "HEAD"])
    def asset_download(request: Request, asset_id: str) -> Response:
        return download(request, find_asset(request, asset_id))

    @get("/api/zarr/{zarr_id}/")
    def zarr(request: Request, zarr_id: str) -> Response:
        found = store.find_zarr(zarr_id)
        files = store.zarr_files(zarr_id)
        if found is None and files is None:
            raise not_found()
        check_zarr(request, zarr_id)
        checksum = None
        if found is not None:
            checksum = found[1].metadata.get("digest", {}).get("dandi:dandi-zarr-checksum")
        return JSON({
            "name": found[1].path if found else zarr_id,
            "dandiset": found[0].dandiset.identifier if found else None,
            "zarr_id": zarr_id,
            "status": "Complete",
            "checksum": checksum,
            "file_count": len(files) if files is not None else 0,
            "size": sum(f.size for f in files) if files is not None else found[1].size,
        })

    @app.api_route("/api/zarr/{zarr_id}/files/", methods=["GET", "HEAD"])
    def zarr_files(request: Request, zarr_id: str) -> Response:
        """Keys of a zarr, like the archive: ``prefix``, ``after``, ``limit``, ``download``."""
        q = request.query_params
        prefix = q.get("prefix", "").lstrip("/")
        files = store.zarr_files(zarr_id)
        if files is None:
            if store.find_zarr(zarr_id) is None:
                raise not_found()
            files = []
        check_zarr(request, zarr_id)
        if request.method == "HEAD" or _bool(q.get("download"), False):
            if store.zarr_folder(zarr_id) is None:
                raise not_found(
                    f"The content of zarr {zarr_id} is not held by this local archive:"
                    " only its listing is. Read it from the public DANDI archive."
                )
            return RedirectResponse(
                content_url(request, zarr_key(zarr_id, prefix), zarr_id in store.embargo.zarrs),
                status_code=302,
            )
        try:
            limit = int(q.get("limit", ZARR_LIST_LIMIT))
        except ValueError:
            raise ApiError(400, {"limit": ["A valid integer is required."]}) from None
        if not 0 <= limit <= ZARR_LIST_LIMIT:
            raise ApiError(400, {"limit": [f"Ensure this value is between 0 and {ZARR_LIST_LIMIT}."]})
        after = q.get("after", "").lstrip("/").rstrip("/")
        prefix = prefix.rstrip("/")
        selected = [f for f in files if f.key.startswith(prefix) and (not after or f.key > after)]
        page = selected[:limit]
        next_url = None
        if len(selected) > limit and page:
            next_url = _replace_query_param(str(request.url), "after", page[-1].key)
        return JSON({
            "next": next_url,
            "results": [
                {"Key": f.key, "LastModified": f.last_modified, "ETag": f.etag, "Size": f.size}
                for f in page
            ],
        })

    @get("/api/users/me/")
    def users_me(request: Request) -> Response:
        return JSON(user_fields(require_user(request, approved=False)))

    @get("/api/users/search/")
    def users_search(request: Request) -> Response:
        require_user(request, approved=True)
        username = request.query_params.get("username", "")
        if not _USERNAME_RE.match(username):
            return JSON([])  # like the archive: an invalid name finds nobody
        needle = username.lower()
        matches = [
            u for u in sorted(store.users, key=lambda u: u.created)
            if u.status == "APPROVED" and any(
                needle in s.lower() for s in (u.username, u.first_name, u.last_name)
            )
        ]
        return JSON([user_fields(u) for u in matches[:10]])

    @get("/api/auth/token/")
    def auth_token(request: Request) -> Response:
        return JSON(require_user(request, approved=True).api_key)

    return app


_STATUS_NOTES = {
    "APPROVED": "approved: signs in",
    "PENDING": "pending approval: the hub refuses it and says why",
    "REJECTED": "rejected: the hub refuses it and says why",
}


def key_help_page(store: ArchiveStore) -> str:
    """The archive's web root: how to get an API key here, and the accounts (never their keys)."""
    rows = "".join(
        f"<tr><td><code>{html.escape(u.username)}</code></td><td>{html.escape(u.name)}</td>"
        f"<td>{html.escape(_STATUS_NOTES.get(u.status, u.status.lower()))}"
        f"{' (archive admin)' if u.admin else ''}</td></tr>"
        for u in sorted(store.users, key=lambda u: u.username)
    ) or '<tr><td colspan="3">This archive has no accounts yet.</td></tr>'
    accounts = html.escape(str(store.root / "archive.json"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(store.name)}: API keys</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1f2328; }}
h1 {{ color: #213a8f; }} table {{ border-collapse: collapse; }}
td, th {{ padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }}
code {{ background: #f3f4f6; padding: 0 .2rem; }}
</style></head><body>
<h1 id="key-help">How to get your DANDI API key</h1>
<p>This is <strong>{html.escape(store.name)}</strong>, a local DANDI archive running on this
machine. It has no web sign-in: each account's API key (40 hexadecimal characters) is
printed in the terminal where the demo was started (<code>make demo</code> or
<code>dandihub up --demo</code>), and kept in <code>{accounts}</code>, readable only by the
account that started it.</p>
<p>Copy the key of the account you want and paste it into the hub's sign-in page.</p>
<h2>Accounts</h2>
<table id="accounts"><thead><tr><th>Username</th><th>Name</th><th>Status</th></tr></thead>
<tbody>{rows}</tbody></table>
<p>On the public archive you would sign in at dandiarchive.org and copy the key from the
menu under your name.</p>
</body></html>
"""


def user_fields(user: User) -> dict:
    return {
        "username": user.username, "name": user.name, "admin": user.admin,
        "status": user.status, "created": user.created,
    }


_DANDISET_ORDERINGS: dict[str, Callable[[Dandiset], Any]] = {
    "id": lambda d: int(d.identifier),
    "name": lambda d: d.latest.name.lower(),
    "modified": lambda d: d.latest.modified,
    "size": lambda d: d.latest.assets.size,
}

__all__ = ["ApiError", "create_app", "paginate"]
