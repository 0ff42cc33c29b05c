import { describeDownload, IDownload, isActive, rate } from '../downloads';

function download(overrides: Partial<IDownload> = {}): IDownload {
  return {
    id: 'a'.repeat(32),
    dandiset: '000006',
    version: 'draft',
    asset_id: '32cb0ae9-49fd-4bf9-b939-3960df7aeca2',
    path: 'sub-anm369963/sub-anm369963_ses-20170228.nwb',
    dest: 'dandi/000006/draft/sub-anm369963/sub-anm369963_ses-20170228.nwb',
    size: 2_000_000,
    received: 500_000,
    resumed_from: 0,
    state: 'running',
    error: null,
    started: 0,
    finished: null,
    ...overrides
  };
}

describe('describeDownload', () => {
  it('shows progress and speed while running', () => {
    const view = describeDownload(download(), 1_500_000);
    expect(view).toMatchObject({
      name: 'sub-anm369963_ses-20170228.nwb',
      fraction: 0.25,
      detail: '500 kB of 2.0 MB · 1.5 MB/s',
      canCancel: true,
      canRetry: false,
      canShow: false
    });
  });

  it('says where a resumed download started', () => {
    expect(describeDownload(download({ resumed_from: 400_000 })).detail).toContain(
      'resumed at 400 kB'
    );
  });

  it('says where the file is when done', () => {
    const view = describeDownload(download({ state: 'done', received: 2_000_000 }));
    expect(view.fraction).toBe(1);
    expect(view.detail).toBe(
      'Done: 2.0 MB in ~/dandi/000006/draft/sub-anm369963/sub-anm369963_ses-20170228.nwb'
    );
    expect(view).toMatchObject({ canShow: true, canCancel: false, active: false });
  });

  it('shows the error, and offers to retry', () => {
    const view = describeDownload(download({ state: 'failed', error: 'It broke off.' }));
    expect(view).toMatchObject({ detail: 'It broke off.', canRetry: true, failed: true });
    expect(describeDownload(download({ state: 'cancelled' })).detail).toMatch(/Retry resumes/);
  });

  it('has no fraction for an unknown size', () => {
    expect(describeDownload(download({ size: null })).fraction).toBeNull();
    expect(describeDownload(download({ size: 0, received: 0 })).fraction).toBe(1);
  });
});

describe('rate and activity', () => {
  it('is bytes per second between two samples', () => {
    expect(rate({ received: 0, at: 1000 }, { received: 500, at: 1500 })).toBe(1000);
    expect(rate(undefined, { received: 500, at: 1500 })).toBeNull();
    expect(rate({ received: 600, at: 1000 }, { received: 500, at: 1500 })).toBeNull();
  });

  it('calls queued and running active', () => {
    expect(isActive(download({ state: 'queued' }))).toBe(true);
    expect(isActive(download({ state: 'done' }))).toBe(false);
  });
});
