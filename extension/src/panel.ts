/**
 * The DANDI side panel: archive and account line, search box and results;
 * choosing a result opens the Dandiset view (dandisetview.ts); downloads are
 * listed at the bottom (downloadsview.ts).
 *
 * The widgets only build DOM and wire events; URLs, parsing and timing live
 * in api.ts, model.ts, dandiset.ts, assets.ts and downloads.ts.
 */
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { dandisetsUrl, Fetch, getJSON } from './api';
import { IAssetContext, ITreeEntry } from './assets';
import { AssetAction, DandisetView } from './dandisetview';
import { element, ErrorBox, moveFocus } from './dom';
import { DownloadsView } from './downloadsview';
import { ArchiveInfo } from './info';
import {
  appendPage,
  badgesOf,
  debounce,
  DEFAULT_SETTINGS,
  describeAccount,
  describeResults,
  formatBytes,
  IDandisetItem,
  IDebounced,
  IPanelSettings,
  ISearchPage,
  LatestOnly,
  toSearchPage
} from './model';

/** The panel's widget id; also its id in the layout restorer. */
export const PANEL_ID = 'dandi-panel';

/** Quiet time after the last keystroke before searching. */
export const SEARCH_DELAY_MS = 300;

export class DandiPanel extends Widget {
  constructor(options: DandiPanel.IOptions) {
    super();
    this._fetch = options.fetch;
    this._baseUrl = options.baseUrl;
    this._info = options.info ?? new ArchiveInfo(options.fetch, options.baseUrl);
    this._onAction = options.onAction ?? (() => undefined);
    this.id = PANEL_ID;
    this.addClass('jp-DandiPanel');
    this.title.caption = 'DANDI Archive';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'DANDI Archive');

    const header = element('header', 'jp-DandiPanel-header');
    header.appendChild(element('h2', 'jp-DandiPanel-title', 'DANDI Archive'));

    const info = element('div', 'jp-DandiPanel-info');
    this._archiveNode = element('span', 'jp-DandiPanel-archive', 'Archive: …');
    this._accountNode = element('span', 'jp-DandiPanel-account');
    info.append(this._archiveNode, this._accountNode);
    this._infoError = new ErrorBox('jp-DandiPanel-infoError');

    // --- search and results
    this._searchView = element('section', 'jp-DandiPanel-searchView');
    this._searchView.setAttribute('aria-label', 'Search');
    this._input = element('input', 'jp-DandiPanel-search jp-mod-styled');
    this._input.type = 'search';
    this._input.placeholder = 'Search Dandisets';
    this._input.setAttribute('aria-label', 'Search Dandisets');
    this._input.spellcheck = false;

    this._status = element('div', 'jp-DandiPanel-status');
    this._status.setAttribute('role', 'status');
    this._status.setAttribute('aria-live', 'polite');
    this._searchError = new ErrorBox('jp-DandiPanel-searchError');

    this._list = element('ul', 'jp-DandiPanel-results');
    this._list.setAttribute('aria-label', 'Dandisets');

    this._more = element('button', 'jp-DandiPanel-more jp-mod-styled', 'More results');
    this._more.type = 'button';
    this._more.hidden = true;
    this._searchView.append(
      this._input,
      this._status,
      this._searchError.node,
      this._list,
      this._more
    );

    // --- a Dandiset, and downloads
    this._dandiset = new DandisetView({
      fetch: this._fetch,
      baseUrl: this._baseUrl,
      onBack: () => this.showResults(),
      onAction: (action, asset) => this._onAction(action, asset),
      onSelect: () => this._selectionChanged.emit(),
      onPlace: () => this._placeChanged.emit(),
      entryIcon: options.entryIcon
    });
    this._downloads = new DownloadsView({
      fetch: this._fetch,
      baseUrl: this._baseUrl,
      onShow: path => options.onShowFile?.(path)
    });

    this.node.append(
      header,
      info,
      this._infoError.node,
      this._searchView,
      this._dandiset.node,
      this._downloads.node
    );

