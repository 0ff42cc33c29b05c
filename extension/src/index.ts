/**
 * dandilab: the DANDI Archive side panel for JupyterLab.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { Fetch } from './api';
import { dandiIcon } from './icon';
import { toPanelSettings } from './model';
import { DandiPanel, PANEL_ID } from './panel';

/** Command ids, stable for keyboard shortcuts and tests. */
export namespace CommandIDs {
  export const openPanel = 'dandi:open-panel';
}

const PLUGIN_ID = 'dandilab:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A side panel to search the DANDI Archive.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    const serverSettings = app.serviceManager.serverSettings;
    const fetch: Fetch = url =>
      ServerConnection.makeRequest(url, {}, serverSettings);

    const panel = new DandiPanel({ baseUrl: serverSettings.baseUrl, fetch });
    panel.title.icon = dandiIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, PANEL_ID);

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'DANDI: Open archive panel',
      caption: 'Search the DANDI Archive for Dandisets',
      icon: dandiIcon,
      execute: () => {
        app.shell.activateById(panel.id);
        // The panel becomes visible on the next frame; focus after that.
        requestAnimationFrame(() => panel.focusSearch());
      }
    });
    palette?.addItem({ command: CommandIDs.openPanel, category: 'DANDI' });

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = () =>
            panel.configure(toPanelSettings(settings.composite));
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error('dandilab: could not load settings.', reason);
        });
    }
  }
};

export default plugin;
