/**
 * The sidebar's model browser: presets, the models already here and the Hub (when it can be
 * reached), each with what is known of its size, formats and quants; choosing one puts it in
 * the deploy form, which then shows its plan.
 */
import { formatBytes, requestAPI } from './api';
import { element } from './dom';

const SEARCH_DELAY_MS = 400;

/** `GET /kz/api/search`: what matches the text (everything here, with no text). */
interface ISearch {
  hub: { repo_id: string; downloads: number; likes: number; formats: string[]; gated: boolean }[];
  hub_error: string | null;
  local: { name: string; size: number; formats: string[]; quants: string[]; source: string }[];
  presets: { name: string; model: string; description: string; context_length: number | null }[];
}

/** One model to choose. */
interface IChoice {
  model: string;
  title: string;
  detail: string;
}

/** The search box and its results, grouped. */
export class ModelBrowser {
  readonly node = element('div', 'kz-models');

  constructor(private choose: (model: string) => void) {
    this._search.type = 'search';
    this._search.name = 'model-search';
    this._search.placeholder = 'Search presets, models here and the Hub';
    this._search.addEventListener('input', () => {
      window.clearTimeout(this._timer);
      this._timer = window.setTimeout(() => void this.load(), SEARCH_DELAY_MS);
    });
    this.node.append(this._search, this._list);
  }

  /** Search for the text in the box (none: the presets and the models here). */
  async load(): Promise<void> {
    const query = this._search.value.trim();
    try {
      const found = await requestAPI<ISearch>(`search?q=${encodeURIComponent(query)}`);
      if (query !== this._search.value.trim()) {
        return; // the text changed meanwhile: a newer search will show
      }
      this.show(found, query);
    } catch (error) {
      this._list.replaceChildren(element('div', 'kz-error', `${error}`));
    }
  }

  private show(found: ISearch, query: string): void {
    const groups: [string, IChoice[]][] = [
      [
        'Presets',
        found.presets.map(p => ({ model: p.name, title: p.name, detail: p.description }))
      ],
      [
        'Here',
        found.local.map(m => ({
          model: m.name,
          title: m.name,
          detail: [formatBytes(m.size), m.formats.join(', '), m.quants.join(', ')]
            .filter(Boolean)
            .join(' · ')
        }))
      ],
      [
        'Hub',
        found.hub.map(m => ({
          model: m.repo_id,
          title: m.repo_id,
          detail:
            `${m.downloads.toLocaleString()} downloads · ${m.formats.join(', ') || 'format unknown'}` +
            (m.gated ? ' · gated: needs a token' : '')
        }))
      ]
    ];
    const nodes: HTMLElement[] = [];
    for (const [title, choices] of groups) {
      if (!choices.length) {
        continue;
      }
      nodes.push(element('div', 'kz-models-group', title));
      for (const choice of choices) {
        const item = element('button', 'kz-model-choice');
        item.type = 'button';
        item.dataset.model = choice.model;
        item.append(element('b', '', choice.title), element('div', 'kz-model-detail', choice.detail));
        item.addEventListener('click', () => this.choose(choice.model));
        nodes.push(item);
      }
    }
    if (found.hub_error && query) {
      nodes.push(element('div', 'kz-model-detail', found.hub_error));
    }
    if (!nodes.length) {
      nodes.push(element('div', 'kz-model-detail', `Nothing matches "${query}".`));
    }
    this._list.replaceChildren(...nodes);
  }

  private _search = element('input');
  private _list = element('div', 'kz-model-list');
  private _timer = 0;
}
