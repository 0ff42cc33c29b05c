/**
 * The DANDI side panel: search box, results list, archive and account line.
 *
 * The widget only builds DOM and wires events; URLs, parsing and timing live
 * in api.ts and model.ts.
 */
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { dandisetsUrl, Fetch, getJSON, infoUrl } from './api';
import {
  appendPage,
  debounce,
  DEFAULT_SETTINGS,
  describeAccount,
  describeResults,
  formatBytes,
  IDandisetItem,
  IDebounced,
  IPanelSettings,
  ISearchPage,
  IServerInfo,
  LatestOnly,
  toSearchPage
} from './model';

/** The panel's widget id; also its id in the layout restorer. */
export const PANEL_ID = 'dandi-panel';

/** Quiet time after the last keystroke before searching. */
export const SEARCH_DELAY_MS = 300;

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text) {
    node.textContent = text;
  }
  return node;
}

function messageOf(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

export class DandiPanel extends Widget {
  constructor(options: DandiPanel.IOptions) {
    super();
    this._fetch = options.fetch;
    this._baseUrl = options.baseUrl;
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
    this._infoError = element('div', 'jp-DandiPanel-error jp-DandiPanel-infoError');
    this._infoError.setAttribute('role', 'alert');
    this._infoError.hidden = true;
    info.append(this._archiveNode, this._accountNode);

    this._input = element('input', 'jp-DandiPanel-search jp-mod-styled');
    this._input.type = 'search';
    this._input.placeholder = 'Search Dandisets';
    this._input.setAttribute('aria-label', 'Search Dandisets');
    this._input.spellcheck = false;

    this._status = element('div', 'jp-DandiPanel-status');
    this._status.setAttribute('role', 'status');
    this._status.setAttribute('aria-live', 'polite');

    this._searchError = element(
      'div',
      'jp-DandiPanel-error jp-DandiPanel-searchError'
    );
    this._searchError.setAttribute('role', 'alert');
    this._searchError.hidden = true;

    this._list = element('ul', 'jp-DandiPanel-results');
    this._list.setAttribute('aria-label', 'Dandisets');

    this._more = element('button', 'jp-DandiPanel-more jp-mod-styled', 'More results');
    this._more.type = 'button';
    this._more.hidden = true;

    this.node.append(
      header,
      info,
      this._infoError,
      this._input,
      this._status,
      this._searchError,
      this._list,
      this._more
    );

    this._search = debounce(() => void this.search(1), SEARCH_DELAY_MS);
    this._input.addEventListener('input', () => this._search());
    this._input.addEventListener('keydown', this._onInputKey);
    this._list.addEventListener('click', this._onListClick);
    this._list.addEventListener('keydown', this._onListKey);
    this._more.addEventListener('click', () => {
      void this.search((this._results?.page ?? 0) + 1);
    });
  }

  /** Emitted when a result is chosen (click or Enter). */
  get selected(): ISignal<this, IDandisetItem> {
    return this._selected;
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
    }
    if (
      previous.archiveUrl !== settings.archiveUrl ||
      previous.defaultVersion !== settings.defaultVersion
    ) {
      void this.search(1);
    }
  }

  /** Move keyboard focus to the search box. */
  focusSearch(): void {
    this._input.focus();
  }

  /** Fetch the archive URL and account from the server. */
  async refreshInfo(): Promise<void> {
    const ticket = this._infoTicket.next();
    try {
      const info = await getJSON<IServerInfo>(
        this._fetch,
        infoUrl(this._baseUrl, this._settings.archiveUrl)
      );
      if (!this._infoTicket.isCurrent(ticket)) {
        return;
      }
      const view = describeAccount(info);
      this._archiveNode.textContent = view.archive;
      this._archiveNode.title = `DANDI Archive API: ${view.archive}`;
      this._accountNode.textContent = view.account;
      this._errors.info = view.error;
      this._renderErrors();
    } catch (reason) {
      if (this._infoTicket.isCurrent(ticket)) {
        this._archiveNode.textContent = 'Archive: unknown';
        this._accountNode.textContent = '';
        this._errors.info = messageOf(reason);
        this._renderErrors();
      }
    }
  }

  /** Search now for the input's text; page 1 replaces, later pages append. */
  async search(page = 1): Promise<void> {
    this._search.cancel();
    const ticket = this._searchTicket.next();
    const text = this._input.value;
    this._status.textContent = page > 1 ? 'Loading more…' : 'Searching…';
    this.node.setAttribute('aria-busy', 'true');
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
      this._errors.search = null;
      this._renderErrors();
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
      this._errors.search = messageOf(reason);
      this._renderErrors();
    } finally {
      if (this._searchTicket.isCurrent(ticket)) {
        this.node.removeAttribute('aria-busy');
        this._more.disabled = false;
      }
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // Load on first show, not at JupyterLab start-up.
    if (!this._loaded) {
      this._loaded = true;
      void this.refreshInfo();
      void this.search(1);
    }
  }

  dispose(): void {
    this._search.cancel();
    super.dispose();
  }

  private _renderErrors(): void {
    const { info, search } = this._errors;
    const show = (node: HTMLElement, message: string | null) => {
      node.textContent = message ?? '';
      node.hidden = !message;
    };
    show(this._searchError, search);
    // An unreachable archive fails both requests alike: say it once.
    show(this._infoError, info === search ? null : info);
  }

  private _renderResults(search: string): void {
    this._list.textContent = '';
    const results = this._results;
    if (!results) {
      this._more.hidden = true;
      return;
    }
    for (const item of results.items) {
      this._list.appendChild(this._renderItem(item));
    }
    this._status.textContent = describeResults(results, search);
    this._more.hidden = !results.hasNext;
  }

  private _renderItem(item: IDandisetItem): HTMLLIElement {
    const li = element('li', 'jp-DandiPanel-result');
    li.tabIndex = 0;
    li.dataset.identifier = item.identifier;
    li.dataset.version = item.version;
    li.setAttribute(
      'aria-label',
      `Dandiset ${item.identifier}, version ${item.version}: ${item.name}`
    );
    const top = element('div', 'jp-DandiPanel-resultHeader');
    top.append(
      element('span', 'jp-DandiPanel-resultId', item.identifier),
      element('span', 'jp-DandiPanel-resultVersion', item.version)
    );
    const meta = [
      item.assetCount !== null ? `${item.assetCount} assets` : '',
      formatBytes(item.size),
      item.embargoed ? 'embargoed' : ''
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
    for (const li of Array.from(this._list.children)) {
      const on = (li as HTMLElement).dataset.identifier === item.identifier;
      li.classList.toggle('jp-mod-selected', on);
      li.setAttribute('aria-current', on ? 'true' : 'false');
    }
    this._selected.emit(item);
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
    switch (event.key) {
      case 'Enter':
      case ' ':
        event.preventDefault();
        this._choose(current);
        break;
      case 'ArrowDown':
        event.preventDefault();
        (current.nextElementSibling as HTMLElement | null)?.focus();
        break;
      case 'ArrowUp':
        event.preventDefault();
        ((current.previousElementSibling as HTMLElement | null) ?? this._input).focus();
        break;
    }
  };

  private _fetch: Fetch;
  private _baseUrl: string;
  private _settings: IPanelSettings = DEFAULT_SETTINGS;
  private _loaded = false;
  private _results: ISearchPage | null = null;
  private _errors: { info: string | null; search: string | null } = {
    info: null,
    search: null
  };
  private _search: IDebounced<[]>;
  private _searchTicket = new LatestOnly();
  private _infoTicket = new LatestOnly();
  private _selected = new Signal<this, IDandisetItem>(this);
  private _input: HTMLInputElement;
  private _status: HTMLDivElement;
  private _list: HTMLUListElement;
  private _more: HTMLButtonElement;
  private _archiveNode: HTMLSpanElement;
  private _accountNode: HTMLSpanElement;
  private _infoError: HTMLDivElement;
  private _searchError: HTMLDivElement;
}

export namespace DandiPanel {
  export interface IOptions {
    /** The Jupyter server's base URL (ServerConnection settings). */
    baseUrl: string;
    /** GET a URL on the Jupyter server with its credentials. */
    fetch: Fetch;
  }
}
