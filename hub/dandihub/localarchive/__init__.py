"""A read-only, DANDI-API-compatible archive served from a folder.

It exists so that tests, benchmarks and the demo exercise real HTTP, real
pagination, real S3 range reads and real redirects, with the official ``dandi``
client and ``dandilab`` unchanged.

Folder layout (an "archive folder"), written by ``dandihub.localarchive.demo``
or by hand, read by ``dandihub.localarchive.store``::

    ARCHIVE/
      archive.json                      name, users (username, names, email, status, api_key, admin)
      dandisets/<id>/
        dandiset.json                   {"identifier", "created", "modified", "contact_person",
                                         "embargo_status"}   (optional: derived from metadata)
        <version>.metadata.json         the version's metadata, exactly as
                                        GET /api/dandisets/<id>/versions/<version>/ returns it
                                        ("draft" plus any published "0.YYMMDD.HHMM")
        <version>.assets.json[.gz]      list of asset records (asset_id, blob | zarr, path, size,
                                        created, modified, metadata) as listed with metadata=1;
                                        a published version without its own file uses draft's
        draft.asset_listing.tsv[.gz]    listing only (path, size, asset_id, blob, zarr,
                                        encodingFormat): used when there is no assets.json
      blobs/<blob_uuid>                 bytes of a blob (a file or a symlink); blobs with no file
                                        here are metadata-only and their download says so
      zarr/<zarr_uuid>/<key...>         keys of a zarr asset with content
      zarr/<zarr_uuid>.files.tsv        listing only (key, size, etag) of a zarr with no content

URLs inside records (``contentUrl``, ``url``, ...) are stored with the public
archive's hosts and rewritten to this server's API and S3 endpoint when served.
"""
