/** The status bar item: the DANDI account the server uses, or that there is none. */
import { Widget } from '@lumino/widgets';

import { ArchiveInfo } from './info';
import { describeStatus } from './model';

export class DandiStatus extends Widget {
  constructor(
    private readonly _info: ArchiveInfo,
    onClick: () => void
  ) {
    super({ node: document.createElement('button') });
    this.addClass('jp-DandiStatus');
    const node = this.node as HTMLButtonElement;
    node.type = 'button';
    node.addEventListener('click', onClick);
    _info.changed.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this._info.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const view = describeStatus(this._info.info, this._info.failure);
    this.node.textContent = view.text;
    this.node.title = `${view.title}\n\nClick to open the DANDI panel.`;
    this.node.setAttribute('aria-label', `${view.text}. ${view.title}`);
    this.node.classList.toggle('jp-mod-signedIn', view.signedIn);
  }
}
