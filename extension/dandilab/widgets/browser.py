"""DandisetBrowser: search the archive, pick a Dandiset and a version, walk its folders,
and open an NWB asset in an NWBExplorer.

Folders are listed with the archive's ``assets/paths`` route (one page per folder), so a
Dandiset with 50 000 files costs what the open folder holds, not the whole listing.
"""

from __future__ import annotations

import html
import traceback

import ipywidgets as W

from .base import message_html

__all__ = ["DandisetBrowser"]

PAGE = 200  # entries of a folder listed at once


class DandisetBrowser(W.VBox):
    """``DandisetBrowser()`` (the archive of ``$DANDI_API_URL``), ``DandisetBrowser(archive)``
    or ``DandisetBrowser(dandiset)`` (an ``Archive`` / ``Dandiset`` of dandilab.archive).

    ``search(text)``, ``choose(identifier, version)``, ``enter(folder)``, ``open_asset(path)``
    do what the controls do; ``explorer`` is the NWBExplorer of the last opened asset.
    """

    def __init__(self, source=None, *, search: str = ""):
        super().__init__()
        from ..archive import Archive, Dandiset

        self.dandiset = None
        if isinstance(source, Dandiset):
            self.archive, self.dandiset = source.archive, source
        else:
            self.archive = source if isinstance(source, Archive) else Archive(source)
        self.prefix = ""
        self.explorer = None
        self.nwbfile = None
        self.query = W.Text(value=search, placeholder="search Dandisets (name, id, keyword)",
                            continuous_update=False, layout=W.Layout(width="360px"))
        self.go = W.Button(description="Search", icon="search", layout=W.Layout(width="100px"))
        self.results = W.Select(options=[], rows=8, layout=W.Layout(width="100%"))
        self.version = W.Dropdown(options=[], description="version", layout=W.Layout(width="300px"))
        self.up = W.Button(description="⬑ up", layout=W.Layout(width="80px"))
        self.where = W.HTML()
        self.entries = W.Select(options=[], rows=12, layout=W.Layout(width="100%"))
        self.open_button = W.Button(description="Open in explorer", button_style="primary",
                                    layout=W.Layout(width="160px"))
        self.status = W.HTML()
        self.output = W.VBox()
        self.go.on_click(lambda _b: self.search(self.query.value))
        self.query.observe(lambda ch: self.search(ch["new"]), "value")
        self.results.observe(lambda ch: ch["new"] and self.choose(ch["new"]), "value")
        self.version.observe(lambda ch: ch["new"] and self._set_version(ch["new"]), "value")
        self.up.on_click(lambda _b: self.enter(self.prefix.rstrip("/").rpartition("/")[0]))
        self.entries.observe(self._on_entry, "value")
        self.open_button.on_click(lambda _b: self.open_asset(self.entries.value))
        self.children = [
            W.HTML(f"<b>DANDI archive</b> <code>{html.escape(self.archive.url)}</code>"),
            W.HBox([self.query, self.go]), self.results, self.version,
            W.HBox([self.up, self.where]), self.entries, self.open_button, self.status,
            self.output,
        ]
        self.add_class("dandilab-browser")
        if self.dandiset is not None:
            self.results.options = [(self._label(self.dandiset.remote), self.dandiset.identifier)]
            self._show_versions(self.dandiset)
        else:
            self.search(search)

    # -- actions ---------------------------------------------------------------------------
    def _guard(fn):
        def wrapped(self, *args, **kwargs):
            try:
                return fn(self, *args, **kwargs)
            except Exception as e:  # noqa: BLE001 - shown in the status line
                detail = "".join(traceback.format_exception_only(type(e), e)).strip()
                self.status.value = message_html(detail, "error")
                return None
        wrapped.__doc__ = fn.__doc__
        return wrapped

    @staticmethod
    def _label(remote) -> str:
        try:
            name = remote.version.name
        except Exception:  # noqa: BLE001 - a version without a name
            name = ""
        return f"{remote.identifier} · {name}"

    @_guard
    def search(self, text: str = "") -> list[str]:
        """List Dandisets matching ``text`` (all when empty, first 100)."""
        out = []
        for k, d in enumerate(self.archive.client.get_dandisets(search=text or None)):
            if k >= 100:
                break
            out.append((self._label(d), d.identifier))
        self.results.options = out
        self.status.value = message_html(f"{len(out)} Dandisets" + (f" match {text!r}" if text
                                                                     else ""))
        return [i for _, i in out]

    @_guard
    def choose(self, identifier: str, version: str | None = None):
        """Select Dandiset ``identifier`` (at ``version``; default the latest)."""
        self.dandiset = self.archive.dandiset(identifier, version)
        self._show_versions(self.dandiset)
        return self.dandiset

    def _show_versions(self, ds) -> None:
        versions = [v.identifier for v in ds.remote.get_versions()]
        self._versions_for = ds.identifier
        self._switching = True  # options first: the value must be one of them
        try:
            self.version.options = versions
            self.version.value = ds.version if ds.version in versions else versions[-1]
        finally:
            self._switching = False
        self.enter("")

    @_guard
    def _set_version(self, version: str) -> None:
        if not getattr(self, "_switching", False) and self.dandiset is not None \
                and version != self.dandiset.version:
            self.dandiset = self.archive.dandiset(self.dandiset.identifier, version)
            self.enter("")

    @_guard
    def enter(self, folder: str) -> list[str]:
        """List ``folder`` of the chosen version (folders end with "/")."""
        prefix = folder.strip("/")
        path = f"{self.dandiset.remote.version_api_path}assets/paths/"
        entries = []
        for k, node in enumerate(self.archive.client.paginate(
                path, params={"path_prefix": prefix} if prefix else {})):
            if k >= PAGE:
                break
            name = node["path"]
            if node.get("asset") is None:
                label = f"📁 {name.rpartition('/')[2]}/  ({node.get('aggregate_files', '?')} files)"
                entries.append((label, name + "/"))
            else:
                size = node.get("aggregate_size") or 0
                entries.append((f"{name.rpartition('/')[2]}  ({size / 1e6:.1f} MB)", name))
        self.prefix = prefix
        self.where.value = (f"<code>{html.escape(self.dandiset.identifier)}/"
                            f"{html.escape(self.dandiset.version)}/{html.escape(prefix)}</code>")
        with self.entries.hold_trait_notifications():
            self.entries.options = entries
            self.entries.value = None
        self.status.value = message_html(f"{len(entries)} entries")
        return [v for _, v in entries]

    def _on_entry(self, change) -> None:
        value = change["new"]
        if value and value.endswith("/"):
            self.enter(value)

    @_guard
    def open_asset(self, path: str):
        """Open the NWB asset at ``path`` lazily and show it in an NWBExplorer."""
        if not path or path.endswith("/"):
            raise ValueError("choose an .nwb file first")
        if not path.lower().endswith(".nwb"):
            raise ValueError(f"{path} is not an NWB file: the explorer shows .nwb assets")
        from ..stream import open_nwb
        from .explorer import NWBExplorer

        self.status.value = message_html(f"opening {path} …")
        if self.nwbfile is not None and hasattr(self.nwbfile, "close"):
            self.nwbfile.close()
        self.nwbfile = open_nwb(self.dandiset.asset(path))
        self.explorer = NWBExplorer(self.nwbfile)
        self.output.children = [self.explorer]
        self.status.value = message_html(f"{path} opened (metadata only; views read what they show)")
        return self.explorer

