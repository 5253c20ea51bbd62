/**
 * A deployment's engine log in a main-area tab: quiet by default (long runs of engine detail
 * folded, detected issues marked with their code and what to do), with search, a level filter,
 * wrap, follow (refresh and keep the newest lines in view) and download.
 */
import { Widget } from '@lumino/widgets';

import { ILogs, requestAPI } from './api';
import { element } from './dom';
import { Level, LogLine, foldRuns, levelOf } from './logLines';

const REFRESH_MS = 2000;
const TAIL_LINES = 2000;
const LEVELS: [string, Level][] = [
  ['all levels', 'info'],
  ['warnings and errors', 'warning'],
  ['errors and issues', 'error']
];
const RANK: Record<Level, number> = { info: 0, warning: 1, error: 2, issue: 3 };

/** The log of one deployment, with its toolbar. */
export class LogsView extends Widget {
  constructor(readonly deployment: string) {
    super();
    this.addClass('kz-logs-view');
    this.id = `kz-logs-${deployment}`;
    this.title.label = `Logs: ${deployment}`;
    this.title.closable = true;
    this._search.type = 'search';
    this._search.name = 'search';
    this._search.placeholder = 'Search the log';
    this._level.name = 'level';
    this._level.setAttribute('aria-label', 'Level');
    for (const [label, level] of LEVELS) {
      this._level.append(new Option(label, level));
    }
    const download = element('button', 'jp-mod-styled', 'download');
    download.type = 'button';
    download.addEventListener('click', () => this.download());
    const toolbar = element('div', 'kz-logs-toolbar');
    toolbar.append(
      this._search,
      this._level,
      this.toggle('wrap', this._wrap, true),
      this.toggle('follow', this._follow, true),
      this.toggle('engine detail', this._detail, false),
      download
    );
    for (const input of [this._search, this._level]) {
      input.addEventListener('input', () => this.render());
    }
    this._body.addEventListener('click', event => {
      const fold = (event.target as HTMLElement).closest<HTMLElement>('.kz-fold');
      if (fold?.dataset.start) {
        this._opened.add(Number(fold.dataset.start));
        this.render();
      }
    });
    this.node.append(toolbar, this._body);
  }

  /** Refresh now, then every few seconds while attached and following. */
  protected onAfterAttach(): void {
    void this.refresh();
    this._timer = window.setInterval(() => {
      if (this._follow.checked) {
        void this.refresh();
      }
    }, REFRESH_MS);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this._timer);
  }

  /** Read the tail again. */
  async refresh(): Promise<void> {
    try {
      this._logs = await requestAPI<ILogs>(
        `deployments/${encodeURIComponent(this.deployment)}/logs?lines=${TAIL_LINES}`
      );
      this.render();
    } catch (error) {
      this._body.textContent = `${error}`;
    }
  }

  /** The lines as shown: each replica's lines with their level and issue. */
  private lines(): LogLine[] {
    const lines: LogLine[] = [];
    for (const [replica, data] of Object.entries(this._logs?.replicas ?? {})) {
      const issues = new Map(data.issues.map(([index, code]) => [index, code]));
      data.lines.forEach((text, index) => {
        const code = issues.get(index) ?? null;
        lines.push({ replica, text, code, level: levelOf(text, code) });
      });
    }
    return lines;
  }

  private render(): void {
    const logs = this._logs;
    if (!logs) {
      return;
    }
    const query = this._search.value.trim().toLowerCase();
    const floor = RANK[this._level.value as Level];
    const shown = this.lines().filter(
      line => RANK[line.level] >= floor && (!query || line.text.toLowerCase().includes(query))
    );
    // folding is for reading the whole log; a search or a level filter shows every match
    const folding = !this._detail.checked && !query && floor === 0;
    const pre = element('pre', 'kz-logs');
    pre.classList.toggle('kz-logs-wrap', this._wrap.checked);
    let replica = '';
    for (const item of folding ? foldRuns(shown, this._opened) : shown) {
      const line = 'folded' in item ? item.lines[0] : item;
      if (line.replica !== replica) {
        replica = line.replica;
        pre.append(element('span', 'kz-logs-replica', `== ${replica}\n`));
      }
      if ('folded' in item) {
        const fold = element(
          'span',
          'kz-fold',
          `▸ ${item.lines.length} lines of ${item.prefix} (engine detail: click to show)\n`
        );
        fold.dataset.start = `${item.start}`;
        pre.append(fold);
      } else {
        pre.append(this.lineNode(line, logs.remedies ?? {}));
      }
    }
    if (!pre.childNodes.length) {
      pre.textContent = query
        ? `No line of ${logs.name}'s log has "${this._search.value}".`
        : `No logs for ${logs.name} yet.`;
    }
    const body = this._body;
    const following = this._follow.checked;
    body.replaceChildren(pre);
    if (following) {
      body.scrollTop = body.scrollHeight; // a tail: keep the newest lines in view
    }
  }

  private lineNode(line: LogLine, remedies: Record<string, string>): HTMLElement {
    if (!line.code) {
      return element('span', `kz-level-${line.level}`, `${line.text}\n`);
    }
    const node = element('span', 'kz-issue', `[${line.code}] ${line.text}\n`);
    if (remedies[line.code]) {
      node.append(element('span', 'kz-remedy', `What to do: ${remedies[line.code]}\n`));
    }
    return node;
  }

  private toggle(label: string, input: HTMLInputElement, checked: boolean): HTMLElement {
    input.type = 'checkbox';
    input.name = label.replace(' ', '-');
    input.checked = checked;
    input.addEventListener('change', () => (label === 'follow' ? void this.refresh() : this.render()));
    const node = element('label', 'kz-logs-toggle');
    node.append(input, ` ${label}`);
    return node;
  }

  private download(): void {
    const text = this.lines()
      .map(line => `${line.replica} ${line.text}`)
      .join('\n');
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([text + '\n'], { type: 'text/plain' }));
    link.download = `${this.deployment}.log`;
    link.click();
    URL.revokeObjectURL(link.href);
  }

  private _logs: ILogs | null = null;
  private _body = element('div', 'kz-logs-body');
  private _search = element('input');
  private _level = element('select');
  private _wrap = element('input');
  private _follow = element('input');
  private _detail = element('input');
  private _opened = new Set<number>();
  private _timer = 0;
}
