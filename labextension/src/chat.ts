/**
 * The docked chat: pick a deployment (and a retrieval index, whose sources come with the
 * answer), Enter sends (Shift+Enter adds a line), the reply streams in as rendered markdown with
 * a stop button, and each reply shows its time to first token, tokens and tokens/s, with copy
 * and "insert into a new cell". Each deployment keeps its own conversation in JupyterLab's state
 * database: it is there again after the page is reloaded, until "New chat" clears it.
 */
import { Clipboard } from '@jupyterlab/apputils';
import { IRenderMime, IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { IStateDB } from '@jupyterlab/statedb';
import { ReadonlyPartialJSONValue } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { IDeployment, requestAPI } from './api';
import { element } from './dom';
import { RetrievalKernel } from './retrieval';
import { IReplyFigures, replyFigures, streamChat } from './stream';

const MAX_TOKENS = 512;
const RENDER_EVERY_MS = 120; // markdown is rendered again at most this often while streaming
const ANSWERING = ['DEPLOYED', 'UNLOADED'];
const STATE_KEY = 'kz-jupyter:chat-histories';
const KEPT_TURNS = 200; // per deployment: the oldest go first

/** One message of a conversation, with how it came when it is a reply. */
interface ITurn {
  role: 'user' | 'assistant' | 'error';
  content: string;
  figures?: IReplyFigures;
  sources?: string[]; // the retrieved chunks the prompt carried, numbered as cited
  phase?: string; // what it waits for before the first token
}

/** What the chat needs from JupyterLab. */
export interface IChatOptions {
  rendermime: IRenderMimeRegistry;
  /** Put text in a new cell below the active one of the current notebook; false if none. */
  insertCell: (text: string) => Promise<boolean>;
  /** Where the conversations are kept across reloads (none: only while the page is open). */
  state: IStateDB | null;
  /** Where retrieval runs (the indexes and the embedder are on the kernel side). */
  retrieval: RetrievalKernel;
}

/** The chat panel of the right sidebar. */
export class ChatView extends Widget {
  constructor(private options: IChatOptions) {
    super();
    this.id = 'kz-chat';
    this.addClass('kz-chat');
    this.title.caption = 'kz-jupyter: chat with a local LLM';
    this._deployment.name = 'deployment';
    this._deployment.setAttribute('aria-label', 'Deployment');
    this._deployment.addEventListener('change', () => this.draw());
    this._log.setAttribute('role', 'log');
    this._log.setAttribute('aria-live', 'polite');
    this._input.name = 'message';
    this._input.rows = 3;
    this._input.addEventListener('keydown', event => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        void this.send();
      }
    });
    this._send.type = 'button';
    this._send.addEventListener('click', () => void this.send());
    this._stop.type = 'button';
    this._stop.disabled = true;
    this._stop.addEventListener('click', () => this._abort?.abort());
    this._temperature.name = 'temperature';
    this._temperature.type = 'number';
    this._temperature.min = '0';
    this._temperature.max = '2';
    this._temperature.step = '0.1';
    this._temperature.placeholder = "model's";
    this._temperature.setAttribute('aria-label', 'Temperature');
    this._index.name = 'index';
    this._index.setAttribute('aria-label', 'Retrieval index');
    this._index.title = 'Answer from the sources of a retrieval index (%kz rag index)';
    this._index.append(new Option('none', ''));
    const header = element('div', 'kz-chat-header');
    header.append(
      element('label', '', 'Deployment'),
      this._deployment,
      element('label', '', 'Temperature'),
      this._temperature,
      element('label', '', 'Sources'),
      this._index
    );
    this._clear.type = 'button';
    this._clear.title = "Clear this deployment's conversation";
    this._clear.addEventListener('click', () => {
      this._histories.delete(this._deployment.value);
      void this.save();
      this.draw();
    });
    const buttons = element('div', 'kz-buttons');
    buttons.append(this._send, this._stop, this._clear);
    this.node.append(header, this._log, this._input, buttons, this._note);
    this._restored = this.restore().catch(error => {
      this._note.textContent = `The earlier conversations could not be read: ${error}`;
    });
  }

  /** The conversation with the chosen deployment. */
  get turns(): ITurn[] {
    const name = this._deployment.value;
    if (!this._histories.has(name)) {
      this._histories.set(name, []);
    }
    return this._histories.get(name)!;
  }

  /** List the deployments that answer again, choosing name when given. */
  async refresh(name?: string): Promise<void> {
    try {
      await this._restored;
      const deployments = await requestAPI<IDeployment[]>('deployments');
      const names = deployments
        .filter(d => ANSWERING.includes(d.status) && (d.plan?.task ?? 'generate') === 'generate')
        .map(d => d.name);
      const wanted = name ?? this._deployment.value;
      this._deployment.replaceChildren(...names.map(n => new Option(n, n)));
      if (names.includes(wanted)) {
        this._deployment.value = wanted;
      }
      this._note.textContent = names.length
        ? ''
        : 'No deployment answers yet: deploy one from the kz sidebar or with %kz deploy.';
      this.draw();
    } catch (error) {
      this._note.textContent = `${error}`;
    }
    void this.listIndexes();
  }

  /** List the retrieval indexes again, keeping the chosen one. */
  private async listIndexes(): Promise<void> {
    try {
      const names = await this.options.retrieval.indexes();
      const wanted = this._index.value;
      this._index.replaceChildren(new Option('none', ''), ...names.map(n => new Option(n, n)));
      this._index.value = names.includes(wanted) ? wanted : '';
    } catch (error) {
      this._note.textContent = `The retrieval indexes could not be listed: ${error}`;
    }
  }

  /** Read the conversations kept in the state database (once). */
  private async restore(): Promise<void> {
    const saved = (await this.options.state?.fetch(STATE_KEY)) as
      | Record<string, ITurn[]>
      | undefined;
    for (const [name, turns] of Object.entries(saved ?? {})) {
      if (!this._histories.has(name)) {
        this._histories.set(name, turns);
      }
    }
  }

  /** Keep the conversations (the finished turns) in the state database. */
  private async save(): Promise<void> {
    const kept: Record<string, ITurn[]> = {};
    for (const [name, turns] of this._histories) {
      if (turns.length) {
        kept[name] = turns.slice(-KEPT_TURNS);
      }
    }
    await this.options.state?.save(STATE_KEY, kept as unknown as ReadonlyPartialJSONValue);
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  protected onActivateRequest(): void {
    this._input.focus();
  }

  /** Send the typed message; the reply streams in under it. */
  async send(): Promise<void> {
    const text = this._input.value.trim();
    const name = this._deployment.value;
    if (!text || !name || this._abort) {
      return;
    }
    const turns = this.turns;
    const index = this._index.value;
    this._input.value = '';
    const history = turns
      .filter(t => t.role !== 'error')
      .map(t => ({ role: t.role, content: t.content }));
    turns.push({ role: 'user', content: text });
    const reply: ITurn = { role: 'assistant', content: '' };
    turns.push(reply);
    this.draw();
    this._abort = new AbortController();
    this.busy(true);
    try {
      let messages = [...history, { role: 'user', content: text }];
      if (index) {
        reply.phase = `retrieving from ${index}…`;
        void this.render(reply);
        const grounded = await this.options.retrieval.ground({
          index,
          question: text,
          deployment: name,
          history,
          max_tokens: MAX_TOKENS
        });
        messages = grounded.messages;
        reply.sources = grounded.sources;
        reply.phase = 'generating…';
        void this.render(reply);
      }
      const temperature = this._temperature.value;
      reply.figures = await streamChat(
        name,
        messages,
        { max_tokens: MAX_TOKENS, ...(temperature ? { temperature: Number(temperature) } : {}) },
        this._abort.signal,
        content => {
          reply.content = content;
          this.renderSoon(reply);
        }
      );
    } catch (error) {
      turns.splice(turns.indexOf(reply), 1, { role: 'error', content: `${error}` });
    } finally {
      delete reply.phase;
      this._abort = null;
      this.busy(false);
      this.draw();
      await this.save();
    }
  }

  /** Draw the chosen deployment's conversation. */
  draw(): void {
    this._input.placeholder = this._deployment.value
      ? `Message ${this._deployment.value} (Enter sends, Shift+Enter adds a line)`
      : 'Choose a deployment';
    for (const renderer of this._renderers.values()) {
      renderer.dispose();
    }
    this._renderers.clear();
    this._views.clear();
    const bubbles = this.turns.map(turn => this.bubble(turn));
    this._log.replaceChildren(...(bubbles.length ? bubbles : [element('i', '', 'No messages yet.')]));
    for (const turn of this._views.keys()) {
      void this.render(turn); // once on the page: a renderer is attached to its bubble
    }
    this._log.scrollTop = this._log.scrollHeight;
  }

  private busy(busy: boolean): void {
    this._send.disabled = busy;
    this._stop.disabled = !busy;
    this._clear.disabled = busy;
    this._deployment.disabled = busy;
    this._index.disabled = busy;
  }

  private bubble(turn: ITurn): HTMLElement {
    const node = element('div', `kz-chat-turn kz-chat-${turn.role}`);
    if (turn.role !== 'assistant') {
      node.append(element('div', 'kz-chat-text', turn.content));
      return node;
    }
    const sources = element('div', 'kz-chat-sources');
    const body = element('div', 'kz-chat-markdown');
    const figures = element('div', 'kz-chat-figures');
    const actions = element('div', 'kz-buttons kz-chat-actions');
    const button = (label: string, onClick: () => void) => {
      const node = element('button', 'jp-mod-styled', label);
      node.type = 'button';
      node.addEventListener('click', onClick);
      actions.append(node);
    };
    button('copy', () => Clipboard.copyToSystem(turn.content));
    button('insert into a new cell', () => void this.insert(turn.content));
    node.append(sources, body, figures, actions);
    this._views.set(turn, { sources, body, figures, actions });
    return node;
  }

  private renderSoon(turn: ITurn): void {
    if (this._pending) {
      return;
    }
    this._pending = window.setTimeout(() => {
      this._pending = 0;
      void this.render(turn);
    }, RENDER_EVERY_MS);
  }

  /** Render a reply's markdown (sanitized, as untrusted output is) and its figures. */
  private async render(turn: ITurn): Promise<void> {
    const view = this._views.get(turn);
    if (!view) {
      return; // not on screen (another deployment's conversation is shown)
    }
    let renderer = this._renderers.get(turn);
    if (!renderer) {
      renderer = this.options.rendermime.createRenderer('text/markdown');
      this._renderers.set(turn, renderer);
      Widget.attach(renderer, view.body);
    }
    await renderer.renderModel(
      new MimeModel({ data: { 'text/markdown': turn.content || '…' }, trusted: false })
    );
    view.sources.replaceChildren(
      ...(turn.sources?.length ? [element('b', '', 'Sources')] : []),
      ...(turn.sources ?? []).map(line => element('div', '', line))
    );
    view.figures.textContent = turn.figures
      ? replyFigures(turn.figures, MAX_TOKENS)
      : (turn.phase ?? '');
    view.actions.hidden = !turn.figures;
    this._log.scrollTop = this._log.scrollHeight;
  }

  private async insert(text: string): Promise<void> {
    const done = await this.options.insertCell(text);
    this._note.textContent = done ? '' : 'Open a notebook first: the reply goes into a new cell.';
  }

  private _deployment = element('select', 'kz-chat-deployment');
  private _log = element('div', 'kz-chat-log');
  private _input = element('textarea', 'kz-chat-input');
  private _temperature = element('input', 'kz-chat-temperature');
  private _index = element('select', 'kz-chat-index');
  private _send = element('button', 'jp-mod-styled jp-mod-accept', 'Send');
  private _stop = element('button', 'jp-mod-styled jp-mod-warn', 'Stop');
  private _clear = element('button', 'jp-mod-styled', 'New chat');
  private _note = element('div', 'kz-message');
  private _histories = new Map<string, ITurn[]>();
  private _renderers = new Map<ITurn, IRenderMime.IRenderer>();
  private _views = new Map<ITurn, IView>();
  private _abort: AbortController | null = null;
  private _pending = 0;
  private _restored: Promise<void>;
}

/** Where an assistant turn is drawn. */
interface IView {
  sources: HTMLElement;
  body: HTMLElement;
  figures: HTMLElement;
  actions: HTMLElement;
}
