import {
  apiUrl,
  assetUrl,
  dandisetsUrl,
  dandisetUrl,
  downloadsUrl,
  downloadUrl,
  errorReason,
  pathsUrl,
  SERVER_UNREACHABLE,
  PATHS_PAGE_SIZE,
  requestJSON,
  versionsUrl,
  versionUrl,
  DandiApiError,
  errorMessage,
  Fetch,
  getJSON,
  infoUrl,
  joinUrl,
  MAX_SEARCH_LENGTH,
  PAGE_SIZE
} from '../api';

function respond(status: number, body: string): Fetch {
  return async () => ({
    ok: status >= 200 && status < 300,
    status,
    statusText: '',
    text: async () => body
  });
}

describe('joinUrl', () => {
  it('joins with single slashes', () => {
    expect(joinUrl('/user/ann/', '/dandi/api/', 'info')).toBe('/user/ann/dandi/api/info');
    expect(joinUrl('http://h:8888/', 'dandi/api')).toBe('http://h:8888/dandi/api');
  });
});

describe('apiUrl', () => {
  it('puts endpoints under the base URL and dandi/api', () => {
    expect(apiUrl('/user/ann/', 'info')).toBe('/user/ann/dandi/api/info');
  });

  it('encodes parameters and leaves out empty ones', () => {
    expect(apiUrl('/', 'dandisets', { search: 'mouse & rat', page: 2, x: '', y: undefined })).toBe(
      '/dandi/api/dandisets?search=mouse%20%26%20rat&page=2'
    );
  });
});

describe('dandisetsUrl', () => {
  it('builds a search for one page', () => {
    expect(dandisetsUrl('/base/', { search: ' mouse ', page: 3 })).toBe(
      `/base/dandi/api/dandisets?search=mouse&page=3&page_size=${PAGE_SIZE}`
    );
  });

  it('omits an empty search and clamps the page', () => {
    expect(dandisetsUrl('/', { search: '  ', page: 0 })).toBe(
      `/dandi/api/dandisets?page=1&page_size=${PAGE_SIZE}`
    );
  });

  it('truncates long searches to what the server accepts', () => {
    const url = dandisetsUrl('/', { search: 'a'.repeat(500), page: 1 });
    expect(url).toContain(`search=${'a'.repeat(MAX_SEARCH_LENGTH)}&`);
  });

  it('passes an archive override', () => {
    expect(
      dandisetsUrl('/', { search: '', page: 1, pageSize: 5, archiveUrl: 'https://a.org/api' })
    ).toBe('/dandi/api/dandisets?page=1&page_size=5&archive=https%3A%2F%2Fa.org%2Fapi');
  });
});

describe('infoUrl', () => {
  it('has no query without an override', () => {
    expect(infoUrl('/base/')).toBe('/base/dandi/api/info');
    expect(infoUrl('/base/', 'http://x/api')).toBe('/base/dandi/api/info?archive=http%3A%2F%2Fx%2Fapi');
  });
});

describe('errorMessage', () => {
  it("prefers the server's message", () => {
    expect(errorMessage(502, { message: 'Could not reach the DANDI archive at http://x' })).toBe(
      'Could not reach the DANDI archive at http://x'
    );
  });

  it('explains a missing server extension', () => {
    expect(errorMessage(404, undefined)).toMatch(/server extension/);
  });

  it('falls back to the status', () => {
    expect(errorMessage(500, 'oops', 'Internal Server Error')).toBe(
      'The Jupyter server answered HTTP 500 Internal Server Error.'
    );
  });
});

