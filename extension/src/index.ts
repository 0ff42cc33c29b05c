/**
 * dandilab: the DANDI Archive side panel for JupyterLab, its commands, launcher
 * card, settings and status bar item.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';
import { IStatusBar } from '@jupyterlab/statusbar';

import { copyText, insertCell, openExternal, showInFileBrowser } from './actions';
import { Fetch } from './api';
import {
  capabilities,
  dandiUrl,
  exploreCell,
  IAssetContext,
  ICapabilities,
  neurosiftUrl,
  openCell
} from './assets';
import { AssetAction } from './dandisetview';
import { entryIcon } from './entryicons';
import { dandiIcon } from './icon';
import { ArchiveInfo } from './info';
import { parseDandisetRef, toPanelSettings } from './model';
import { DandiPanel, PANEL_ID } from './panel';
import { DandiStatus } from './status';

/** Command ids, stable for keyboard shortcuts and tests. */
export namespace CommandIDs {
  export const openPanel = 'dandi:open-panel';
  export const search = 'dandi:search';
  export const openDandiset = 'dandi:open-dandiset';
  export const refresh = 'dandi:refresh';
  export const openAsset = 'dandi:open-asset-in-notebook';
  export const exploreAsset = 'dandi:explore-asset';
  export const copyS3Url = 'dandi:copy-s3-url';
  export const copyDandiUrl = 'dandi:copy-dandi-url';
  export const openInNeurosift = 'dandi:open-in-neurosift';
  export const downloadAsset = 'dandi:download-asset';
}

/** The command behind each action button of the panel. */
const ACTION_COMMANDS: Record<AssetAction, string> = {
  open: CommandIDs.openAsset,
  explore: CommandIDs.exploreAsset,
  'copy-s3': CommandIDs.copyS3Url,
  'copy-dandi': CommandIDs.copyDandiUrl,
  neurosift: CommandIDs.openInNeurosift,
  download: CommandIDs.downloadAsset
};

const PLUGIN_ID = 'dandilab:plugin';

