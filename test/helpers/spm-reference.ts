/**
 * An independent reference of llama.cpp's SentencePiece-BPE tokenizer (`llm_tokenizer_spm`), written from its
 * description, to check the tokenizer.json we synthesise from a GGUF vocabulary: spaces become "▁"; the text is split
 * into UTF-8 characters; repeatedly the adjacent pair whose concatenation is a vocabulary piece with the highest score
 * is merged (ties: the leftmost pair); each final symbol is its piece's id, or is split back along the merge that
 * made it, or falls back to its bytes' `<0xNN>` tokens. BOS is prepended when asked. No special-token parsing.
 */
export function spmEncode(tokens: readonly string[], scores: readonly number[], text: string, bos?: number): number[] {
  const vocab = new Map<string, number>();
  tokens.forEach((t, i) => vocab.has(t) || vocab.set(t, i));
  const chars = Array.from(text.replace(/ /g, '▁'));
  const sym = chars.map((c, i) => ({ text: c, prev: i - 1, next: i + 1 < chars.length ? i + 1 : -1, alive: true }));
  const revMerge = new Map<string, [number, number]>();
  type Bigram = { left: number; right: number; score: number; text: string };
  const queue: Bigram[] = [];
  const push = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const t = sym[left].text + sym[right].text;
    const id = vocab.get(t);
    if (id === undefined) return;
    queue.push({ left, right, score: scores[id], text: t });
  };
  for (let i = 1; i < sym.length; i++) push(i - 1, i);
  while (queue.length > 0) {
    // Highest score first; ties go to the leftmost pair.
    let best = 0;
    for (let i = 1; i < queue.length; i++) {
      const a = queue[i], b = queue[best];
      if (a.score > b.score || (a.score === b.score && a.left < b.left)) best = i;
    }
    const bg = queue.splice(best, 1)[0];
    const l = sym[bg.left], r = sym[bg.right];
    if (!l.alive || !r.alive || l.text + r.text !== bg.text) continue; // stale
    revMerge.set(bg.text, [bg.left, bg.right]);
    l.text = bg.text;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = bg.left;
    push(l.prev, bg.left);
    push(bg.left, l.next);
  }
  const out: number[] = bos === undefined ? [] : [bos];
  const emit = (t: string) => {
    const id = vocab.get(t);
    if (id !== undefined) return out.push(id);
    for (const byte of new TextEncoder().encode(t)) out.push(vocab.get(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`)!);
  };
  for (let i = 0; i >= 0 && i < sym.length; i = sym[i].next) emit(sym[i].text);
  return out;
}