    this._search = debounce(() => void this.search(1), SEARCH_DELAY_MS);
    this._input.addEventListener('input', () => this._search());
    this._input.addEventListener('keydown', this._onInputKey);
    this._list.addEventListener('click', this._onListClick);
    this._list.addEventListener('keydown', this._onListKey);
    this._more.addEventListener('click', () => {
      void this.search((this._results?.page ?? 0) + 1);
    });
    this._info.changed.connect(this._renderInfo, this);
  }

  /** Emitted when a result is chosen (click or Enter), before its Dandiset opens. */
  get selected(): ISignal<this, IDandisetItem> {
    return this._selected;
  }

  /** Emitted when the selected asset changes. */
  get selectionChanged(): ISignal<this, void> {
    return this._selectionChanged;
  }

  /** The asset selected in the Dandiset view, or null. */
  get selectedAsset(): IAssetContext | null {
    return this._dandiset.node.hidden ? null : this._dandiset.selectedAsset;
  }

  /** The Dandiset view (open Dandiset, version, folder). */
  get dandisetView(): DandisetView {
    return this._dandiset;
  }

  /** Where the panel is: the open Dandiset, version and folder; null on the results. */
  get place(): DandiPanel.IPlace | null {
    const view = this._dandiset;
    if (this._searchView.hidden && view.identifier && view.version) {
      return { identifier: view.identifier, version: view.version, folder: view.folder };
    }
    return null;
  }

  /** Emitted when `place` changes (the plugin keeps it in JupyterLab's state database). */
  get placeChanged(): ISignal<this, void> {
    return this._placeChanged;
  }

  /**
   * Go back to a place kept from an earlier page load: now if the panel is shown, else
   * when it is first shown (the panel loads nothing before that).
   */
  async restorePlace(place: DandiPanel.IPlace): Promise<void> {
    if (!this._loaded && !this.isVisible) {
      this._pendingPlace = place;
      return;
    }
    await this._restore(place);
  }

  /** The downloads list. */
  get downloadsView(): DownloadsView {
    return this._downloads;
  }

  /** The current settings. */
  get settings(): IPanelSettings {
    return this._settings;
  }

  /** Apply new settings; reloads what they affect. */
  configure(settings: IPanelSettings): void {
    const previous = this._settings;
    this._settings = settings;
    if (!this._loaded) {
      return;
    }
    if (previous.archiveUrl !== settings.archiveUrl) {
      void this.refreshInfo();
      this.showResults();
    }
    if (
      previous.archiveUrl !== settings.archiveUrl ||
      previous.defaultVersion !== settings.defaultVersion
    ) {
      void this.search(1);
    }
  }

  /** Move keyboard focus to the search box (back to the results if a Dandiset is open). */
  focusSearch(): void {
    this.showResults(false);
    this._input.focus();
  }

  /** Fetch the archive URL and account from the server. */
  refreshInfo(): Promise<void> {
    return this._info.refresh(this._settings.archiveUrl);
  }

  /** Search now for `text` (default: the search box's). */
  async searchFor(text: string): Promise<void> {
    this._input.value = text;
    this.showResults(false);
    await this.search(1);
  }

  /** Search now for the input's text; page 1 replaces, later pages append. */
  async search(page = 1): Promise<void> {
    this._loaded = true;
    this._search.cancel();
    const ticket = this._searchTicket.next();
    const text = this._input.value;
    this._status.textContent = page > 1 ? 'Loading more…' : 'Searching…';
    this._searchView.setAttribute('aria-busy', 'true');
    this._more.disabled = true;
    try {
      const raw = await getJSON<unknown>(
        this._fetch,
        dandisetsUrl(this._baseUrl, {
          search: text,
          page,
          archiveUrl: this._settings.archiveUrl
        })
      );
      if (!this._searchTicket.isCurrent(ticket)) {
        return;
      }
      const next = toSearchPage(raw, page, this._settings.defaultVersion);
      this._results =
        page > 1 && this._results ? appendPage(this._results, next) : next;
      this._searchError.clear();
      this._renderResults(text);
    } catch (reason) {
      if (!this._searchTicket.isCurrent(ticket)) {
        return;
      }
      if (page === 1) {
        this._results = null;
        this._renderResults(text);
      }
      this._status.textContent = '';
      this._searchError.show(reason, () => void this.search(page));
      this._renderInfo();
    } finally {
      if (this._searchTicket.isCurrent(ticket)) {
        this._searchView.removeAttribute('aria-busy');
        this._more.disabled = false;
      }
    }
  }

  /** Open Dandiset `identifier` (at `version`, else the version the settings prefer). */
  async openDandiset(
    identifier: string,
    version: string | null = null,
    focus = true
  ): Promise<void> {
    this._loaded = true;
    this._searchView.hidden = true;
    this._dandiset.node.hidden = false;
    this._dandiset.setArchive(this._info.archiveUrl, this._settings.archiveUrl);
    const opening = this._dandiset.open(identifier, version, this._settings);
    if (focus) {
      this._dandiset.focus();
    }
    await opening;
  }

  /** Back from a Dandiset to the search results. */
  showResults(focus = true): void {
    if (this._searchView.hidden) {
      this._dandiset.node.hidden = true;
      this._searchView.hidden = false;
      this._selectionChanged.emit();
      this._placeChanged.emit();
      if (focus) {
        const chosen = this._list.querySelector('.jp-mod-selected') as HTMLElement | null;
        (chosen ?? this._input).focus();
      }
    }
  }

  /** Start downloading an asset to the home directory (the server does the work). */
  download(asset: IAssetContext): Promise<unknown> {
    return this._downloads.start(asset);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // Load on first show, not at JupyterLab start-up.
    if (!this._loaded) {
      const place = this._pendingPlace;
      this._pendingPlace = null;
      if (place) {
        void this._restore(place);
      } else {
        this._loadOnce();
      }
    }
  }

  private _loadOnce(): void {
    if (!this._loaded) {
      this._loaded = true;
      void this.refreshInfo();
      void this.search(1);
      void this._downloads.refresh();
    }
  }

  private async _restore(place: DandiPanel.IPlace): Promise<void> {
    this._loadOnce();
    await this.openDandiset(place.identifier, place.version, false);
    if (place.folder && this._dandiset.identifier === place.identifier) {
      await this._dandiset.showFolder(place.folder);
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._search.cancel();
    this._downloads.dispose();
    this._info.changed.disconnect(this._renderInfo, this);
    super.dispose();
  }

  private _renderInfo(): void {
    const info = this._info.info;
    if (!info) {
      this._archiveNode.textContent = 'Archive: unknown';
      this._accountNode.textContent = '';
      const failure = this._info.failure;
      // An unreachable Jupyter server fails the search alike: say it once.
      if (failure && !this._searchError.shown) {
        this._infoError.show(new Error(failure));
      } else {
        this._infoError.clear();
      }
      return;
    }
    const view = describeAccount(info);
    this._archiveNode.textContent = view.archive;
    this._archiveNode.title = `DANDI Archive API: ${view.archive}`;
    this._accountNode.textContent = view.account;
    this._dandiset.setArchive(info.archive_url, this._settings.archiveUrl);
    if (view.error && !(this._searchError.shown && this._searchError.node.textContent?.includes(view.error))) {
      this._infoError.show(Object.assign(new Error(view.error), { reason: info.error_reason }));
    } else {
      this._infoError.clear();
    }
  }

  private _renderResults(search: string): void {
    this._list.textContent = '';
    const results = this._results;
    if (!results) {
      this._more.hidden = true;
      return;
    }
    results.items.forEach((item, index) => {
      this._list.appendChild(this._renderItem(item, index === 0));
    });
    this._status.textContent = describeResults(results, search);
    this._more.hidden = !results.hasNext;
  }

  private _renderItem(item: IDandisetItem, tabStop: boolean): HTMLLIElement {
    const li = element('li', 'jp-DandiPanel-result');
    li.tabIndex = tabStop ? 0 : -1;
    li.dataset.identifier = item.identifier;
    li.dataset.version = item.version;
    const badges = badgesOf(item);
    li.setAttribute(
      'aria-label',
      `Dandiset ${item.identifier}, version ${item.version}, ` +
        `${badges.map(b => b.text).join(', ')}: ${item.name}`
    );
    const top = element('div', 'jp-DandiPanel-resultHeader');
    top.append(element('span', 'jp-DandiPanel-resultId', item.identifier));
    for (const badge of badges) {
      const node = element('span', `jp-DandiPanel-badge jp-DandiPanel-badge-${badge.kind}`, badge.text);
      node.title = badge.title;
      top.append(node);
    }
    top.append(element('span', 'jp-DandiPanel-resultVersion', item.version));
    const meta = [
      item.assetCount !== null ? `${item.assetCount.toLocaleString('en')} assets` : '',
      formatBytes(item.size)
    ].filter(Boolean);
    li.append(
      top,
      element('div', 'jp-DandiPanel-resultName', item.name),
      element('div', 'jp-DandiPanel-resultMeta', meta.join(' · '))
    );
    li.title = item.name;
    return li;
  }

  private _itemFor(node: EventTarget | null): IDandisetItem | null {
    const li = (node as HTMLElement | null)?.closest?.('.jp-DandiPanel-result');
    if (!li || !this._results) {
      return null;
    }
    const index = Array.from(this._list.children).indexOf(li);
    return this._results.items[index] ?? null;
  }

  private _choose(target: EventTarget | null): void {
    const item = this._itemFor(target);
    if (!item) {
      return;
    }
    for (const li of Array.from(this._list.children) as HTMLElement[]) {
      const on = li.dataset.identifier === item.identifier;
      li.classList.toggle('jp-mod-selected', on);
      li.setAttribute('aria-current', on ? 'true' : 'false');
      li.tabIndex = on ? 0 : -1;
    }
    this._selected.emit(item);
    void this.openDandiset(item.identifier, item.version);
  }

  private _onInputKey = (event: KeyboardEvent): void => {
    if (event.key === 'Enter') {
      event.preventDefault();
      void this.search(1);
    } else if (event.key === 'ArrowDown') {
      const first = this._list.firstElementChild as HTMLElement | null;
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  };

  private _onListClick = (event: MouseEvent): void => {
    this._choose(event.target);
  };

  private _onListKey = (event: KeyboardEvent): void => {
    const current = (event.target as HTMLElement).closest(
      '.jp-DandiPanel-result'
    ) as HTMLElement | null;
    if (!current) {
      return;
    }
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      this._choose(current);
    } else if (event.key === 'ArrowUp' && current === this._list.firstElementChild) {
      event.preventDefault();
      this._input.focus();
    } else if (moveFocus(current, event.key)) {
      event.preventDefault();
    }
  };

  private _fetch: Fetch;
  private _baseUrl: string;
  private _info: ArchiveInfo;
  private _onAction: (action: AssetAction, asset: IAssetContext) => void;
  private _settings: IPanelSettings = DEFAULT_SETTINGS;
  private _loaded = false;
  private _results: ISearchPage | null = null;
  private _search: IDebounced<[]>;
  private _searchTicket = new LatestOnly();
  private _selected = new Signal<this, IDandisetItem>(this);
  private _selectionChanged = new Signal<this, void>(this);
  private _placeChanged = new Signal<this, void>(this);
  private _pendingPlace: DandiPanel.IPlace | null = null;
  private _searchView: HTMLElement;
  private _dandiset: DandisetView;
  private _downloads: DownloadsView;
  private _input: HTMLInputElement;
  private _status: HTMLDivElement;
  private _list: HTMLUListElement;
  private _more: HTMLButtonElement;
  private _archiveNode: HTMLSpanElement;
  private _accountNode: HTMLSpanElement;
  private _infoError: ErrorBox;
  private _searchError: ErrorBox;
}

