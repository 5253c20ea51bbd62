/**
 * Retrieval for the docked chat, run in a Python kernel: the indexes and the embedder live on
 * the kernel side, as they do for a notebook (`kz_jupyter.rag.lab_chat` answers). The kernel is
 * a session of its own ("kz chat retrieval" in the running kernels), started the first time the
 * chat is shown and found again after a reload.
 */
import { KernelMessage, Session } from '@jupyterlab/services';

const SESSION_PATH = 'kz-chat-retrieval';

/** A grounded prompt: the messages to send and the sources they carry. */
export interface IGrounded {
  messages: { role: string; content: string }[];
  sources: string[];
}

/** What a grounded prompt is made from. */
export interface IGroundRequest {
  index: string;
  question: string;
  deployment: string;
  history: { role: string; content: string }[];
  max_tokens: number;
}

/** Calls into kz_jupyter.rag.lab_chat in the chat's own kernel. */
export class RetrievalKernel {
  constructor(private sessions: Session.IManager) {}

  /** The names of the indexes there are. */
  indexes(): Promise<string[]> {
    return this.run<string[]>('print_indexes()');
  }

  /** Retrieve for a question and make the grounded prompt. */
  ground(request: IGroundRequest): Promise<IGrounded> {
    // a JSON string is also a Python string literal
    return this.run<IGrounded>(`print_grounded(${JSON.stringify(JSON.stringify(request))})`);
  }

  /** Run a call of lab_chat; its last line of output is the JSON answer. */
  private async run<T>(call: string): Promise<T> {
    const kernel = (await this.session()).kernel;
    if (!kernel) {
      throw new Error('The chat\'s retrieval kernel is not running: reload the page.');
    }
    const code = `from kz_jupyter.rag.lab_chat import print_grounded, print_indexes\n${call}`;
    const future = kernel.requestExecute({ code, silent: false, store_history: false });
    let output = '';
    let failure = '';
    future.onIOPub = message => {
      if (KernelMessage.isStreamMsg(message) && message.content.name === 'stdout') {
        output += message.content.text;
      } else if (KernelMessage.isErrorMsg(message)) {
        failure = message.content.evalue || message.content.ename;
      }
    };
    await future.done;
    if (failure) {
      throw new Error(failure);
    }
    return JSON.parse(output.trim().split('\n').pop() ?? 'null') as T;
  }

  /** The chat's kernel session: the running one, else a new one. */
  private session(): Promise<Session.ISessionConnection> {
    if (!this._session) {
      this._session = this.open();
      this._session.catch(() => (this._session = null)); // tried again next time
    }
    return this._session;
  }

  private async open(): Promise<Session.ISessionConnection> {
    await this.sessions.ready;
    const running = await this.sessions.findByPath(SESSION_PATH);
    if (running) {
      return this.sessions.connectTo({ model: running });
    }
    return this.sessions.startNew({
      path: SESSION_PATH,
      name: 'kz chat retrieval',
      type: 'kz-chat',
      kernel: { name: 'python3' }
    });
  }

  private _session: Promise<Session.ISessionConnection> | null = null;
}
