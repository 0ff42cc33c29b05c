import {
  appendPage,
  badgesOf,
  debounce,
  describeAccount,
  describeError,
  describeStatus,
  parseDandisetRef,
  describeResults,
  formatBytes,
  LatestOnly,
  toDandisetItem,
  toPanelSettings,
  toSearchPage,
  UnexpectedResponseError
} from '../model';

// Shaped like the archive's GET /dandisets/ (000006 and 000004 of the fixtures).
const page1 = {
  count: 3,
  next: 'https://api.dandiarchive.org/api/dandisets/?page=2&page_size=2',
  previous: null,
  results: [
    {
      identifier: '000006',
      embargo_status: 'OPEN',
      draft_version: {
        version: 'draft',
        name: 'Mouse anterior lateral motor cortex (ALM) in delay response task',
        asset_count: 53,
        size: 139600500,
        status: 'Valid'
      },
      most_recent_published_version: {
        version: '0.220126.1855',
        name: 'Mouse ALM (published)',
        asset_count: 53,
        size: 139600500
      }
    },
    {
      identifier: '000999',
      embargo_status: 'EMBARGOED',
      draft_version: { version: 'draft', name: '', asset_count: 0, size: 0 },
      most_recent_published_version: null
    }
  ]
};

describe('toDandisetItem', () => {
  it('shows the draft by default', () => {
    expect(toDandisetItem(page1.results[0])).toEqual({
      identifier: '000006',
      name: 'Mouse anterior lateral motor cortex (ALM) in delay response task',
      version: 'draft',
      assetCount: 53,
      size: 139600500,
      embargoed: false,
      embargoStatus: 'OPEN',
      published: true,
      publishedVersion: '0.220126.1855'
    });
  });

  it('shows the latest published version when asked, else the draft', () => {
    expect(toDandisetItem(page1.results[0], 'latest-published').version).toBe('0.220126.1855');
    const unpublished = toDandisetItem(page1.results[1], 'latest-published');
    expect(unpublished.version).toBe('draft');
    expect(unpublished.name).toBe('(untitled)');
    expect(unpublished.embargoed).toBe(true);
  });
});

describe('toSearchPage', () => {
  it('converts a page', () => {
    const page = toSearchPage(page1, 1);
    expect(page.items.map(i => i.identifier)).toEqual(['000006', '000999']);
    expect(page).toMatchObject({ count: 3, page: 1, hasNext: true });
  });

  it('accepts later pages without a count', () => {
    const page = toSearchPage({ count: null, next: null, results: [] }, 2);
    expect(page).toEqual({ items: [], count: null, page: 2, hasNext: false });
  });

  it('rejects what is not a page of Dandisets', () => {
    expect(() => toSearchPage({ detail: 'nope' }, 1)).toThrow(UnexpectedResponseError);
    expect(() => toSearchPage({ results: [{ name: 'x' }] }, 1)).toThrow(/result 0/);
    expect(() => toSearchPage(null, 1)).toThrow(/results/);
  });
});

describe('appendPage and describeResults', () => {
  it('appends a further page and keeps the first count', () => {
    const first = toSearchPage(page1, 1);
    const second = toSearchPage(
      { count: null, next: null, results: [{ identifier: '000004', draft_version: { version: 'draft', name: 'Human' } }] },
      2
    );
    const both = appendPage(first, second);
    expect(both.items).toHaveLength(3);
    expect(both).toMatchObject({ count: 3, page: 2, hasNext: false });
    expect(describeResults(first, '')).toBe('Showing 2 of 3 Dandisets');
    expect(describeResults(both, '')).toBe('3 Dandisets');
  });

  it('says when nothing matches', () => {
    const empty = toSearchPage({ count: 0, next: null, results: [] }, 1);
    expect(describeResults(empty, ' zebrafish ')).toBe('No Dandisets match "zebrafish".');
    expect(describeResults(empty, '')).toBe('No Dandisets found.');
  });
});

describe('describeAccount', () => {
  it('names the signed-in user', () => {
    expect(
      describeAccount({ archive_url: 'https://api.dandiarchive.org/api', username: 'ann', authenticated: true })
    ).toEqual({ archive: 'https://api.dandiarchive.org/api', account: 'Signed in as ann', error: null });
  });

  it('says when there is no key', () => {
    expect(describeAccount({ archive_url: 'u', username: null, authenticated: false, error: null }).account).toMatch(
      /no DANDI API key/
    );
  });

  it('carries the error', () => {
    const view = describeAccount({ archive_url: 'u', username: null, authenticated: false, error: 'unreachable' });
    expect(view).toEqual({ archive: 'u', account: 'Not signed in', error: 'unreachable' });
  });
});

describe('formatBytes', () => {
  it('uses decimal units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1500)).toBe('1.5 kB');
    expect(formatBytes(139600500)).toBe('140 MB');
    expect(formatBytes(6197474020)).toBe('6.2 GB');
    expect(formatBytes(null)).toBe('');
  });
});

