/**
 * The Dandiset view of the panel: title, version picker, description,
 * contributors, license, citation and DOI, then the asset tree, one folder at
 * a time, and the actions on the selected asset.
 */
import {
  dandisetUrl,
  Fetch,
  getJSON,
  pathsUrl,
  versionsUrl,
  versionUrl
} from './api';
import {
  appendFolderPage,
  assetContext,
  breadcrumbs,
  capabilities,
  IAssetContext,
  ICapabilities,
  IFolderPage,
  ITreeEntry,
  parentPrefix,
  toFolderPage
} from './assets';
import {
  describeContributor,
  IDandisetView,
  initialVersion,
  IRawVersionInfo,
  toDandisetView,
  toVersionOptions
} from './dandiset';
import { button, element, ErrorBox, link, moveFocus } from './dom';
import {
  badgesOf,
  formatBytes,
  IPanelSettings,
  IRawDandiset,
  LatestOnly,
  toDandisetItem
} from './model';

/** The actions offered on an asset (the plugin runs them as commands). */
export type AssetAction =
  | 'open'
  | 'explore'
  | 'copy-s3'
  | 'copy-dandi'
  | 'neurosift'
  | 'download';

/** Button label, capability and the tooltip when it is not available. */
export const ACTIONS: Array<{
  action: AssetAction;
  label: string;
  can: keyof ICapabilities;
  title: string;
  unavailable: string;
}> = [
  {
    action: 'open',
    label: 'Open in notebook',
    can: 'open',
    title: 'Insert a cell that opens this asset (dandilab.open_nwb / open_zarr) into the active notebook',
    unavailable: 'Only NWB and Zarr assets open in a notebook'
  },
  {
    action: 'explore',
    label: 'Explore',
    can: 'explore',
    title: 'Insert a cell that shows the NWB explorer widget for this file',
    unavailable: 'The explorer shows NWB files'
  },
  {
    action: 'copy-s3',
    label: 'Copy S3 URL',
    can: 'copyS3',
    title: 'Copy the URL of the content on S3',
    unavailable: 'The archive gave no S3 URL for this asset'
  },
  {
    action: 'copy-dandi',
    label: 'Copy DANDI URL',
    can: 'copyDandi',
    title: "Copy the archive's download URL of this asset, pinned to this version",
    unavailable: ''
  },
  {
    action: 'neurosift',
    label: 'Open in Neurosift',
    can: 'neurosift',
    title: 'Open this NWB file in Neurosift (an external web app), in a new tab',
    unavailable: 'Neurosift shows NWB files'
  },
  {
    action: 'download',
    label: 'Download to home',
    can: 'download',
    title: 'Download this asset into your home directory (dandi/ID/VERSION/PATH), in the background',
    unavailable: 'Zarr assets are folders of many objects: open them with dandilab.open_zarr'
  }
];

export interface IDandisetViewOptions {
  fetch: Fetch;
  baseUrl: string;
  /** Back to the search results. */
  onBack: () => void;
  /** An action button was pressed. */
  onAction: (action: AssetAction, asset: IAssetContext) => void;
  /** The selected asset changed (null: none). */
  onSelect: (asset: IAssetContext | null) => void;
  /** A folder's first page was shown: the place (Dandiset, version, folder) changed. */
  onPlace?: () => void;
  /** The icon of a tree row (the plugin passes JupyterLab's; default: a styled span). */
  entryIcon?: (entry: ITreeEntry) => HTMLElement;
}

export class DandisetView {
  readonly node: HTMLElement;

