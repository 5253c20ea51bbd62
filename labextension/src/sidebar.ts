/**
 * The kz sidebar: the hardware summary, a model browser, a deploy form with the plan of what it
 * would deploy, and the deployments with their status, the steps of those coming up,
 * endpoint, figures of the last minute (requests/s, tokens/s, time to first token, queue), stop,
 * restart, remove and logs; refreshed while the sidebar is shown.
 */
import { Clipboard } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { Widget } from '@lumino/widgets';

import {
  IDeployment,
  IDeploymentStats,
  IEngine,
  IHardware,
  IStats,
  formatBytes,
  formatFigures,
  requestAPI
} from './api';
import { DEPLOY_BOUNDS, IDeployRequest } from './deployRequest';
import { element } from './dom';
import { ModelBrowser } from './models';
import { PlanCard } from './plan';

const REFRESH_MS = 2000;
const HARDWARE_EVERY = 5; // refreshes between readings of the free RAM
const ENDED = ['STOPPED', 'FAILED'];
const SETTLED = [...ENDED, 'DEPLOYED', 'UNLOADED']; // not coming up
const PLAN_DELAY_MS = 500; // the plan is asked for once the form has been still this long

const SVG = 'http://www.w3.org/2000/svg';

/** A small chart of the last 5 minutes (10 s a point), its latest value beside its title. */
function sparkline(title: string, values: (number | null)[]): HTMLElement {
  const node = element('div', 'kz-chart');
  const known = values.map(v => v ?? 0);
  const top = Math.max(...known, 1e-9);
  const latest = [...values].reverse().find(v => v !== null) ?? null;
  node.append(
    element('div', '', `${title} ${latest === null ? '-' : latest.toFixed(latest < 10 ? 2 : 0)}`)
  );
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${Math.max(known.length - 1, 1)} 20`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${title}, last 5 minutes`);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', known.map((v, i) => `${i},${(20 - (v / top) * 18 - 1).toFixed(2)}`).join(' '));
  line.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(line);
  node.append(svg);
  return node;
}

/** The sidebar panel. `openLogs` shows a deployment's log in the main area, `openChat` the
 * docked chat with a deployment. */
export class KzSidebar extends Widget {
  constructor(
    private openLogs: (name: string) => void,
    private openChat: (name: string) => void
  ) {
    super();
    this.id = 'kz-sidebar';
    this.addClass('kz-sidebar');
    this.title.caption = 'kz-jupyter: local LLMs';
    this.node.append(
      element('h3', '', 'Hardware'),
      this._hardware,
      element('h3', '', 'Models'),
      this._browser.node,
      element('h3', '', 'Deploy'),
      this.buildForm(),
      this._plan.node,
      element('h3', '', 'Deployments'),
      this._deployments
    );
  }

  protected onAfterShow(): void {
    void this.refresh(true);
    this._timer = window.setInterval(() => void this.refresh(false), REFRESH_MS);
  }

  protected onAfterHide(): void {
    window.clearInterval(this._timer);
  }