describe('getJSON', () => {
  it('returns parsed JSON', async () => {
    await expect(getJSON(respond(200, '{"a": 1}'), '/x')).resolves.toEqual({ a: 1 });
  });

  it('turns an error response into a DandiApiError with its message', async () => {
    const failing = getJSON(respond(502, '{"message": "archive down"}'), '/x');
    await expect(failing).rejects.toBeInstanceOf(DandiApiError);
    await expect(failing).rejects.toMatchObject({ status: 502, message: 'archive down' });
  });

  it('rejects a non-JSON success', async () => {
    await expect(getJSON(respond(200, '<html>'), '/x')).rejects.toThrow(/not JSON/);
  });

  it('reports network failures in a sentence, not the browser\'s TypeError', async () => {
    const offline: Fetch = async () => {
      throw new TypeError('Failed to fetch');
    };
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const failing = getJSON(offline, '/x');
    await expect(failing).rejects.toMatchObject({
      status: 0,
      reason: 'server-unreachable',
      message: SERVER_UNREACHABLE
    });
    await expect(failing).rejects.not.toMatchObject({ message: expect.stringContaining('Failed to fetch') });
    expect(SERVER_UNREACHABLE).toMatch(/did not answer.*Retry/);
    warn.mockRestore();
  });
});

describe('Dandiset, version and folder URLs', () => {
  it('encodes every part of the path', () => {
    expect(dandisetUrl('/b/', '000006')).toBe('/b/dandi/api/dandisets/000006');
    expect(versionsUrl('/b/', '000006')).toBe('/b/dandi/api/dandisets/000006/versions?page_size=100');
    expect(versionUrl('/b/', '000006', '0.220126.1855', 'http://x/api')).toBe(
      '/b/dandi/api/dandisets/000006/versions/0.220126.1855?archive=http%3A%2F%2Fx%2Fapi'
    );
    expect(dandisetUrl('/', '../../api/kernels')).toBe('/dandi/api/dandisets/..%2F..%2Fapi%2Fkernels');
  });

  it('asks for one folder with its prefix encoded', () => {
    expect(pathsUrl('/', '000250', 'draft', 'sub-CS-fly#-1/', 2)).toBe(
      '/dandi/api/dandisets/000250/versions/draft/paths' +
        `?path_prefix=sub-CS-fly%23-1%2F&page=2&page_size=${PATHS_PAGE_SIZE}`
    );
    expect(pathsUrl('/', '000026', 'draft', '')).toBe(
      `/dandi/api/dandisets/000026/versions/draft/paths?page=1&page_size=${PATHS_PAGE_SIZE}`
    );
  });

  it('names an asset and the downloads', () => {
    const id = '32cb0ae9-49fd-4bf9-b939-3960df7aeca2';
    expect(assetUrl('/', '000006', 'draft', id)).toBe(
      `/dandi/api/dandisets/000006/versions/draft/assets/${id}`
    );
    expect(downloadsUrl('/u/ann/')).toBe('/u/ann/dandi/api/downloads');
    expect(downloadUrl('/', 'abc')).toBe('/dandi/api/downloads/abc');
    expect(downloadUrl('/', 'abc', true)).toBe('/dandi/api/downloads/abc?discard=1');
  });
});

describe('errors carry a reason', () => {
  it("takes the server's reason", () => {
    expect(errorReason(403, { message: 'x', reason: 'unauthorized' })).toBe('unauthorized');
    expect(errorReason(502, { message: 'x', reason: 'unreachable' })).toBe('unreachable');
    expect(errorReason(502, { message: 'x', reason: 'made-up' })).toBe('unknown');
  });

  it('tells a missing extension from a missing Dandiset', () => {
    expect(errorReason(404, undefined)).toBe('no-extension');
    expect(errorReason(404, '<html>')).toBe('no-extension');
    expect(errorReason(404, { message: 'x', reason: 'not-found' })).toBe('not-found');
  });

  it('puts it on the error', async () => {
    const failing = getJSON(respond(403, '{"message": "embargoed", "reason": "unauthorized"}'), '/x');
    await expect(failing).rejects.toMatchObject({ status: 403, reason: 'unauthorized' });
    const offline: Fetch = async () => {
      throw new TypeError('Failed to fetch');
    };
    await expect(getJSON(offline, '/x')).rejects.toMatchObject({ reason: 'server-unreachable' });
  });

  it('sends a method and a body', async () => {
    const seen: unknown[] = [];
    const recording: Fetch = async (url, init) => {
      seen.push([url, init]);
      return { ok: true, status: 202, text: async () => '{"id": "1"}' };
    };
    await requestJSON(recording, '/d', { method: 'POST', body: '{"a":1}' });
    expect(seen).toEqual([['/d', { method: 'POST', body: '{"a":1}' }]]);
  });
});
