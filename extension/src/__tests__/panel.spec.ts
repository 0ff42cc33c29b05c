/**
 * @jest-environment jsdom
 *
 * The panel's DOM and behaviour against a fake Jupyter server (a Fetch that
 * answers like the dandilab server extension).
 */
import { Widget } from '@lumino/widgets';

import { Fetch, IRequestInit } from '../api';
import { IAssetContext } from '../assets';
import { AssetAction } from '../dandisetview';
import { DandiPanel, SEARCH_DELAY_MS } from '../panel';

const ASSET = '32cb0ae9-49fd-4bf9-b939-3960df7aeca2';

const DANDISET_000006 = {
  identifier: '000006',
  embargo_status: 'OPEN',
  draft_version: { version: 'draft', name: 'Mouse ALM draft', asset_count: 53, size: 139600500 },
  most_recent_published_version: {
    version: '0.220126.1855',
    name: 'Mouse anterior lateral motor cortex (ALM) in delay response task',
    asset_count: 53,
    size: 139600500
  }
};

type Answer = [number, unknown];

/** A fake server: routes by path, records every request. */
class FakeServer {
  requests: Array<{ path: string; query: URLSearchParams; init?: IRequestInit }> = [];
  routes: Record<string, (query: URLSearchParams, init?: IRequestInit) => Answer> = {
    info: () => [200, { archive_url: 'http://archive/api', username: null, authenticated: false, has_api_key: false, error: null }],
    dandisets: query =>
      query.get('search') === 'nothing'
        ? [200, { count: 0, next: null, previous: null, results: [] }]
        : [200, { count: 1, next: null, previous: null, results: [DANDISET_000006] }],
    'dandisets/000006': () => [200, DANDISET_000006],
    'dandisets/000006/versions': () => [
      200,
      { results: [{ version: 'draft' }, { version: '0.220126.1855', created: '2022-01-26T00:00:00Z' }] }
    ],
    'dandisets/000006/versions/0.220126.1855': () => [
      200,
      {
        version: '0.220126.1855',
        asset_count: 53,
        size: 139600500,
        metadata: {
          name: 'Mouse anterior lateral motor cortex (ALM) in delay response task',
          description: 'Extracellular recordings.',
          contributor: [{ name: 'Svoboda, Karel', roleName: ['dcite:ContactPerson'] }],
          license: ['spdx:CC-BY-4.0'],
          doi: '10.48324/dandi.000006/0.220126.1855',
          citation: 'Economo; Svoboda (2022) Mouse ALM. https://doi.org/10.48324/dandi.000006/0.220126.1855'
        }
      }
    ],
    'dandisets/000006/versions/0.220126.1855/paths': query =>
      query.get('path_prefix') === 'sub-anm369963/'
        ? [200, {
            count: 1, next: null, results: [{
              path: 'sub-anm369963/sub-anm369963_ses-20170228.nwb', aggregate_files: 1,
              aggregate_size: 276632, asset: { asset_id: ASSET, url: 'http://s3/blobs/x' }
            }]
          }]
        : [200, {
            count: 2, next: null, results: [
              { path: 'dandiset.yaml', aggregate_files: 1, aggregate_size: 2963,
                asset: { asset_id: '00000000-0000-4000-8000-000000000009', url: 'http://s3/y' } },
              { path: 'sub-anm369963', aggregate_files: 1, aggregate_size: 276632, asset: null }
            ]
          }],
    downloads: (_q, init) =>
      init?.method === 'POST'
        ? [202, { ...this.download, state: 'running', received: 0 }]
        : [200, { downloads: this.downloadsListed }]
  };
  download = {
    id: 'd'.repeat(32), dandiset: '000006', version: '0.220126.1855', asset_id: ASSET,
    path: 'sub-anm369963/sub-anm369963_ses-20170228.nwb',
    dest: 'dandi/000006/0.220126.1855/sub-anm369963/sub-anm369963_ses-20170228.nwb',
    size: 276632, received: 276632, resumed_from: 0, state: 'done', error: null,
    started: 0, finished: 1
  };
  downloadsListed: unknown[] = [];