describe('toPanelSettings', () => {
  it('reads the settings with defaults', () => {
    expect(toPanelSettings({ archiveUrl: ' https://a/api ', defaultVersion: 'latest-published' })).toEqual({
      archiveUrl: 'https://a/api',
      defaultVersion: 'latest-published'
    });
    expect(toPanelSettings({ defaultVersion: 'bogus' })).toEqual({ archiveUrl: '', defaultVersion: 'draft' });
    expect(toPanelSettings(undefined)).toEqual({ archiveUrl: '', defaultVersion: 'draft' });
  });
});

describe('debounce', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('calls once, with the last arguments, after calls stop', () => {
    const calls: string[] = [];
    const search = debounce((text: string) => calls.push(text), 300);
    search('m');
    jest.advanceTimersByTime(200);
    search('mo');
    jest.advanceTimersByTime(200);
    search('mouse');
    expect(calls).toEqual([]);
    jest.advanceTimersByTime(299);
    expect(calls).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(calls).toEqual(['mouse']);
  });

  it('can be cancelled', () => {
    const fn = jest.fn();
    const debounced = debounce(fn, 300);
    debounced();
    debounced.cancel();
    jest.advanceTimersByTime(1000);
    expect(fn).not.toHaveBeenCalled();
  });
});

describe('LatestOnly', () => {
  it('makes earlier tickets stale', () => {
    const latest = new LatestOnly();
    const first = latest.next();
    expect(latest.isCurrent(first)).toBe(true);
    const second = latest.next();
    expect(latest.isCurrent(first)).toBe(false);
    expect(latest.isCurrent(second)).toBe(true);
  });
});

describe('badgesOf', () => {
  it('says published or draft, and embargoed', () => {
    expect(badgesOf(toDandisetItem(page1.results[0])).map(b => b.text)).toEqual(['published']);
    expect(badgesOf(toDandisetItem(page1.results[1])).map(b => b.text)).toEqual([
      'draft',
      'embargoed'
    ]);
    const lifting = toDandisetItem({ ...page1.results[1], embargo_status: 'UNEMBARGOING' });
    expect(badgesOf(lifting).map(b => b.kind)).toEqual(['draft', 'embargoed']);
  });
});

describe('describeStatus', () => {
  const base = { archive_url: 'https://api.dandiarchive.org/api', error: null };

  it('names the account in use', () => {
    const view = describeStatus(
      { ...base, username: 'ann', authenticated: true, has_api_key: true },
      null
    );
    expect(view).toMatchObject({ text: 'DANDI: ann', signedIn: true });
  });

  it('says how to set an account when there is none', () => {
    const view = describeStatus(
      { ...base, username: null, authenticated: false, has_api_key: false },
      null
    );
    expect(view.text).toBe('DANDI: no account');
    expect(view.title).toMatch(/sign in to the hub/i);
    expect(view.title).toContain('DANDI_API_KEY');
  });

  it('says when the key is not accepted', () => {
    const view = describeStatus(
      {
        ...base,
        error: 'refused the key',
        username: null,
        authenticated: false,
        has_api_key: true
      },
      null
    );
    expect(view.text).toBe('DANDI: account unknown');
    expect(view.title).toContain('refused the key');
  });

  it('shows a failure to ask the server', () => {
    expect(describeStatus(null, 'offline')).toMatchObject({ text: 'DANDI: ?' });
    expect(describeStatus(null, 'offline').title).toContain('offline');
  });
});

describe('describeError', () => {
  it('titles the reasons the server gives', () => {
    const error = Object.assign(new Error('Could not reach the DANDI archive at X'), {
      reason: 'unreachable'
    });
    expect(describeError(error)).toEqual({
      title: 'The DANDI archive cannot be reached',
      message: 'Could not reach the DANDI archive at X',
      retry: true
    });
    expect(describeError(Object.assign(new Error('m'), { reason: 'unauthorized' }))).toMatchObject(
      { title: 'Embargoed: not allowed', retry: false }
    );
    expect(describeError(Object.assign(new Error('m'), { reason: 'not-found' })).retry).toBe(false);
  });

  it('has a title for anything', () => {
    expect(describeError('boom')).toEqual({
      title: 'Something went wrong',
      message: 'boom',
      retry: true
    });
    expect(describeError(new UnexpectedResponseError('x')).title).toBe('Unexpected answer');
  });
});

describe('parseDandisetRef', () => {
  it.each([
    ['000006', { identifier: '000006', version: null }],
    [' DANDI:000006 ', { identifier: '000006', version: null }],
    ['DANDI:000006/0.220126.1855', { identifier: '000006', version: '0.220126.1855' }],
    ['000006@draft', { identifier: '000006', version: 'draft' }],
    ['https://dandiarchive.org/dandiset/000006/0.220126.1855/files', {
      identifier: '000006',
      version: '0.220126.1855'
    }],
    ['https://api.dandiarchive.org/api/dandisets/000026/versions/draft/', {
      identifier: '000026',
      version: 'draft'
    }],
    ['https://dandiarchive.org/dandiset/000026', { identifier: '000026', version: null }]
  ])('reads %s', (text, expected) => {
    expect(parseDandisetRef(text)).toEqual(expected);
  });

  it.each(['6', '0000066', 'mouse', 'DANDI:000006/latest', ''])('refuses %s', text => {
    expect(parseDandisetRef(text)).toBeNull();
  });
});
