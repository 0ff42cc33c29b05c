/**
 * The panel's downloads: "Download to home" starts one on the server, and this
 * list shows each with a progress bar, polling while any runs. Nothing here
 * waits on a download: the server does the work.
 */
import { downloadsUrl, downloadUrl, Fetch, getJSON, requestJSON } from './api';
import { IAssetContext } from './assets';
import { button, element, ErrorBox } from './dom';
import {
  describeDownload,
  IDownload,
  IProgressSample,
  isActive,
  POLL_MS,
  rate
} from './downloads';

/** What POST dandi/api/downloads is sent. */
interface IDownloadRequest {
  dandiset: string;
  version: string;
  asset_id: string;
  dest?: string;
  archive?: string;
}

export interface IDownloadsViewOptions {
  fetch: Fetch;
  baseUrl: string;
  /** Show a downloaded file (relative to the home directory) in the file browser. */
  onShow: (path: string) => void;
}

export class DownloadsView {
  readonly node: HTMLElement;

  constructor(private readonly _options: IDownloadsViewOptions) {
    this.node = element('section', 'jp-DandiPanel-downloads');
    this.node.setAttribute('aria-label', 'Downloads');
    this.node.hidden = true;
    this._error = new ErrorBox('jp-DandiPanel-downloadError');
    this._list = element('ul', 'jp-DandiPanel-downloadList');
    this._notice = element('div', 'jp-DandiPanel-downloadNotice');
    this._notice.setAttribute('role', 'status');
    this._notice.hidden = true;
    this.node.append(
      element('h4', 'jp-DandiPanel-sectionTitle', 'Downloads to your home directory'),
      this._error.node,
      this._notice,
      this._list
    );
  }

  /** The downloads as last fetched. */
  get downloads(): IDownload[] {
    return this._downloads;
  }

  /** Start downloading `asset` on the server; returns once the server has accepted it. */
  async start(asset: IAssetContext): Promise<IDownload | null> {
    const request: IDownloadRequest = {
      dandiset: asset.dandiset,
      version: asset.version,
      asset_id: asset.assetId
    };
    if (asset.archiveOverride) {
      request.archive = asset.archiveOverride;
    }
    return this._post(request);
  }

  /** Fetch the list now; keeps polling while a download is active. */
  async refresh(): Promise<void> {
    if (this._disposed) {
      return;
    }
    try {
      const body = await getJSON<{ downloads: IDownload[] }>(
        this._options.fetch,
        downloadsUrl(this._options.baseUrl)
      );
      this._update(body.downloads ?? []);
    } catch (reason) {
      this._error.show(reason, () => void this.refresh());
    }
    this._schedule();
  }

  dispose(): void {
    this._disposed = true;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private async _post(request: IDownloadRequest): Promise<IDownload | null> {
    this._error.clear();
    this._showNotice('');
    try {
      const download = await requestJSON<IDownload>(
        this._options.fetch,
        downloadsUrl(this._options.baseUrl),
        { method: 'POST', body: JSON.stringify(request) }
      );
      this._requests.set(download.id, request);
      const before = this._downloads.find(d => d.dest === download.dest);
      this._update([...this._downloads.filter(d => d.dest !== download.dest), download]);
      // A second click must say something: the server answers with the same download.
      this._showNotice(repeatNotice(download, before));
      this._schedule();
      // Bring its progress into view (jsdom has no scrollIntoView).
      this._list.lastElementChild?.scrollIntoView?.({ block: 'nearest' });
      return download;
    } catch (reason) {
      this.node.hidden = false;
      this._error.show(reason);
      return null;
    }
  }

  private async _delete(download: IDownload, discard = false): Promise<void> {
    try {
      await requestJSON<IDownload>(
        this._options.fetch,
        downloadUrl(this._options.baseUrl, download.id, discard),
        { method: 'DELETE' }
      );
    } catch (reason) {
      this._error.show(reason);
    }
    await this.refresh();
  }

  private _retry(download: IDownload): void {
    const request = this._requests.get(download.id) ?? {
      dandiset: download.dandiset,
      version: download.version,
      asset_id: download.asset_id,
      dest: download.dest
    };
    void this._post({ ...request, dest: download.dest });
  }

  private _showNotice(text: string): void {
    this._notice.textContent = text;
    this._notice.hidden = !text;
  }

  private _schedule(): void {
    if (this._disposed || this._timer !== null || !this._downloads.some(isActive)) {
      return;
    }
    this._timer = setTimeout(() => {
      this._timer = null;
      void this.refresh();
    }, POLL_MS);
  }

  private _update(downloads: IDownload[]): void {
    const now = Date.now();
    this._downloads = downloads;
    this.node.hidden = downloads.length === 0 && !this._error.shown;
    this._list.textContent = '';
    for (const download of downloads) {
      const sample: IProgressSample = { received: download.received, at: now };
      const previous = this._samples.get(download.id);
      const speed = rate(previous?.[0], sample);
      // Keep the older sample for a steadier rate over two polls.
      this._samples.set(download.id, [previous?.[1] ?? sample, sample]);
      this._list.appendChild(this._renderRow(download, speed));
    }
  }

  private _renderRow(download: IDownload, speed: number | null): HTMLLIElement {
    const view = describeDownload(download, speed);
    const li = element('li', `jp-DandiPanel-download jp-mod-${download.state}`);
    li.dataset.id = download.id;
    li.title = `~/${download.dest}`;
    const name = element('div', 'jp-DandiPanel-downloadName', view.name);
    const progress = element('progress', 'jp-DandiPanel-progress');
    progress.max = 1;
    if (view.fraction !== null) {
      progress.value = view.fraction;
    }
    progress.setAttribute('aria-label', `Download of ${view.name}`);
    const detail = element('div', 'jp-DandiPanel-downloadDetail', view.detail);
    detail.setAttribute('role', view.failed ? 'alert' : 'status');
    const buttons = element('div', 'jp-DandiPanel-downloadButtons');
    if (view.canCancel) {
      buttons.append(button('jp-DandiPanel-cancel', 'Cancel', () => void this._delete(download),
        'Stop; the part already downloaded is kept, so Retry resumes'));
    }
    if (view.canRetry) {
      buttons.append(button('jp-DandiPanel-resume', 'Retry', () => this._retry(download),
        'Download again, resuming from what is already there'));
    }
    if (view.canShow) {
      buttons.append(button('jp-DandiPanel-show', 'Show in file browser',
        () => this._options.onShow(download.dest)));
    }
    if (!view.active) {
      buttons.append(button('jp-DandiPanel-forget', 'Remove', () => void this._delete(download, !view.canShow),
        view.canShow ? 'Remove from this list (the file stays)' : 'Remove from this list and delete the partial file'));
    }
    li.append(name, progress, detail, buttons);
    return li;
  }

  private _downloads: IDownload[] = [];
  private _requests = new Map<string, IDownloadRequest>();
  private _samples = new Map<string, [IProgressSample, IProgressSample]>();
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _disposed = false;
  private _error: ErrorBox;
  private _notice: HTMLDivElement;
  private _list: HTMLUListElement;
}

/** What to say when "Download" was pressed for a file already under way or already there. */
export function repeatNotice(download: IDownload, before: IDownload | undefined): string {
  const name = download.path.slice(download.path.lastIndexOf('/') + 1) || download.dest;
  if (before && before.id === download.id && isActive(download)) {
    return `Already downloading ${name}: its progress is below.`;
  }
  if (download.state === 'done') {
    return `Already downloaded: ${name} is in your home directory at ~/${download.dest}.`;
  }
  return '';
}