  constructor(private readonly _options: IDandisetViewOptions) {
    this.node = element('section', 'jp-DandiPanel-dandiset');
    this.node.setAttribute('aria-label', 'Dandiset');
    this.node.hidden = true;

    const back = button('jp-DandiPanel-back', '← Results', () => _options.onBack(),
      'Back to the search results (Escape)');
    this._idLine = element('div', 'jp-DandiPanel-idLine');
    this._title = element('h3', 'jp-DandiPanel-dandisetTitle');
    this._title.tabIndex = -1;

    const versionLabel = element('label', 'jp-DandiPanel-versionLabel', 'Version ');
    this._versionSelect = element('select', 'jp-DandiPanel-version jp-mod-styled');
    this._versionSelect.setAttribute('aria-label', 'Version');
    this._versionSelect.addEventListener('change', () => {
      void this.showVersion(this._versionSelect.value);
    });
    versionLabel.appendChild(this._versionSelect);

    this._status = element('div', 'jp-DandiPanel-status');
    this._status.setAttribute('role', 'status');
    this._error = new ErrorBox('jp-DandiPanel-dandisetError');
    this._details = element('div', 'jp-DandiPanel-details');

    const files = element('section', 'jp-DandiPanel-files');
    files.setAttribute('aria-label', 'Files');
    files.appendChild(element('h4', 'jp-DandiPanel-sectionTitle', 'Files'));
    this._crumbs = element('nav', 'jp-DandiPanel-crumbs');
    this._crumbs.setAttribute('aria-label', 'Folder');
    this._folderStatus = element('div', 'jp-DandiPanel-status jp-DandiPanel-folderStatus');
    this._folderStatus.setAttribute('role', 'status');
    this._folderError = new ErrorBox('jp-DandiPanel-folderError');
    this._tree = element('ul', 'jp-DandiPanel-tree');
    this._tree.setAttribute('role', 'listbox');
    this._tree.setAttribute('aria-label', 'Folders and files');
    this._tree.addEventListener('click', this._onTreeClick);
    this._tree.addEventListener('dblclick', this._onTreeDoubleClick);
    this._tree.addEventListener('keydown', this._onTreeKey);
    this._moreFiles = button('jp-DandiPanel-moreFiles', 'More files', () => {
      void this.showFolder(this._folder?.prefix ?? '', (this._folder?.page ?? 0) + 1);
    });
    this._moreFiles.hidden = true;
    this._assetCard = element('div', 'jp-DandiPanel-asset');
    this._assetCard.hidden = true;
    files.append(
      this._crumbs,
      this._folderStatus,
      this._folderError.node,
      this._tree,
      this._moreFiles,
      this._assetCard
    );

    this.node.append(
      back,
      this._idLine,
      this._title,
      versionLabel,
      this._status,
      this._error.node,
      this._details,
      files
    );
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Escape' && !event.defaultPrevented) {
        event.preventDefault();
        _options.onBack();
      }
    });
  }

  /** The Dandiset shown, or null. */
  get identifier(): string | null {
    return this._identifier;
  }

  /** The version shown. */
  get version(): string | null {
    return this._version;
  }

  /** What is shown of the version, once loaded. */
  get view(): IDandisetView | null {
    return this._view;
  }

  /** The asset selected in the tree, or null. */
  get selectedAsset(): IAssetContext | null {
    return this._selected;
  }

  /** The folder shown ("" is the top). */
  get folder(): string {
    return this._folder?.prefix ?? '';
  }

  /** Where the asset actions point (the archive API the panel browses). */
  setArchive(archiveUrl: string, archiveOverride: string): void {
    this._archiveUrl = archiveUrl;
    this._archiveOverride = archiveOverride;
  }

  /** Show Dandiset `identifier` at `version` (null: the one the settings prefer). */
  async open(
    identifier: string,
    version: string | null,
    settings: IPanelSettings
  ): Promise<void> {
    const ticket = this._openTicket.next();
    this._settings = settings;
    this._identifier = identifier;
    this._version = version;
    this._dandiset = null;
    this._versionsRaw = null;
    this._view = null;
    this._idLine.textContent = identifier;
    this._title.textContent = `Dandiset ${identifier}`;
    this._versionSelect.textContent = '';
    this._versionSelect.disabled = true;
    this._details.textContent = '';
    this._error.clear();
    this._clearFolder();
    this._status.textContent = 'Loading…';
    try {
      const [dandiset, versions] = await Promise.all([
        getJSON<IRawDandiset>(this._options.fetch, dandisetUrl(this._options.baseUrl, identifier, settings.archiveUrl)),
        getJSON<unknown>(this._options.fetch, versionsUrl(this._options.baseUrl, identifier, settings.archiveUrl))
          .catch(() => null) // the picker falls back on the Dandiset record's versions
      ]);
      if (!this._openTicket.isCurrent(ticket)) {
        return;
      }
      this._dandiset = dandiset;
      this._versionsRaw = versions;
      this._renderIdLine(dandiset);
      await this.showVersion(version ?? initialVersion(dandiset, settings.defaultVersion));
    } catch (reason) {
      if (this._openTicket.isCurrent(ticket)) {
        this._status.textContent = '';
        this._title.textContent = `Dandiset ${identifier}`;
        this._error.show(reason, () => void this.open(identifier, version, settings));
      }
    }
  }

  /** Show another version of the open Dandiset: its metadata and top folder. */
  async showVersion(version: string): Promise<void> {
    const identifier = this._identifier;
    if (!identifier) {
      return;
    }
    const ticket = this._versionTicket.next();
    this._version = version;
    this._renderVersions();
    this._status.textContent = 'Loading…';
    this._error.clear();
    const folder = this.showFolder('');
    try {
      const info = await getJSON<IRawVersionInfo>(
        this._options.fetch,
        versionUrl(this._options.baseUrl, identifier, version, this._settings.archiveUrl)
      );
      if (!this._versionTicket.isCurrent(ticket)) {
        return;
      }
      this._view = toDandisetView(this._dandiset ?? { identifier }, info);
      this._status.textContent = '';
      this._renderDetails(this._view);
    } catch (reason) {
      if (this._versionTicket.isCurrent(ticket)) {
        this._status.textContent = '';
        this._details.textContent = '';
        this._error.show(reason, () => void this.showVersion(version));
      }
    }
    await folder;
  }

  /** Show a folder of the asset tree ("" is the top); later pages append. */
  async showFolder(prefix: string, page = 1): Promise<void> {
    const identifier = this._identifier;
    const version = this._version;
    if (!identifier || !version) {
      return;
    }
    const ticket = this._folderTicket.next();
    if (page === 1) {
      this._select(null);
      this._renderCrumbs(prefix);
    }
    this._folderStatus.textContent = page > 1 ? 'Loading more…' : 'Loading…';
    this._tree.setAttribute('aria-busy', 'true');
    this._moreFiles.disabled = true;
    try {
      const raw = await getJSON<unknown>(
        this._options.fetch,
        pathsUrl(this._options.baseUrl, identifier, version, prefix, page, this._settings.archiveUrl)
      );
      if (!this._folderTicket.isCurrent(ticket)) {
        return;
      }
      const next = toFolderPage(raw, prefix, page);
      this._folder = page > 1 && this._folder ? appendFolderPage(this._folder, next) : next;
      this._folderError.clear();
      this._renderFolder(page > 1 ? this._folder.entries.length - next.entries.length : 0);
      if (page === 1) {
        this._options.onPlace?.();
      }
    } catch (reason) {
      if (!this._folderTicket.isCurrent(ticket)) {
        return;
      }
      if (page === 1) {
        this._folder = null;
        this._tree.textContent = '';
      }
      this._folderStatus.textContent = '';
      this._folderError.show(reason, () => void this.showFolder(prefix, page));
    } finally {
      if (this._folderTicket.isCurrent(ticket)) {
        this._tree.removeAttribute('aria-busy');
        this._moreFiles.disabled = false;
      }
    }
  }

  /** Select the file at `path` in the folder shown (for commands and tests). */
  selectPath(path: string): boolean {
    const entry = this._folder?.entries.find(e => e.path === path && !e.folder);
    if (entry) {
      this._select(entry);
    }
    return !!entry;
  }

  /** Focus the title (after opening) so that screen readers announce it. */
  focus(): void {
    this._title.focus();
  }

  private _clearFolder(): void {
    this._folder = null;
    this._tree.textContent = '';
    this._crumbs.textContent = '';
    this._folderStatus.textContent = '';
    this._folderError.clear();
    this._moreFiles.hidden = true;
    this._select(null);
  }

  private _renderIdLine(dandiset: IRawDandiset): void {
    const item = toDandisetItem(dandiset);
    this._idLine.textContent = '';
    this._idLine.appendChild(element('span', 'jp-DandiPanel-resultId', `DANDI:${dandiset.identifier}`));
    for (const badge of badgesOf(item)) {
      const node = element('span', `jp-DandiPanel-badge jp-DandiPanel-badge-${badge.kind}`, badge.text);
      node.title = badge.title;
      this._idLine.appendChild(node);
    }
  }

  private _renderVersions(): void {
    const options = toVersionOptions(this._versionsRaw, this._dandiset, this._version ?? 'draft');
    this._versionSelect.textContent = '';
    for (const option of options) {
      const node = element('option', '', option.label);
      node.value = option.version;
      node.selected = option.version === this._version;
      this._versionSelect.appendChild(node);
    }
    this._versionSelect.disabled = options.length < 2;
  }

  private _renderDetails(view: IDandisetView): void {
    this._title.textContent = view.title;
    this._details.textContent = '';
    if (view.description) {
      const description = element('p', 'jp-DandiPanel-description', view.description);
      const toggle = button('jp-DandiPanel-toggle', 'Show more', () => {
        const expanded = description.classList.toggle('jp-mod-expanded');
        toggle.textContent = expanded ? 'Show less' : 'Show more';
        toggle.setAttribute('aria-expanded', String(expanded));
      });
      toggle.setAttribute('aria-expanded', 'false');
      toggle.hidden = view.description.length < 300;
      this._details.append(description, toggle);
    }
    const list = element('dl', 'jp-DandiPanel-facts');
    const fact = (term: string, ...content: Array<Node | string>) => {
      list.append(element('dt', '', term));
      const dd = element('dd', '');
      dd.append(...content);
      list.append(dd);
    };
    if (view.contributors.length) {
      const names = view.contributors.map(describeContributor);
      const shown = names.slice(0, 6).join('; ');
      if (names.length > 6) {
        const more = element('details', 'jp-DandiPanel-moreContributors');
        more.append(element('summary', '', `${shown}; and ${names.length - 6} more`),
          element('span', '', names.slice(6).join('; ')));
        fact('Contributors', more);
      } else {
        fact('Contributors', shown);
      }
    }
    fact('License', view.licenses.join(', ') || 'none given');
    fact(
      'Files',
      [
        view.assetCount !== null ? `${view.assetCount.toLocaleString('en')} assets` : '',
        formatBytes(view.size)
      ].filter(Boolean).join(' · ') || 'unknown'
    );
    if (view.doi && view.doiUrl) {
      fact('DOI', link('jp-DandiPanel-doi', view.doi, view.doiUrl));
    } else {
      fact('DOI', view.published ? 'none' : 'Drafts have no DOI: cite a published version.');
    }
    if (view.citation) {
      const citation = element('span', 'jp-DandiPanel-citation', view.citation);
      fact('Citation', citation);
    }
    if (view.keywords.length) {
      fact('Keywords', view.keywords.join(', '));
    }
    if (view.webUrl) {
      fact('Web', link('jp-DandiPanel-webLink', 'View on the DANDI Archive', view.webUrl));
    }
    this._details.append(list);
  }

  private _renderCrumbs(prefix: string): void {
    this._crumbs.textContent = '';
    const list = element('ol', 'jp-DandiPanel-crumbList');
    const crumbs = breadcrumbs(prefix, this._identifier ?? '');
    crumbs.forEach((crumb, index) => {
      const item = element('li', '');
      if (index === crumbs.length - 1) {
        const here = element('span', 'jp-DandiPanel-crumb jp-mod-current', crumb.label);
        here.setAttribute('aria-current', 'location');
        item.appendChild(here);
      } else {
        item.appendChild(
          button('jp-DandiPanel-crumb', crumb.label, () => void this._openFolderAndFocus(crumb.prefix),
            crumb.prefix ? `Open ${crumb.prefix}` : 'Open the top folder')
        );
      }
      list.appendChild(item);
    });
    this._crumbs.appendChild(list);
  }

  private _renderFolder(focusIndex: number): void {
    const folder = this._folder;
    this._tree.textContent = '';
    if (!folder) {
      return;
    }
    folder.entries.forEach((entry, index) => {
      this._tree.appendChild(this._renderEntry(entry, index === focusIndex));
    });
    if (folder.entries.length === 0) {
      this._folderStatus.textContent = folder.prefix
        ? 'This folder is empty.'
        : 'This version has no assets.';
    } else {
      const total = folder.count ?? folder.entries.length;
      const files = folder.entries.reduce((sum, e) => sum + (e.files ?? 0), 0);
      const size = folder.entries.reduce((sum, e) => sum + (e.size ?? 0), 0);
      this._folderStatus.textContent =
        (folder.entries.length < total
          ? `Showing ${folder.entries.length} of ${total} entries`
          : `${total} ${total === 1 ? 'entry' : 'entries'}`) +
        ` · ${files.toLocaleString('en')} files · ${formatBytes(size)}`;
    }
    this._moreFiles.hidden = !folder.hasNext;
  }

  private _renderEntry(entry: ITreeEntry, tabStop: boolean): HTMLLIElement {
    const li = element('li', `jp-DandiPanel-entry ${entry.folder ? 'jp-mod-folder' : 'jp-mod-file'}`);
    li.setAttribute('role', 'option');
    li.setAttribute('aria-selected', 'false');
    li.tabIndex = tabStop ? 0 : -1;
    li.dataset.path = entry.path;
    const meta = entry.folder
      ? [`${(entry.files ?? 0).toLocaleString('en')} files`, formatBytes(entry.size)]
      : [entry.type, formatBytes(entry.size)];
    const label = `${entry.folder ? 'Folder' : 'File'} ${entry.name}, ${meta.filter(Boolean).join(', ')}`;
    li.setAttribute('aria-label', label);
    li.title = entry.path;
    li.append(
      this._entryIcon(entry),
      element('span', 'jp-DandiPanel-entryName', entry.folder ? `${entry.name}/` : entry.name),
      element('span', 'jp-DandiPanel-entryMeta', meta.filter(Boolean).join(' · '))
    );
    return li;
  }

  private _entryIcon(entry: ITreeEntry): HTMLElement {
    const icon = this._options.entryIcon?.(entry) ?? element('span', 'jp-DandiPanel-entryIcon');
    icon.classList.add('jp-DandiPanel-entryIcon', entry.folder ? 'jp-mod-folder' : `jp-mod-${entry.kind}`);
    icon.setAttribute('aria-hidden', 'true');
    return icon;
  }

  private _entryOf(target: EventTarget | null): [HTMLElement, ITreeEntry] | null {
    const li = (target as HTMLElement | null)?.closest?.('.jp-DandiPanel-entry') as HTMLElement | null;
    const entry = li && this._folder?.entries.find(e => e.path === li.dataset.path);
    return li && entry ? [li, entry] : null;
  }

  private async _openFolderAndFocus(prefix: string): Promise<void> {
    await this.showFolder(prefix);
    (this._tree.firstElementChild as HTMLElement | null)?.focus();
  }

  private _activate(entry: ITreeEntry): void {
    if (entry.folder) {
      void this._openFolderAndFocus(`${entry.path}/`);
    } else {
      this._select(entry);
    }
  }

  private _select(entry: ITreeEntry | null): void {
    const asset =
      entry && this._identifier && this._version
        ? assetContext(entry, this._identifier, this._version, this._archiveUrl, this._archiveOverride)
        : null;
    this._selected = asset;
    for (const li of Array.from(this._tree.children) as HTMLElement[]) {
      const on = !!asset && li.dataset.path === asset.path;
      li.classList.toggle('jp-mod-selected', on);
      li.setAttribute('aria-selected', String(on));
      if (on) {
        li.tabIndex = 0;
      } else if (asset) {
        li.tabIndex = -1;
      }
    }
    this._renderAssetCard(entry, asset);
    this._options.onSelect(asset);
  }

  private _renderAssetCard(entry: ITreeEntry | null, asset: IAssetContext | null): void {
    this._assetCard.textContent = '';
    this._assetCard.hidden = !asset || !entry;
    if (!asset || !entry) {
      return;
    }
    this._assetCard.setAttribute('aria-label', `Asset ${entry.name}`);
    this._assetCard.append(element('div', 'jp-DandiPanel-assetName', entry.name));
    const facts = element('dl', 'jp-DandiPanel-facts');
    for (const [term, value] of [
      ['Path', asset.path],
      ['Size', formatBytes(asset.size)],
      ['Type', entry.type || 'unknown'],
      ['Asset', asset.assetId],
      ['Version', asset.version]
    ]) {
      facts.append(element('dt', '', term), element('dd', '', value));
    }
    this._assetCard.append(facts);
    const can = capabilities(asset);
    const bar = element('div', 'jp-DandiPanel-actions');
    bar.setAttribute('role', 'toolbar');
    bar.setAttribute('aria-label', 'Asset actions');
    for (const spec of ACTIONS) {
      const node = button(`jp-DandiPanel-action jp-DandiPanel-action-${spec.action}`, spec.label, () => {
        if (this._selected) {
          this._options.onAction(spec.action, this._selected);
        }
      });
      node.dataset.action = spec.action;
      node.disabled = !can[spec.can];
      node.title = can[spec.can] ? spec.title : spec.unavailable;
      bar.appendChild(node);
    }
    this._assetCard.append(bar);
  }

  private _onTreeClick = (event: MouseEvent): void => {
    const found = this._entryOf(event.target);
    if (found) {
      found[0].focus();
      this._activate(found[1]);
    }
  };

  private _onTreeDoubleClick = (event: MouseEvent): void => {
    const found = this._entryOf(event.target);
    if (found && !found[1].folder && this._selected && capabilities(this._selected).open) {
      this._options.onAction('open', this._selected);
    }
  };

  private _onTreeKey = (event: KeyboardEvent): void => {
    const found = this._entryOf(event.target);
    if (!found) {
      return;
    }
    const [li, entry] = found;
    if (moveFocus(li, event.key)) {
      event.preventDefault();
      li.tabIndex = -1;
      (document.activeElement as HTMLElement).tabIndex = 0;
      return;
    }
    switch (event.key) {
      case 'Enter':
      case ' ':
        event.preventDefault();
        this._activate(entry);
        if (!entry.folder) {
          // Straight to the actions, so the keyboard can use them.
          (this._assetCard.querySelector('button:not([disabled])') as HTMLElement | null)?.focus();
        }
        break;
      case 'ArrowRight':
        if (entry.folder) {
          event.preventDefault();
          this._activate(entry);
        }
        break;
      case 'ArrowLeft':
      case 'Backspace':
        if (this.folder) {
          event.preventDefault();
          void this._openFolderAndFocus(parentPrefix(this.folder));
        }
        break;
    }
  };

  private _identifier: string | null = null;
  private _version: string | null = null;
  private _dandiset: IRawDandiset | null = null;
  private _versionsRaw: unknown = null;
  private _view: IDandisetView | null = null;
  private _folder: IFolderPage | null = null;
  private _selected: IAssetContext | null = null;
  private _settings: IPanelSettings = { archiveUrl: '', defaultVersion: 'draft' };
  private _archiveUrl = '';
  private _archiveOverride = '';
  private _openTicket = new LatestOnly();
  private _versionTicket = new LatestOnly();
  private _folderTicket = new LatestOnly();
  private _idLine: HTMLDivElement;
  private _title: HTMLHeadingElement;
  private _versionSelect: HTMLSelectElement;
  private _status: HTMLDivElement;
  private _error: ErrorBox;
  private _details: HTMLDivElement;
  private _crumbs: HTMLElement;
  private _folderStatus: HTMLDivElement;
  private _folderError: ErrorBox;
  private _tree: HTMLUListElement;
  private _moreFiles: HTMLButtonElement;
  private _assetCard: HTMLDivElement;
}
