/**
 * kz-jupyter's JupyterLab extension: a left sidebar with the deployments, the hardware summary
 * and a deploy form; a deployment's logs open in a main-area tab.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';

import { LogsView } from './logs';
import { KzSidebar } from './sidebar';

const ICON = new LabIcon({
  name: 'kz-jupyter:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<rect x="3" y="4" width="18" height="5" rx="1"/><rect x="3" y="10" width="18" height="5" rx="1"/>' +
    '<rect x="3" y="16" width="18" height="5" rx="1"/></g></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@kz-jupyter/labextension:sidebar',
  description: 'Deploy, watch and stop local LLMs from a JupyterLab sidebar.',
  autoStart: true,
  requires: [ILabShell],
  activate: (app: JupyterFrontEnd, shell: ILabShell) => {
    const openLogs = (name: string) => {
      const id = `kz-logs-${name}`;
      const open = [...shell.widgets('main')].find(widget => widget.id === id);
      if (open) {
        shell.activateById(id);
        return;
      }
      const widget = new MainAreaWidget({ content: new LogsView(name) });
      widget.id = id;
      widget.title.label = `Logs: ${name}`;
      widget.title.icon = ICON;
      shell.add(widget, 'main');
      shell.activateById(id);
    };
    const sidebar = new KzSidebar(openLogs);
    sidebar.title.icon = ICON;
    shell.add(sidebar, 'left', { rank: 600 });
  }
};

export default plugin;