  fetch: Fetch = async (url, init) => {
    const parsed = new URL(url, 'http://jupyter');
    const path = decodeURIComponent(parsed.pathname.replace(/^\/base\/dandi\/api\//, ''));
    this.requests.push({ path, query: parsed.searchParams, init });
    const route = this.routes[path];
    const [status, body] = route
      ? route(parsed.searchParams, init)
      : [404, { message: `no route ${path}`, reason: 'not-found' }];
    return { ok: status < 300, status, text: async () => JSON.stringify(body) };
  };

  count(path: string): number {
    return this.requests.filter(r => r.path === path).length;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
}

function $(panel: DandiPanel, selector: string): HTMLElement {
  const node = panel.node.querySelector(selector) as HTMLElement | null;
  if (!node) {
    throw new Error(`${selector} is not in the panel`);
  }
  return node;
}

function key(node: HTMLElement, name: string): void {
  node.dispatchEvent(new KeyboardEvent('keydown', { key: name, bubbles: true, cancelable: true }));
}

describe('DandiPanel', () => {
  let server: FakeServer;
  let panel: DandiPanel;
  let actions: Array<[AssetAction, IAssetContext]>;
  let shown: string[];

  beforeEach(async () => {
    server = new FakeServer();
    actions = [];
    shown = [];
    panel = new DandiPanel({
      baseUrl: '/base/',
      fetch: server.fetch,
      onAction: (action, asset) => actions.push([action, asset]),
      onShowFile: path => shown.push(path)
    });
    // As in JupyterLab's sidebar: attached hidden, loaded when first shown.
    panel.hide();
    Widget.attach(panel, document.body);
    expect(server.requests).toHaveLength(0);
    panel.show();
    await settle();
  });

  afterEach(() => {
    panel.dispose();
  });

  it('loads the account, the first results and the downloads when shown', () => {
    expect(server.count('info')).toBe(1);
    expect(server.count('dandisets')).toBe(1);
    expect(server.count('downloads')).toBe(1);
    expect($(panel, '.jp-DandiPanel-account').textContent).toMatch(/Anonymous/);
    const result = $(panel, '.jp-DandiPanel-result');
    expect(result.textContent).toContain('000006');
    expect(Array.from(result.querySelectorAll('.jp-DandiPanel-badge')).map(b => b.textContent)).toEqual([
      'published'
    ]);
    expect($(panel, '.jp-DandiPanel-resultMeta').textContent).toBe('53 assets · 140 MB');
  });

  it('searches once typing stops', async () => {
    jest.useFakeTimers();
    try {
      const input = $(panel, '.jp-DandiPanel-search') as HTMLInputElement;
      for (const text of ['a', 'an', 'anterior']) {
        input.value = text;
        input.dispatchEvent(new Event('input'));
        jest.advanceTimersByTime(SEARCH_DELAY_MS - 50);
      }
      expect(server.count('dandisets')).toBe(1);
      jest.advanceTimersByTime(100);
      expect(server.count('dandisets')).toBe(2);
      expect(server.requests[server.requests.length - 1].query.get('search')).toBe('anterior');
    } finally {
      jest.useRealTimers();
    }
  });

  it('says when nothing matches, rather than showing an empty list', async () => {
    await panel.searchFor('nothing');
    expect($(panel, '.jp-DandiPanel-status').textContent).toBe('No Dandisets match "nothing".');
  });

  it('shows an unreachable archive with a Retry', async () => {
    server.routes.dandisets = () => [
      502,
      { message: 'Could not reach the DANDI archive at http://archive/api: refused.', reason: 'unreachable' }
    ];
    await panel.search(1);
    const error = $(panel, '.jp-DandiPanel-searchError');
    expect(error.hidden).toBe(false);
    expect(error.getAttribute('role')).toBe('alert');
    expect(error.textContent).toContain('The DANDI archive cannot be reached');
    expect(error.textContent).toContain('http://archive/api');
    expect(panel.node.querySelectorAll('.jp-DandiPanel-result')).toHaveLength(0);
    server.routes.dandisets = () => [200, { count: 1, next: null, results: [DANDISET_000006] }];
    ($(panel, '.jp-DandiPanel-searchError .jp-DandiPanel-retry') as HTMLButtonElement).click();
    await settle();
    expect($(panel, '.jp-DandiPanel-searchError').hidden).toBe(true);
    expect(panel.node.querySelectorAll('.jp-DandiPanel-result')).toHaveLength(1);
  });

  it('opens a Dandiset from the keyboard and browses it folder by folder', async () => {
    panel.configure({ archiveUrl: '', defaultVersion: 'latest-published' });
    await settle();
    expect($(panel, '.jp-DandiPanel-resultVersion').textContent).toBe('0.220126.1855');
    const input = $(panel, '.jp-DandiPanel-search');
    key(input, 'ArrowDown');
    const result = $(panel, '.jp-DandiPanel-result');
    expect(document.activeElement).toBe(result);
    key(result, 'Enter');
    await settle();
    expect($(panel, '.jp-DandiPanel-searchView').hidden).toBe(true);
    const view = $(panel, '.jp-DandiPanel-dandiset');
    expect(view.hidden).toBe(false);
    expect($(panel, '.jp-DandiPanel-dandisetTitle').textContent).toBe(
      'Mouse anterior lateral motor cortex (ALM) in delay response task'
    );
    const select = $(panel, '.jp-DandiPanel-version') as HTMLSelectElement;
    expect(select.value).toBe('0.220126.1855');
    expect(Array.from(select.options).map(o => o.value)).toEqual(['draft', '0.220126.1855']);
    const facts = $(panel, '.jp-DandiPanel-details').textContent;
    expect(facts).toContain('Svoboda, Karel (Contact person)');
    expect(facts).toContain('CC-BY-4.0');
    expect(($(panel, '.jp-DandiPanel-doi') as HTMLAnchorElement).href).toBe(
      'https://doi.org/10.48324/dandi.000006/0.220126.1855'
    );
    // The top folder: folders first.
    const rows = Array.from(panel.node.querySelectorAll('.jp-DandiPanel-entry')) as HTMLElement[];
    expect(rows.map(r => r.dataset.path)).toEqual(['sub-anm369963', 'dandiset.yaml']);
    expect($(panel, '.jp-DandiPanel-folderStatus').textContent).toBe('2 entries · 2 files · 280 kB');
    rows[0].focus();
    key(rows[0], 'Enter');
    await settle();
    const paths = server.requests.filter(r => r.path.endsWith('/paths'));
    expect(paths[paths.length - 1].query.get('path_prefix')).toBe('sub-anm369963/');
    const file = $(panel, '.jp-DandiPanel-entry');
    expect(document.activeElement).toBe(file);
    expect(file.getAttribute('aria-label')).toBe('File sub-anm369963_ses-20170228.nwb, NWB, 277 kB');
    // Enter selects the file and moves to its actions.
    key(file, 'Enter');
    expect(panel.selectedAsset).toMatchObject({
      dandiset: '000006',
      version: '0.220126.1855',
      path: 'sub-anm369963/sub-anm369963_ses-20170228.nwb',
      assetId: ASSET,
      kind: 'nwb',
      archiveUrl: 'http://archive/api'
    });
    const open = $(panel, '.jp-DandiPanel-action-open') as HTMLButtonElement;
    expect(document.activeElement).toBe(open);
    open.click();
    expect(actions.map(([action, asset]) => [action, asset.path])).toEqual([
      ['open', 'sub-anm369963/sub-anm369963_ses-20170228.nwb']
    ]);
    // Backspace goes up; Escape goes back to the results.
    key($(panel, '.jp-DandiPanel-entry'), 'Backspace');
    await settle();
    expect(panel.dandisetView.folder).toBe('');
    key($(panel, '.jp-DandiPanel-entry'), 'Escape');
    expect($(panel, '.jp-DandiPanel-searchView').hidden).toBe(false);
    expect(panel.selectedAsset).toBeNull();
  });

  it('disables the actions that do not fit the asset', async () => {
    await panel.openDandiset('000006', '0.220126.1855');
    expect(panel.dandisetView.selectPath('dandiset.yaml')).toBe(true);
    const disabled = Array.from(panel.node.querySelectorAll('.jp-DandiPanel-action'))
      .filter(b => (b as HTMLButtonElement).disabled)
      .map(b => (b as HTMLElement).dataset.action);
    expect(disabled).toEqual(['open', 'explore', 'neurosift']);
    expect(($(panel, '.jp-DandiPanel-action-open') as HTMLElement).title).toMatch(/Only NWB and Zarr/);
  });

  it('explains an embargoed Dandiset', async () => {
    server.routes['dandisets/000007'] = () => [
      403,
      { message: 'Dandiset 000007 is embargoed: only its owners may see it.', reason: 'unauthorized' }
    ];
    await panel.openDandiset('000007');
    const error = $(panel, '.jp-DandiPanel-dandisetError');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toContain('Embargoed: not allowed');
    expect(error.textContent).toContain('only its owners');
    expect(error.querySelector('.jp-DandiPanel-retry')).toBeNull(); // retrying will not help
  });

  it('explains a Dandiset that does not exist', async () => {
    await panel.openDandiset('000404');
    expect($(panel, '.jp-DandiPanel-dandisetError').textContent).toContain('Not found');
  });

  it('downloads in the background and shows progress, then the file', async () => {
    await panel.openDandiset('000006', '0.220126.1855');
    await panel.dandisetView.showFolder('sub-anm369963/');
    panel.dandisetView.selectPath('sub-anm369963/sub-anm369963_ses-20170228.nwb');
    server.downloadsListed = [{ ...server.download, state: 'running', received: 138316 }];
    await panel.download(panel.selectedAsset!);
    const post = server.requests.find(r => r.init?.method === 'POST');
    expect(JSON.parse(post!.init!.body!)).toEqual({
      dandiset: '000006',
      version: '0.220126.1855',
      asset_id: ASSET
    });
    const row = $(panel, '.jp-DandiPanel-download');
    expect(row.querySelector('progress')).not.toBeNull();
    expect($(panel, '.jp-DandiPanel-downloads').hidden).toBe(false);
    expect(row.querySelector('.jp-DandiPanel-cancel')).not.toBeNull();
    // The panel polls until the server says it is done.
    server.downloadsListed = [server.download];
    await new Promise(resolve => setTimeout(resolve, 900));
    await settle();
    const done = $(panel, '.jp-DandiPanel-download');
    expect(done.textContent).toContain('Done: 277 kB in ~/dandi/000006/0.220126.1855/');
    ($(panel, '.jp-DandiPanel-show') as HTMLButtonElement).click();
    expect(shown).toEqual([server.download.dest]);
  });

  it('shows a refused download', async () => {
    server.routes.downloads = (_q, init) =>
      init?.method === 'POST'
        ? [409, { message: 'dandi/x already exists in your home directory', reason: 'conflict' }]
        : [200, { downloads: [] }];
    await panel.openDandiset('000006', '0.220126.1855');
    panel.dandisetView.selectPath('dandiset.yaml');
    await panel.download(panel.selectedAsset!);
    const error = $(panel, '.jp-DandiPanel-downloadError');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toContain('already exists');
  });
  it('says so when Download is pressed again for a file under way, or already there', async () => {
    await panel.openDandiset('000006', '0.220126.1855');
    await panel.dandisetView.showFolder('sub-anm369963/');
    panel.dandisetView.selectPath('sub-anm369963/sub-anm369963_ses-20170228.nwb');
    server.downloadsListed = [{ ...server.download, state: 'running', received: 138316 }];
    await panel.download(panel.selectedAsset!);
    const notice = $(panel, '.jp-DandiPanel-downloadNotice');
    expect(notice.hidden).toBe(true); // the first press: the row says it all
    await panel.download(panel.selectedAsset!); // the server answers with the same download
    expect(notice.hidden).toBe(false);
    expect(notice.getAttribute('role')).toBe('status');
    expect(notice.textContent).toBe('Already downloading sub-anm369963_ses-20170228.nwb: its progress is below.');
    expect(panel.node.querySelectorAll('.jp-DandiPanel-download')).toHaveLength(1);
    server.routes.downloads = (_q, init) =>
      init?.method === 'POST' ? [200, server.download] : [200, { downloads: [server.download] }];
    await panel.download(panel.selectedAsset!);
    expect(notice.textContent).toBe(
      'Already downloaded: sub-anm369963_ses-20170228.nwb is in your home directory at ' +
        '~/dandi/000006/0.220126.1855/sub-anm369963/sub-anm369963_ses-20170228.nwb.'
    );
  });

  it('reports its place and goes back to it', async () => {
    const places: Array<DandiPanel.IPlace | null> = [];
    panel.placeChanged.connect(() => places.push(panel.place));
    await panel.openDandiset('000006', '0.220126.1855');
    await panel.dandisetView.showFolder('sub-anm369963/');
    expect(places[places.length - 1]).toEqual({
      identifier: '000006', version: '0.220126.1855', folder: 'sub-anm369963/'
    });
    panel.showResults();
    expect(places[places.length - 1]).toBeNull();

    // A fresh panel (a page reload), hidden: it restores when first shown, not before.
    const again = new DandiPanel({ baseUrl: '/base/', fetch: server.fetch });
    again.hide();
    Widget.attach(again, document.body);
    const before = server.requests.length;
    await again.restorePlace(DandiPanel.toPlace(places[0] ?? {
      identifier: '000006', version: '0.220126.1855', folder: 'sub-anm369963/'
    })!);
    expect(server.requests.length).toBe(before);
    await again.restorePlace({ identifier: '000006', version: '0.220126.1855', folder: 'sub-anm369963/' });
    again.show();
    await settle();
    expect(again.place).toEqual({ identifier: '000006', version: '0.220126.1855', folder: 'sub-anm369963/' });
    const rows = Array.from(again.node.querySelectorAll('.jp-DandiPanel-entry')) as HTMLElement[];
    expect(rows.map(r => r.dataset.path)).toEqual(['sub-anm369963/sub-anm369963_ses-20170228.nwb']);
    expect(again.node.querySelector('.jp-DandiPanel-account')!.textContent).toMatch(/Anonymous/);
    again.dispose();
  });

  it('keeps only well-formed places', () => {
    expect(DandiPanel.toPlace({ identifier: '000006', version: 'draft', folder: '' })).toEqual({
      identifier: '000006', version: 'draft', folder: ''
    });
    for (const bad of [null, 'x', {}, { identifier: '6', version: 'draft', folder: '' },
      { identifier: '000006', version: '', folder: '' }, { identifier: '000006', version: 'draft' }]) {
      expect(DandiPanel.toPlace(bad)).toBeNull();
    }
  });

  it('draws tree icons with the icon it is given, never a font glyph', async () => {
    const icons: string[] = [];
    const withIcons = new DandiPanel({
      baseUrl: '/base/',
      fetch: server.fetch,
      entryIcon: entry => {
        icons.push(entry.path);
        const svg = document.createElement('span');
        svg.className = 'given-icon';
        return svg;
      }
    });
    Widget.attach(withIcons, document.body);
    await withIcons.openDandiset('000006', '0.220126.1855');
    expect(icons).toEqual(['sub-anm369963', 'dandiset.yaml']);
    const icon = withIcons.node.querySelector('.jp-DandiPanel-entry.jp-mod-folder .jp-DandiPanel-entryIcon')!;
    expect(icon.classList.contains('given-icon')).toBe(true);
    expect(icon.classList.contains('jp-mod-folder')).toBe(true);
    expect(icon.getAttribute('aria-hidden')).toBe('true');
    withIcons.dispose();
  });
});