  protected onAfterAttach(): void {
    if (this.isVisible) {
      this.onAfterShow();
    }
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this._timer);
  }

  /** Read deployments (and, the first time, the engines; every few times, the hardware). */
  async refresh(everything: boolean): Promise<void> {
    try {
      if (everything) {
        this.showEngines(await requestAPI<IEngine[]>('engines'));
        void this._browser.load();
        this.replanSoon();
      }
      if (everything || ++this._ticks % HARDWARE_EVERY === 0) {
        this.showHardware(await requestAPI<IHardware>('hardware?engines=false'));
      }
      const [deployments, stats] = await Promise.all([
        requestAPI<IDeployment[]>('deployments'),
        requestAPI<IStats>('stats?span=300&step=10')
      ]);
      this.showDeployments(deployments, stats);
    } catch (error) {
      this.say(`${error}`, true);
    }
  }

  private buildForm(): HTMLFormElement {
    const form = element('form', 'kz-form');
    this._model.value = 'smollm2';
    this._model.name = 'model';
    this._model.placeholder = 'preset, pip-shipped model, path or Hub repo';
    this._engine.name = 'engine';
    this._engine.append(new Option('auto (best for this machine)', ''));
    this._name.name = 'name';
    this._name.placeholder = 'from the model (e.g. smollm2)';
    this._context.name = 'context';
    this._context.type = 'number';
    const bounds = DEPLOY_BOUNDS.context_length;
    this._context.min = `${bounds.minimum}`;
    this._context.max = `${bounds.maximum}`;
    this._context.placeholder = "the model's own";
    const labelled = (text: string, input: HTMLElement) => {
      const label = element('label', '', text);
      label.appendChild(input);
      return label;
    };
    const submit = element('button', 'jp-mod-styled jp-mod-accept', 'Deploy');
    submit.type = 'submit';
    form.append(
      labelled('Model', this._model),
      labelled('Name', this._name),
      labelled('Engine', this._engine),
      labelled('Context (tokens)', this._context),
      submit,
      this._message
    );
    form.addEventListener('input', () => this.replanSoon());
    form.addEventListener('submit', event => {
      event.preventDefault();
      void this.deploy();
    });
    return form;
  }

  /** A model chosen in the browser: into the form, and plan it. */
  private choose(model: string): void {
    this._model.value = model;
    this.replanSoon();
  }

  private replanSoon(): void {
    window.clearTimeout(this._planTimer);
    this._planTimer = window.setTimeout(() => {
      const request = this.request();
      if (request.model) {
        void this._plan.show(request);
      } else {
        this._plan.clear();
      }
    }, PLAN_DELAY_MS);
  }

  /** The deploy request the form describes. */
  private request(): IDeployRequest {
    const body: IDeployRequest = { model: this._model.value.trim() };
    if (this._name.value.trim()) {
      body.name = this._name.value.trim();
    }
    if (this._engine.value) {
      body.engine = this._engine.value;
    }
    if (this._context.value) {
      body.context_length = Number(this._context.value);
    }
    return body;
  }

  private async deploy(): Promise<void> {
    const body = this.request();
    try {
      const record = await requestAPI<IDeployment>('deployments', {
        method: 'POST',
        body: JSON.stringify(body)
      });
      this.say(`Deploying ${record.model} as '${record.name}'`, false);
      this._pending = record.name;
      await this.refresh(false);
    } catch (error) {
      this.say(`${error}`, true);
    }
  }

  private async act(name: string, action: 'stop' | 'restart' | 'remove'): Promise<void> {
    const path = `deployments/${encodeURIComponent(name)}`;
    try {
      if (action === 'stop') {
        await requestAPI(path, { method: 'DELETE' });
      } else if (action === 'remove') {
        await requestAPI(`${path}?forget=true`, { method: 'DELETE' });
      } else {
        await requestAPI(`${path}/restart`, { method: 'POST' });
      }
      await this.refresh(false);
    } catch (error) {
      this.say(`${action} ${name}: ${error}`, true);
    }
  }

  private say(text: string, isError: boolean): void {
    this._message.textContent = text;
    this._message.classList.toggle('kz-error', isError);
  }

  private showHardware(hardware: IHardware): void {
    const lines = [
      `CPU: ${hardware.cpu_model} (${hardware.cpu_cores_physical} cores)`,
      `RAM: ${formatBytes(hardware.ram_available)} free of ${formatBytes(hardware.ram_total)}`,
      ...(hardware.gpus.length
        ? hardware.gpus.map(
            gpu =>
              `GPU ${gpu.index}: ${gpu.name}, ${formatBytes(gpu.memory_free)} free of ` +
              formatBytes(gpu.memory_total)
          )
        : [`GPU: none (${hardware.gpu_note})`])
    ];
    this._hardware.replaceChildren(...lines.map(line => element('div', '', line)));
  }

  private showEngines(engines: IEngine[]): void {
    for (const engine of engines) {
      if (![...this._engine.options].some(option => option.value === engine.name)) {
        const label = engine.available ? engine.name : `${engine.name} (not usable here)`;
        const option = new Option(label, engine.name);
        option.disabled = !engine.available;
        option.title = engine.reason;
        this._engine.append(option);
      }
    }
  }

  private showDeployments(deployments: IDeployment[], stats: IStats): void {
    const coming = deployments.some(d => !SETTLED.includes(d.status));
    const second = coming ? Math.floor(Date.now() / 1000) : 0; // their time so far ticks
    const shown = JSON.stringify([deployments, stats.deployments, second]);
    if (shown === this._shown) {
      return; // nothing changed: the rows (and a click on one) stay as they are
    }
    this._shown = shown;
    if (!deployments.length) {
      this._deployments.replaceChildren(element('div', '', 'No deployments yet.'));
      return;
    }
    const figures = new Map(stats.deployments.map(d => [d.name, d]));
    const pending = deployments.find(d => d.name === this._pending);
    if (pending && (pending.status === 'DEPLOYED' || ENDED.includes(pending.status))) {
      const outcome =
        pending.status === 'DEPLOYED'
          ? `'${pending.name}' is DEPLOYED: chat with it, or use its endpoint below.`
          : `'${pending.name}' is ${pending.status}: its row says why and what to do.`;
      this.say(outcome, pending.status !== 'DEPLOYED');
      this._pending = '';
    }
    this._deployments.replaceChildren(
      ...deployments.map(deployment =>
        this.deploymentRow(deployment, figures.get(deployment.name))
      )
    );
  }

  private deploymentRow(deployment: IDeployment, stats?: IDeploymentStats): HTMLElement {
    const row = element('div', 'kz-deployment');
    row.dataset.deployment = deployment.name;
    const ready = deployment.replicas.filter(r => r.status === 'DEPLOYED').length;
    const status = element('span', `kz-status kz-status-${deployment.status}`, deployment.status);
    status.dataset.status = deployment.status;
    const title = element('div');
    title.append(
      element('b', '', deployment.name),
      ' ',
      status,
      ` ${deployment.engine ?? '-'} ${ready}/${deployment.replicas.length}`
    );
    const memory = deployment.plan?.memory?.total;
    if (memory && !ENDED.includes(deployment.status)) {
      title.append(` · ~${formatBytes(memory)}`); // the plan's estimate; none held once ended
    }
    row.append(title, element('div', 'kz-model', deployment.model));
    if (!SETTLED.includes(deployment.status)) {
      row.append(this.stepsOf(deployment));
    }
    if (deployment.status === 'DEPLOYED') {
      row.append(this.endpointLine(deployment.name));
    }
    if (stats && (deployment.status === 'DEPLOYED' || deployment.status === 'UNLOADED')) {
      const figures = element('div', 'kz-figures', formatFigures(stats));
      figures.title = 'Last minute, measured at the proxy';
      const charts = element('div', 'kz-charts');
      charts.append(
        sparkline('tok/s', stats.series.tokens_per_s),
        sparkline('TTFT p95 (s)', stats.series.ttft_p95)
      );
      row.append(figures, charts);
    }
    if (deployment.error) {
      const error = deployment.error;
      row.append(
        element('div', 'kz-error', `[${error.code}] ${error.message}`),
        element('div', 'kz-remediation', `What to do: ${error.remediation}`)
      );
    }
    const buttons = element('div', 'kz-buttons');
    const button = (label: string, onClick: () => void, disabled = false) => {
      const node = element('button', 'jp-mod-styled', label);
      node.disabled = disabled;
      node.addEventListener('click', onClick);
      buttons.appendChild(node);
    };
    const ended = ENDED.includes(deployment.status);
    button('stop', () => void this.act(deployment.name, 'stop'), ended);
    button('restart', () => void this.act(deployment.name, 'restart'));
    button('logs', () => this.openLogs(deployment.name));
    if (deployment.status === 'DEPLOYED' && (deployment.plan?.task ?? 'generate') === 'generate') {
      button('chat', () => this.openChat(deployment.name));
    }
    if (ended) {
      button('remove', () => void this.act(deployment.name, 'remove'));
    }
    row.appendChild(buttons);
    return row;
  }

  /** A deployment coming up: each step with its time, the download, the time so far. */
  private stepsOf(deployment: IDeployment): HTMLElement {
    const steps = element('div', 'kz-steps');
    for (const step of deployment.history) {
      const at = (step.at - deployment.created_at).toFixed(1);
      steps.append(element('div', '', `${step.status} +${at} s ${step.detail ?? ''}`));
    }
    const progress = deployment.progress;
    if (progress && progress.total) {
      const bar = element('progress', 'kz-download');
      bar.max = progress.total;
      bar.value = progress.done;
      steps.append(bar, ` ${formatBytes(progress.done)} of ${formatBytes(progress.total)}`);
    }
    const elapsed = Date.now() / 1000 - deployment.created_at;
    steps.append(element('div', 'kz-elapsed', `${deployment.status} for ${elapsed.toFixed(0)} s so far`));
    return steps;
  }

  /** The OpenAI endpoint of a serving deployment, with a button that copies it. */
  private endpointLine(name: string): HTMLElement {
    const endpoint = URLExt.join(PageConfig.getBaseUrl(), 'kz/v1');
    const line = element('div', 'kz-endpoint');
    const copy = element('button', 'jp-mod-styled', 'copy');
    copy.title = `Copy the OpenAI base URL (model '${name}')`;
    copy.addEventListener('click', () => Clipboard.copyToSystem(endpoint));
    line.append(element('code', '', endpoint), ' ', copy);
    return line;
  }

  private _browser = new ModelBrowser(model => this.choose(model));
  private _plan = new PlanCard();
  private _planTimer = 0;
  private _hardware = element('div', 'kz-hardware');
  private _deployments = element('div', 'kz-deployments');
  private _model = element('input');
  private _name = element('input');
  private _engine = element('select');
  private _context = element('input');
  private _message = element('div', 'kz-message');
  private _timer = 0;
  private _ticks = 0;
  private _pending = '';
  private _shown = '';
}