/** Where the panel's place (open Dandiset, version, folder) is kept in the state database. */
const PLACE_KEY = `${PLUGIN_ID}:place`;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A side panel to find, browse and open DANDI Archive data.',
  autoStart: true,
  optional: [
    ICommandPalette,
    ILayoutRestorer,
    ISettingRegistry,
    ILauncher,
    INotebookTracker,
    IStatusBar,
    IStateDB
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    launcher: ILauncher | null,
    notebooks: INotebookTracker | null,
    statusBar: IStatusBar | null,
    state: IStateDB | null
  ) => {
    const { commands } = app;
    const serverSettings = app.serviceManager.serverSettings;
    const fetch: Fetch = (url, init) =>
      ServerConnection.makeRequest(url, init ?? {}, serverSettings);
    const info = new ArchiveInfo(fetch, serverSettings.baseUrl);

    const panel = new DandiPanel({
      baseUrl: serverSettings.baseUrl,
      fetch,
      info,
      onAction: action => void commands.execute(ACTION_COMMANDS[action]),
      onShowFile: path => void showInFileBrowser(app, path),
      entryIcon
    });
    panel.title.icon = dandiIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, PANEL_ID);

    // The open Dandiset and folder survive a page reload (JupyterLab's state database).
    if (state) {
      void app.restored
        .then(() => state.fetch(PLACE_KEY))
        .then(value => {
          const place = DandiPanel.toPlace(value);
          panel.placeChanged.connect(() => {
            const now = panel.place;
            void (now ? state.save(PLACE_KEY, { ...now }) : state.remove(PLACE_KEY));
          });
          if (place) {
            void panel.restorePlace(place);
          }
        })
        .catch(reason => console.warn('dandilab: could not restore the panel\'s place.', reason));
    }

    const showPanel = () => {
      app.shell.activateById(panel.id);
    };

    commands.addCommand(CommandIDs.openPanel, {
      label: args => (args.isLauncher ? 'DANDI Archive' : 'Open the DANDI Archive panel'),
      caption: 'Find Dandisets, browse their files, open them in a notebook',
      icon: dandiIcon,
      execute: () => {
        showPanel();
        // The panel becomes visible on the next frame; focus after that.
        requestAnimationFrame(() => panel.focusSearch());
      }
    });

    commands.addCommand(CommandIDs.search, {
      label: 'Search Dandisets',
      caption: 'Search the DANDI Archive (args: query)',
      execute: async args => {
        showPanel();
        if (typeof args.query === 'string') {
          await panel.searchFor(args.query);
        } else {
          requestAnimationFrame(() => panel.focusSearch());
        }
      }
    });

    commands.addCommand(CommandIDs.openDandiset, {
      label: 'Open a Dandiset…',
      caption: 'Open a Dandiset by its identifier, e.g. 000006 or DANDI:000006/0.220126.1855',
      execute: async args => {
        let text = typeof args.identifier === 'string' ? args.identifier : '';
        if (!text) {
          const answer = await InputDialog.getText({
            title: 'Open a Dandiset',
            label: 'Identifier (000006, DANDI:000006/0.220126.1855 or a DANDI URL)',
            placeholder: '000006'
          });
          if (!answer.button.accept || !answer.value) {
            return;
          }
          text = answer.value;
        }
        const ref = parseDandisetRef(text);
        if (!ref) {
          await showErrorMessage(
            'Not a Dandiset',
            `"${text}" is not a Dandiset identifier: six digits, e.g. 000006, optionally with a version (DANDI:000006/0.220126.1855).`
          );
          return;
        }
        showPanel();
        const version = typeof args.version === 'string' ? args.version : ref.version;
        await panel.openDandiset(ref.identifier, version);
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the DANDI panel',
      execute: async () => {
        await Promise.all([panel.refreshInfo(), panel.search(1)]);
      }
    });

    // --- actions on the asset selected in the panel
    const selected = () => panel.selectedAsset;
    const assetCommand = (
      id: string,
      label: string,
      can: keyof ICapabilities,
      run: (asset: IAssetContext) => unknown
    ) => {
      commands.addCommand(id, {
        label,
        caption: `${label} (the asset selected in the DANDI panel)`,
        isEnabled: () => capabilities(selected())[can],
        execute: async () => {
          const asset = selected();
          if (!asset || !capabilities(asset)[can]) {
            return;
          }
          try {
            await run(asset);
          } catch (reason) {
            await showErrorMessage(`DANDI: ${label}`, String(reason));
          }
        }
      });
    };
    assetCommand(CommandIDs.openAsset, 'Open asset in notebook', 'open', asset =>
      insertCell(app, notebooks, openCell(asset))
    );
    assetCommand(CommandIDs.exploreAsset, 'Explore asset in notebook', 'explore', asset =>
      insertCell(app, notebooks, exploreCell(asset))
    );
    assetCommand(CommandIDs.copyS3Url, 'Copy S3 URL of asset', 'copyS3', asset =>
      copyText(asset.s3Url ?? '', 'S3 URL')
    );
    assetCommand(CommandIDs.copyDandiUrl, 'Copy DANDI URL of asset', 'copyDandi', asset =>
      copyText(dandiUrl(asset), 'DANDI URL')
    );
    assetCommand(CommandIDs.openInNeurosift, 'Open asset in Neurosift', 'neurosift', asset =>
      openExternal(neurosiftUrl(asset))
    );
    assetCommand(CommandIDs.downloadAsset, 'Download asset to home', 'download', asset =>
      panel.download(asset)
    );
    panel.selectionChanged.connect(() => {
      for (const id of Object.values(ACTION_COMMANDS)) {
        commands.notifyCommandChanged(id);
      }
    });

    if (palette) {
      for (const command of [
        CommandIDs.openPanel,
        CommandIDs.search,
        CommandIDs.openDandiset,
        CommandIDs.refresh,
        ...Object.values(ACTION_COMMANDS)
      ]) {
        palette.addItem({ command, category: 'DANDI' });
      }
    }
    launcher?.add({
      command: CommandIDs.openPanel,
      args: { isLauncher: true },
      category: 'Other',
      rank: 0
    });

    if (statusBar) {
      statusBar.registerStatusItem('dandilab:status', {
        item: new DandiStatus(info, showPanel),
        align: 'left',
        rank: 100
      });
    }

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            const next = toPanelSettings(settings.composite);
            const archiveChanged = next.archiveUrl !== panel.settings.archiveUrl;
            panel.configure(next);
            if (archiveChanged) {
              void info.refresh(next.archiveUrl);
            }
          };
          apply();
          void info.refresh(panel.settings.archiveUrl);
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error('dandilab: could not load settings.', reason);
          void info.refresh();
        });
    } else {
      void info.refresh();
    }
  }
};

export default plugin;