export namespace DandiPanel {
  export interface IOptions {
    /** The Jupyter server's base URL (ServerConnection settings). */
    baseUrl: string;
    /** Requests to the Jupyter server with its credentials. */
    fetch: Fetch;
    /** The archive and account (shared with the status bar); made here if not given. */
    info?: ArchiveInfo;
    /** Run an action on an asset (the plugin maps them to commands). */
    onAction?: (action: AssetAction, asset: IAssetContext) => void;
    /** Show a file of the home directory in the file browser. */
    onShowFile?: (path: string) => void;
    /** The icon of an asset-tree row (the plugin passes JupyterLab's icons). */
    entryIcon?: (entry: ITreeEntry) => HTMLElement;
  }

  /** Where the panel is, as kept across page loads. */
  export interface IPlace {
    identifier: string;
    version: string;
    /** The folder shown: "" is the top, else "a/b/". */
    folder: string;
  }

  /** A kept place if `value` is one (state from an older version may be anything). */
  export function toPlace(value: unknown): IPlace | null {
    const v = value as Partial<IPlace> | null;
    return v && typeof v === 'object' && typeof v.identifier === 'string' &&
      /^\d{6}$/.test(v.identifier) && typeof v.version === 'string' && v.version &&
      typeof v.folder === 'string'
      ? { identifier: v.identifier, version: v.version, folder: v.folder }
      : null;
  }
}
