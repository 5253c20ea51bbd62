/**
 * kz-jupyter's JupyterLab extension: a left sidebar with the deployments, the hardware summary
 * and a deploy form; a docked chat in the right sidebar (also from the command palette and the
 * launcher); a deployment's logs open in a main-area tab; `%kz chat`'s widget may put a reply
 * in a new cell.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IStateDB } from '@jupyterlab/statedb';
import { LabIcon } from '@jupyterlab/ui-components';

import { ChatView } from './chat';
import { LogsView } from './logs';
import { RetrievalKernel } from './retrieval';
import { KzSidebar } from './sidebar';

const ICON = new LabIcon({
  name: 'kz-jupyter:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<rect x="3" y="4" width="18" height="5" rx="1"/><rect x="3" y="10" width="18" height="5" rx="1"/>' +
    '<rect x="3" y="16" width="18" height="5" rx="1"/></g></svg>'
});
const CHAT_ICON = new LabIcon({
  name: 'kz-jupyter:chat',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M4 3h16a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H9l-5 4v-4H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1z' +
    'm3 5v2h2V8zm4 0v2h2V8zm4 0v2h2V8z"/></g></svg>'
});
const OPEN_CHAT = 'kz-jupyter:open-chat';

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@kz-jupyter/labextension:sidebar',
  description: 'Deploy, watch, stop and chat with local LLMs from JupyterLab.',
  autoStart: true,
  requires: [ILabShell, IRenderMimeRegistry],
  optional: [ICommandPalette, ILauncher, IStateDB, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    state: IStateDB | null,
    notebooks: INotebookTracker | null
  ) => {
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

    const insertCell = async (text: string) => {
      if (!app.commands.isEnabled('notebook:insert-cell-below')) {
        return false;
      }
      await app.commands.execute('notebook:insert-cell-below');
      await app.commands.execute('notebook:replace-selection', { text });
      return true;
    };
    const retrieval = new RetrievalKernel(app.serviceManager.sessions);
    // `%kz chat`'s widget asks for its reply in a new cell below the chat's own cell
    document.addEventListener('kz-insert-cell', event => {
      const target = event.target as Node;
      const panel = notebooks?.find(widget => widget.node.contains(target));
      if (!panel) {
        return;
      }
      event.preventDefault();
      const cell = panel.content.widgets.findIndex(widget => widget.node.contains(target));
      shell.activateById(panel.id);
      if (cell >= 0) {
        panel.content.activeCellIndex = cell;
      }
      void insertCell((event as CustomEvent<{ text: string }>).detail.text);
    });
    const chat = new ChatView({ rendermime, insertCell, state, retrieval });
    chat.title.icon = CHAT_ICON;
    shell.add(chat, 'right', { rank: 600 });
    app.commands.addCommand(OPEN_CHAT, {
      label: args => (args.name ? `Chat with ${args.name}` : 'Chat with a local LLM'),
      caption: 'Open the kz chat with a deployment',
      icon: CHAT_ICON,
      execute: async args => {
        shell.activateById(chat.id);
        await chat.refresh(args.name as string | undefined);
      }
    });
    palette?.addItem({ command: OPEN_CHAT, category: 'kz-jupyter' });
    launcher?.add({ command: OPEN_CHAT, category: 'Other', rank: 1 });

    const openChat = (name: string) => void app.commands.execute(OPEN_CHAT, { name });
    const sidebar = new KzSidebar(openLogs, openChat);
    sidebar.title.icon = ICON;
    shell.add(sidebar, 'left', { rank: 600 });
  }
};

export default plugin;
