/**
 * Which archive the server uses and with which DANDI account: fetched from
 * `GET dandi/api/info`, shared by the panel and the status bar item.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { Fetch, getJSON, infoUrl } from './api';
import { IServerInfo, LatestOnly } from './model';

export class ArchiveInfo {
  constructor(
    private readonly _fetch: Fetch,
    private readonly _baseUrl: string
  ) {}

  /** Emitted after every refresh, successful or not. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The last answer, or null before the first one (or after a failure). */
  get info(): IServerInfo | null {
    return this._info;
  }

  /** Why the last refresh failed (the Jupyter server did not answer), else null. */
  get failure(): string | null {
    return this._failure;
  }

  /** The archive API the panel browses: the override, else the server's. */
  get archiveUrl(): string {
    return this._info?.archive_url ?? this._archiveOverride;
  }

  /** Ask the server again; `archiveOverride` is the archive URL setting. */
  async refresh(archiveOverride = this._archiveOverride): Promise<void> {
    this._archiveOverride = archiveOverride;
    const ticket = this._ticket.next();
    try {
      const info = await getJSON<IServerInfo>(
        this._fetch,
        infoUrl(this._baseUrl, archiveOverride)
      );
      if (this._ticket.isCurrent(ticket)) {
        this._info = info;
        this._failure = null;
        this._changed.emit();
      }
    } catch (reason) {
      if (this._ticket.isCurrent(ticket)) {
        this._info = null;
        this._failure = reason instanceof Error ? reason.message : String(reason);
        this._changed.emit();
      }
    }
  }

  private _info: IServerInfo | null = null;
  private _failure: string | null = null;
  private _archiveOverride = '';
  private _ticket = new LatestOnly();
  private _changed = new Signal<this, void>(this);
}
