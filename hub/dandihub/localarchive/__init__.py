"""A read-only, DANDI-API-compatible archive served from a folder.

It exists so that tests, benchmarks and the demo exercise real HTTP, real
pagination, real S3 range reads and real redirects, with the official ``dandi``
client and ``dandilab`` unchanged.

Folder layout (an "archive folder"), written by ``dandihub.localarchive.demo``
or by hand, read by ``dandihub.localarchive.store``::

    ARCHIVE/
      archive.json                      name, users (username, first_name, last_name, email,
                                        status APPROVED|PENDING|REJECTED|INCOMPLETE, api_key,
                                        admin, optional created); optional if dandisets/ exists;
                                        optional oauth_clients: [{client_id, client_secret,
                                        redirect_uris: [exact URLs], optional name}], the OAuth
                                        applications that may sign people in (``oauth``; no
                                        client_secret: a public client, PKCE only)
      dandisets/<id>/
        dandiset.json                   {"identifier", "created", "modified", "contact_person",
                                         "embargo_status", "owners": [usernames]}
                                        (optional, and so is each key: derived from metadata;
                                        owners serve ?user=me and embargoed Dandisets)
        <version>.metadata.json         the version's metadata, exactly as
                                        GET /api/dandisets/<id>/versions/<version>/ returns it
                                        ("draft" plus any published "0.YYMMDD.HHMM")
        <version>.assets.json[.gz]      list of asset records (asset_id, blob | zarr, path, size,
                                        created, modified, metadata) as listed with metadata=1;
                                        a published version without its own file uses draft's
        draft.asset_listing.tsv[.gz]    listing only (path, size, storage, key_backend, key_hash,
                                        asset_id, blob, zarr, encodingFormat): used when there is
                                        no assets.json; minimal records are made from it (rows
                                        with no asset_id, blob or zarr id get stable made-up ones;
                                        dandiset.yaml is skipped), their metadata says so
      blobs/<blob_uuid>                 bytes of a blob (a file or a symlink); blobs with no file
                                        here are metadata-only and their download says so
      zarr/<zarr_uuid>/<key...>         keys of a zarr asset with content
      zarr/<zarr_uuid>.files.tsv        listing only (key, size, md5_etag[, last_modified]) of a
                                        zarr with no content

Embargo, as the archive enforces it: a Dandiset whose embargo_status is not OPEN, its
assets and zarrs (every route, zarr/ included) are for its owners and admins only
(401/403 for others, with the archive's messages); their bytes are served only through
S3 URLs the API presigns (SigV4, an hour) for them. The S3 store (``blobstore``) lets
anyone GET/HEAD the other objects, as the public bucket does, and refuses everything
else unless signed with credentials only the archive process holds (new at each start).

The server also is the archive's OAuth2 provider at ``/oauth/authorize/`` and
``/oauth/token/`` (authorization code + PKCE, see ``oauth``); its access tokens work as
``Authorization: Bearer TOKEN`` wherever an API key does.

URLs inside records (``contentUrl``, ``url``, ...) are stored with the public
archive's hosts and rewritten to this server's API and S3 endpoint when served.
"""
