/**
 * The plan of a deploy request, shown before anything starts: the engine and why, format,
 * quant and size, context and parallel requests, and a memory bar of the estimate against
 * what is free; or, when it cannot be deployed, what to change.
 */
import { formatBytes, requestAPI } from './api';
import { IDeployRequest } from './deployRequest';
import { element } from './dom';

/** `POST /kz/api/plan`: the parts shown. */
interface IPlan {
  engine: string;
  engine_reason: string;
  format: string;
  variant: string | null;
  weights_bytes: number;
  download_bytes: number;
  context_length: number;
  parallel: number;
  replicas: number;
  task: string;
  memory: { total: number; available: number; device: string; fits: boolean };
  rejected: Record<string, string>;
}

/** The plan card under the deploy form. */
export class PlanCard {
  readonly node = element('div', 'kz-plan');

  /** Plan the request and show it (a newer call wins over an older one still waiting). */
  async show(request: IDeployRequest): Promise<void> {
    const asked = ++this._asked;
    this.node.replaceChildren(element('div', 'kz-model-detail', `Planning ${request.model}…`));
    let plan: IPlan;
    try {
      plan = await requestAPI<IPlan>('plan', { method: 'POST', body: JSON.stringify(request) });
    } catch (error) {
      if (asked === this._asked) {
        this.node.replaceChildren(element('div', 'kz-error', `${error}`));
      }
      return;
    }
    if (asked !== this._asked) {
      return;
    }
    const memory = plan.memory;
    const share = memory.available ? Math.min(memory.total / memory.available, 1) : 1;
    const bar = element('div', 'kz-plan-bar');
    const used = element('div', memory.fits ? 'kz-plan-used' : 'kz-plan-used kz-plan-over');
    used.style.width = `${Math.max(share * 100, 1).toFixed(1)}%`;
    bar.append(used);
    bar.setAttribute('role', 'meter');
    bar.setAttribute('aria-valuenow', `${memory.total}`);
    bar.setAttribute('aria-valuemax', `${memory.available}`);
    const lines = [
      `Engine ${plan.engine}: ${plan.engine_reason}`,
      [plan.format, plan.variant, `${formatBytes(plan.weights_bytes)} of weights`]
        .filter(Boolean)
        .join(' · ') +
        (plan.download_bytes ? ` (${formatBytes(plan.download_bytes)} to download)` : ''),
      `Context ${plan.context_length} tokens · ${plan.parallel} requests at once · ` +
        `${plan.replicas} replica${plan.replicas === 1 ? '' : 's'}`
    ];
    const fit = memory.fits
      ? `Fits: ~${formatBytes(memory.total)} of ${formatBytes(memory.available)} free (${memory.device})`
      : `Does not fit: ~${formatBytes(memory.total)} needed, ${formatBytes(memory.available)} free (${memory.device}): lower the context or choose a smaller quant`;
    this.node.replaceChildren(
      ...lines.map(line => element('div', '', line)),
      bar,
      element('div', memory.fits ? 'kz-plan-fit' : 'kz-error', fit)
    );
  }

  /** Forget the plan shown. */
  clear(): void {
    this._asked++;
    this.node.replaceChildren();
  }

  private _asked = 0;
}
