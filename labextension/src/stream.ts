/**
 * A chat reply streamed from the OpenAI-compatible proxy (`/kz/v1/chat/completions`, server-sent
 * events), with its time to first token, tokens and how it ended.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { KzApiError } from './api';

/** How a reply came. */
export interface IReplyFigures {
  ttft: number | null; // seconds to the first text
  seconds: number;
  completionTokens: number;
  finishReason: string | null; // 'stop', 'length' (cut at max_tokens), ...
  stopped: boolean; // ended by the user
}

/** A reply's figures in one line: TTFT, tokens, tokens/s, and how it ended early. */
export function replyFigures(figures: IReplyFigures, maxTokens: number): string {
  const parts: string[] = [];
  const { ttft, seconds, completionTokens } = figures;
  if (ttft !== null) {
    parts.push(`TTFT ${(ttft * 1000).toFixed(0)} ms`);
  }
  if (completionTokens) {
    parts.push(`${completionTokens} tokens`);
  }
  if (ttft !== null && completionTokens >= 2 && seconds > ttft) {
    parts.push(`${((completionTokens - 1) / (seconds - ttft)).toFixed(1)} tok/s`);
  }
  if (figures.stopped) {
    parts.push('stopped');
  } else if (figures.finishReason === 'length') {
    parts.push(`cut at ${maxTokens} tokens`);
  }
  return parts.join(' · ');
}

/**
 * Stream a chat reply from a deployment, calling onText with the text so far; resolves with
 * its figures when it ends or when signal aborts it (what came so far stays).
 */
export async function streamChat(
  deployment: string,
  messages: { role: string; content: string }[],
  params: { max_tokens: number; temperature?: number },
  signal: AbortSignal,
  onText: (text: string) => void
): Promise<IReplyFigures> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'kz/v1/chat/completions');
  const body = {
    model: deployment,
    messages,
    ...params,
    stream: true,
    stream_options: { include_usage: true }
  };
  const started = performance.now();
  const figures: IReplyFigures = {
    ttft: null,
    seconds: 0,
    completionTokens: 0,
    finishReason: null,
    stopped: false
  };
  let text = '';
  try {
    const response = await ServerConnection.makeRequest(
      url,
      { method: 'POST', body: JSON.stringify(body), signal },
      settings
    );
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new KzApiError(error?.error?.message ?? `${response.status} ${response.statusText}`);
    }
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        break;
      }
      buffer += value;
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        const data = line.startsWith('data:') ? line.slice(5).trim() : '';
        if (!data || data === '[DONE]') {
          continue;
        }
        const event = JSON.parse(data);
        if (event.error) {
          throw new KzApiError(event.error.message ?? JSON.stringify(event.error));
        }
        const choice = event.choices?.[0];
        if (choice?.finish_reason) {
          figures.finishReason = choice.finish_reason;
        }
        if (event.usage) {
          figures.completionTokens = event.usage.completion_tokens;
        }
        if (choice?.delta?.content) {
          figures.ttft ??= (performance.now() - started) / 1000;
          text += choice.delta.content;
          onText(text);
        }
      }
    }
  } catch (error) {
    if (!signal.aborted) {
      throw error;
    }
    figures.stopped = true;
  }
  figures.seconds = (performance.now() - started) / 1000;
  return figures;
}
