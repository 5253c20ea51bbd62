/**
 * A deployment's engine log in a main-area tab, refreshed while the tab is open.
 */
import { Widget } from '@lumino/widgets';

import { ILogs, requestAPI } from './api';

const REFRESH_MS = 2000;

/** The log tail of one deployment; issue lines are highlighted with their error code. */
export class LogsView extends Widget {
  constructor(readonly deployment: string) {
    super();
    this.addClass('kz-logs');
    this.id = `kz-logs-${deployment}`;
    this.title.label = `Logs: ${deployment}`;
    this.title.closable = true;
  }

  /** Refresh now, then every few seconds while attached. */
  protected onAfterAttach(): void {
    void this.refresh();
    this._timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this._timer);
  }

  /** Read the tail again. */
  async refresh(): Promise<void> {
    try {
      const logs = await requestAPI<ILogs>(
        `deployments/${encodeURIComponent(this.deployment)}/logs?lines=200`
      );
      this.render(logs);
    } catch (error) {
      this.node.textContent = `${error}`;
    }
  }

  private render(logs: ILogs): void {
    const pre = document.createElement('pre');
    for (const [replica, data] of Object.entries(logs.replicas)) {
      const flagged = new Map(data.issues.map(([index, code]) => [index, code]));
      pre.appendChild(document.createTextNode(`== ${replica}\n`));
      data.lines.forEach((line, index) => {
        const span = document.createElement('span');
        const code = flagged.get(index);
        span.textContent = (code ? `[${code}] ` : '') + line + '\n';
        if (code) {
          span.className = 'kz-issue';
        }
        pre.appendChild(span);
      });
    }
    if (!pre.childNodes.length) {
      pre.textContent = `No logs for ${logs.name} yet.`;
    }
    const node = this.node;
    const following = this._first || node.scrollHeight - node.scrollTop - node.clientHeight < 40;
    node.replaceChildren(pre);
    if (following) {
      node.scrollTop = node.scrollHeight; // a tail: keep the newest lines in view
    }
    this._first = false;
  }

  private _timer = 0;
  private _first = true;
}
