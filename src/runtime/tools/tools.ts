/**
 * Function calling for Gemma 3n, which has no tool tokens: the declarations go into the prompt and calls are
 * parsed from the reply, in the JSON form of Google's Gemma function-calling guide
 * (https://ai.google.dev/gemma/docs/capabilities/function-calling: "You have access to functions. If you decide
 * to invoke any of the function(s), you MUST put it in the format of {"name": function name, "parameters":
 * dictionary of argument name and its value}" ... "You SHOULD NOT include any other text in the response if you
 * call a function", followed by the JSON list of declarations). Function results go back in the next user turn
 * wrapped in ```tool_output``` blocks, the wrapper Gemma's agentic guides use
 * (https://ai.google.dev/gemma/docs/meme-generator: "Gemma is expecting to get its result back wrapped with
 * ```tool_output```"). The chat template still applies: rendering yields plain ChatMessages.
 */
import { GemmaError } from '../../errors.ts';
import type { ChatMessage, ToolChoice, ToolDeclaration } from '../protocol.ts';
import type { ContentPart, WireMessage, WirePart } from '../content.ts';
import { EbnfBuilder, cls } from '../constrained/ebnf.ts';
import { type GrammarSpec, schemaSpec } from '../constrained/grammar-constraint.ts';
import { type SchemaNode, SchemaGrammar, checkSchemaTree, readSchema, serialize } from '../constrained/json-schema.ts';

export type { ToolCall, ToolChoice, ToolDeclaration } from '../protocol.ts';

/**
 * A conversation turn with tools: assistant turns may carry calls, `tool` turns carry results. Content may be parts
 * (audio, ...) as the caller wrote them or as they crossed to the worker: rendering keeps them where they are.
 */
export type ToolChatMessage = ChatMessage | WireMessage;

/** A rendered turn: plain system/user/assistant, content as the chat template and the media prompt builder take it. */
export type RenderedMessage = ChatMessage | WireMessage;

type Part = ContentPart | WirePart;

export const TOOL_INSTRUCTIONS =
  'You have access to functions. If you decide to invoke any of the function(s), you MUST put it in the format of\n' +
  '{"name": function name, "parameters": dictionary of argument name and its value}\n\n' +
  'You SHOULD NOT include any other text in the response if you call a function\n';

export function validateTools(tools: readonly ToolDeclaration[], choice: ToolChoice = 'auto'): void {
  const names = new Set<string>();
  for (const t of tools) {
    if (t?.type !== 'function' || typeof t.function?.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(t.function.name)) {
      throw new GemmaError('invalid-argument', `Each tool must be { type: 'function', function: { name, description?, parameters? } } with a name of letters, digits, _ . - (got ${JSON.stringify(t)}).`);
    }
    if (names.has(t.function.name)) throw new GemmaError('invalid-argument', `Two tools are named "${t.function.name}".`);
    names.add(t.function.name);
  }
  if (typeof choice === 'object' && !names.has(choice.name)) throw new GemmaError('invalid-argument', `toolChoice names "${choice.name}", which is not among the tools (${[...names].join(', ')}).`);
  if (choice === 'required' && tools.length === 0) throw new GemmaError('invalid-argument', "toolChoice 'required' needs at least one tool.");
}

/** The text of a call as the model writes it (and as an assistant turn renders it back). */
export function callText(call: { name: string; arguments: unknown }): string {
  return serialize({ name: call.name, parameters: call.arguments });
}

function toolOutput(content: string): string {
  return '```tool_output\n' + content + '\n```';
}

/**
 * Renders a tool conversation into plain chat messages for the chat template: declarations into the system turn
 * (omitted for toolChoice 'none'), assistant calls as their JSON, tool results as ```tool_output``` blocks in a
 * user turn (consecutive results, and a user message right after them, share that turn). Media parts stay in their
 * turns; text joined into a turn goes into the neighbouring text part (the template trims each text part).
 */
export function renderToolConversation(messages: readonly ToolChatMessage[], tools: readonly ToolDeclaration[], choice: ToolChoice = 'auto'): RenderedMessage[] {
  validateTools(tools, choice);
  validateToolMessages(messages);
  const out: RenderedMessage[] = [];
  const push = (role: RenderedMessage['role'], content: RenderedMessage['content'], mergeWith?: RenderedMessage['role']) => {
    const last = out[out.length - 1];
    if (mergeWith && last?.role === mergeWith && role === mergeWith) last.content = joinContent(last.content, content);
    else out.push({ role, content } as RenderedMessage);
  };
  let lastWasTool = false;
  for (const m of messages) {
    switch (m.role) {
      case 'system':
      case 'user':
        push(m.role, m.content, lastWasTool && m.role === 'user' ? 'user' : undefined);
        break;
      case 'assistant': {
        const calls = (m.toolCalls ?? []).map(callText).join('\n');
        push('assistant', calls === '' ? m.content : joinContent(m.content, calls, '\n'));
        break;
      }
      case 'tool':
        push('user', toolOutput(m.content as string), lastWasTool ? 'user' : undefined);
        break;
    }
    lastWasTool = m.role === 'tool';
  }
  if (tools.length > 0 && choice !== 'none') {
    const declarations = JSON.stringify(
      tools.map((t) => ({ name: t.function.name, description: t.function.description ?? '', parameters: t.function.parameters ?? { type: 'object', properties: {} } })),
      null,
      2,
    );
    const block = TOOL_INSTRUCTIONS + declarations;
    if (out[0]?.role === 'system') out[0] = { role: 'system', content: joinContent(block, out[0].content) } as RenderedMessage;
    else out.unshift({ role: 'system', content: block });
  }
  return out;
}

