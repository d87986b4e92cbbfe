/**
 * Parses tool calls out of a streamed reply, incrementally. A reply whose first non-blank character is `{` is a
 * call (the documented format, see tools.ts): its text is held back, and each call is yielded the moment its
 * JSON object closes, with an id, the name and the parsed `arguments`. Any other reply is plain text, passed
 * through. A call object that does not parse, or names no declared tool, turns the whole reply back into text.
 */
import type { ToolCall, ToolChoice, ToolDeclaration } from './tools.ts';

export interface ParsedDelta {
  text: string;
  toolCalls: ToolCall[];
}

let idCounter = 0;
const idBase = Math.random().toString(36).slice(2, 8);

export function newCallId(): string {
  return `call_${idBase}${(idCounter++).toString(36)}`;
}

export class ToolCallParser {
  private mode: 'undecided' | 'text' | 'call' = 'undecided';
  private buffer = '';
  private scanned = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private readonly names: Set<string>;
  readonly calls: ToolCall[] = [];

  constructor(tools: readonly ToolDeclaration[], choice: ToolChoice = 'auto', private readonly makeId: () => string = newCallId) {
    this.names = new Set(tools.map((t) => t.function.name));
    if (choice === 'none' || tools.length === 0) this.mode = 'text';
  }

  /** Whether the reply is (so far) a call. */
  get inCall(): boolean {
    return this.mode === 'call';
  }

  push(text: string): ParsedDelta {
    if (this.mode === 'text') return { text, toolCalls: [] };
    this.buffer += text;
    if (this.mode === 'undecided') {
      const first = this.buffer.search(/\S/);
      if (first < 0) return { text: '', toolCalls: [] };
      if (this.buffer[first] !== '{') {
        this.mode = 'text';
        const all = this.buffer;
        this.buffer = '';
        return { text: all, toolCalls: [] };
      }
      this.mode = 'call';
      this.scanned = first;
    }
    const toolCalls = this.scan();
    if ((this.mode as string) === 'text') {
      // Not a call after all: release the held-back text (calls already yielded stay yielded).
      const held = this.buffer.slice(this.start >= 0 ? this.start : 0);
      this.buffer = '';
      return { text: held, toolCalls };
    }
    return { text: '', toolCalls };
  }
  private scan(): ToolCall[] {
    const found: ToolCall[] = [];
    for (; this.scanned < this.buffer.length; this.scanned++) {
      const c = this.buffer[this.scanned];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === '{') {
        if (this.depth++ === 0) this.start = this.scanned;
      } else if (c === '}' && --this.depth === 0) {
        const call = this.toCall(this.buffer.slice(this.start, this.scanned + 1));
        if (!call) {
          this.mode = 'text';
          return found;
        }
        this.calls.push(call);
        found.push(call);
      }
    }
    return found;
  }

  private toCall(json: string): ToolCall | undefined {
    let v: unknown;
    try {
      v = JSON.parse(json);
    } catch {
      return undefined;
    }
    const o = v as { name?: unknown; parameters?: unknown; arguments?: unknown };
    const args = o?.parameters ?? o?.arguments ?? {};
    if (typeof o?.name !== 'string' || !this.names.has(o.name) || typeof args !== 'object' || args === null || Array.isArray(args)) return undefined;
    return { id: this.makeId(), name: o.name, arguments: args as Record<string, unknown> };
  }

  /**
   * Ends the reply. `text`: what is still held back and is plain text (whitespace-only replies). `complete`:
   * false when a call was cut off half-written (it is dropped, never parsed).
   */
  finish(): { text: string; complete: boolean } {
    const held = this.buffer;
    this.buffer = '';
    if (this.mode === 'call') return { text: '', complete: this.depth === 0 };
    return { text: held, complete: true };
  }
}