/**
 * `a` then `b` in one turn, separated by `sep` (empty sides dropped). Strings stay strings; with parts, text at the
 * seam joins into one text part, so the separator survives the template's per-part trim.
 */
export function joinContent(a: RenderedMessage['content'], b: RenderedMessage['content'], sep = '\n\n'): RenderedMessage['content'] {
  if (typeof a === 'string' && typeof b === 'string') return [a, b].filter((s) => s !== '').join(sep);
  const parts = (c: RenderedMessage['content']): Part[] => (typeof c === 'string' ? (c === '' ? [] : [{ type: 'text', text: c }]) : [...c]);
  const left = parts(a);
  const right = parts(b);
  const l = left[left.length - 1];
  const r = right[0];
  if (l?.type === 'text' && r?.type === 'text') left[left.length - 1] = { type: 'text', text: [l.text, r.text].filter((s) => s !== '').join(sep) }, right.shift();
  // Page-side and wire parts never meet in one conversation; the media prompt builder prepares either form.
  return [...left, ...right] as WirePart[];
}

/** The shapes function calling needs, checked before any token (content itself is the prompt builder's to check). */
export function validateToolMessages(messages: readonly ToolChatMessage[]): void {
  for (const [i, m] of messages.entries()) {
    const where = `Message ${i + 1}`;
    if (!m || !['system', 'user', 'assistant', 'tool'].includes(m.role)) {
      throw new GemmaError('invalid-argument', `${where} needs role 'system' | 'user' | 'assistant' | 'tool' (got ${JSON.stringify((m as { role?: unknown })?.role ?? m)}).`);
    }
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) {
      throw new GemmaError('invalid-argument', `${where} needs a content that is a string or an array of parts (got ${typeof m.content}).`);
    }
    if (m.role === 'tool' && typeof m.content !== 'string') {
      throw new GemmaError('invalid-argument', `${where} (role 'tool') carries a function's result: its content must be a string (JSON.stringify the result).`);
    }
    if (m.toolCalls !== undefined) {
      if (m.role !== 'assistant') throw new GemmaError('invalid-argument', `${where}: only assistant messages carry toolCalls (got role '${m.role}').`);
      if (!Array.isArray(m.toolCalls) || m.toolCalls.some((c) => typeof c?.name !== 'string' || typeof c.arguments !== 'object' || c.arguments === null || Array.isArray(c.arguments))) {
        throw new GemmaError('invalid-argument', `${where}: toolCalls must be an array of { id, name, arguments: object } (as the stream yielded them).`);
      }
    }
  }
}

/** The schema tree of a call to one of the tools: {"name": <const>, "parameters": <the tool's schema>}. */
export function callSchema(tools: readonly ToolDeclaration[], choice: ToolChoice): SchemaNode {
  const chosen = typeof choice === 'object' ? tools.filter((t) => t.function.name === choice.name) : tools;
  const options: SchemaNode[] = chosen.map((t) => ({
    kind: 'object',
    additional: null,
    props: [
      { name: 'name', node: { kind: 'const', values: [t.function.name] }, required: true },
      { name: 'parameters', node: readSchema(t.function.parameters ?? { type: 'object' }, `#/tools/${t.function.name}/parameters`), required: true },
    ],
  }));
  return options.length === 1 ? options[0] : { kind: 'anyOf', options };
}

/** The grammar of the reply under 'required' / a named tool: exactly one well-formed call. */
export function requiredCallSpec(tools: readonly ToolDeclaration[], choice: ToolChoice): GrammarSpec {
  validateTools(tools, choice);
  return schemaSpec(callSchema(tools, choice));
}

/** The grammar of a reply that has started a call under 'auto': leading whitespace, then one call. */
export function autoCallSpec(tools: readonly ToolDeclaration[]): GrammarSpec {
  validateTools(tools, 'auto');
  const node = callSchema(tools, 'auto');
  checkSchemaTree(node);
  const g = new EbnfBuilder();
  const call = new SchemaGrammar(g).value(node);
  return { ebnf: g.text(`${cls([[0x09, 0x0a], [0x20, 0x20]])}* ${call}`), schema: node };
}
