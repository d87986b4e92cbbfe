/**
 * A small Markdown renderer for model output that builds DOM nodes directly: every piece of model text lands in
 * the page through `textContent` / `createTextNode`, never through innerHTML, so the model cannot inject markup or
 * script. Supported: paragraphs, headings, fenced code blocks, inline code, bold, italic, links (http/https/mailto
 * only), unordered and ordered lists, block quotes, horizontal rules. Anything else is shown as plain text.
 * Works on partial text while a reply streams in (an unclosed fence is a code block that is still growing).
 */

/** Renders `markdown` into a fragment. `doc` is injectable for tests. */
export function renderMarkdown(markdown: string, doc: Document = document): DocumentFragment {
  const out = doc.createDocumentFragment();
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  let paragraph: string[] = [];
  const flushParagraph = () => {
    if (paragraph.length === 0) return;
    const p = doc.createElement('p');
    appendInline(p, paragraph.join('\n'), doc);
    out.append(p);
    paragraph = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = /^\s*(```+|~~~+)\s*([\w+#.-]*)\s*$/.exec(line);
    if (fence) {
      flushParagraph();
      const code: string[] = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) code.push(lines[i++]);
      i++; // the closing fence (or past the end while streaming)
      const pre = doc.createElement('pre');
      const el = doc.createElement('code');
      if (fence[2]) el.dataset.lang = fence[2];
      el.textContent = code.join('\n');
      pre.append(el);
      out.append(pre);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flushParagraph();
      // Model headings sit inside a chat bubble: render them one level below the page's own h2/h3.
      const h = doc.createElement(`h${Math.min(6, heading[1].length + 2)}`);
      appendInline(h, heading[2].replace(/\s#+\s*$/, ''), doc);
      out.append(h);
      i++;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flushParagraph();
      out.append(doc.createElement('hr'));
      i++;
      continue;
    }
    if (/^\s*>/.test(line)) {
      flushParagraph();
      const quoted: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ''));
      const q = doc.createElement('blockquote');
      q.append(renderMarkdown(quoted.join('\n'), doc));
      out.append(q);
      continue;
    }
    const item = /^\s*([-*+]|\d{1,9}[.)])\s+/.exec(line);
    if (item) {
      flushParagraph();
      const ordered = /\d/.test(item[1]);
      const list = doc.createElement(ordered ? 'ol' : 'ul');
      if (ordered) {
        const start = parseInt(item[1], 10);
        if (start !== 1) list.setAttribute('start', String(start));
      }
      while (i < lines.length) {
        const m = /^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(lines[i]);
        if (!m || /\d/.test(m[1]) !== ordered) break;
        const li = doc.createElement('li');
        let text = m[2];
        i++;
        // Continuation lines (indented, not a new item) belong to this item.
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !/^\s*([-*+]|\d{1,9}[.)])\s+/.test(lines[i])) text += '\n' + lines[i++].trim();
        appendInline(li, text, doc);
        list.append(li);
      }
      out.append(list);
      continue;
    }
    if (line.trim() === '') {
      flushParagraph();
      i++;
      continue;
    }
    paragraph.push(line);
    i++;
  }
  flushParagraph();
  return out;
}

const SAFE_LINK = /^(https?:|mailto:)/i;

/** Inline spans: `code`, **bold**, *italic* / _italic_, [text](url), line breaks. */
function appendInline(parent: HTMLElement, text: string, doc: Document): void {
  const pattern = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*(?!\s)([\s\S]+?)\*|(?<![\w])_(?!\s)([\s\S]+?)_(?![\w])|\[([^\]\n]+)\]\(([^)\s]+)\)|\n/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    const at = m.index ?? 0;
    if (at > last) parent.append(doc.createTextNode(text.slice(last, at)));
    last = at + m[0].length;
    if (m[1] !== undefined) {
      const code = doc.createElement('code');
      code.textContent = m[2].trim() === '' ? m[2] : m[2].replace(/^ (.*) $/s, '$1');
      parent.append(code);
    } else if (m[3] !== undefined || m[4] !== undefined) {
      const b = doc.createElement('strong');
      appendInline(b, m[3] ?? m[4], doc);
      parent.append(b);
    } else if (m[5] !== undefined || m[6] !== undefined) {
      const em = doc.createElement('em');
      appendInline(em, m[5] ?? m[6], doc);
      parent.append(em);
    } else if (m[7] !== undefined) {
      const href = m[8];
      if (SAFE_LINK.test(href)) {
        const a = doc.createElement('a');
        a.href = href;
        a.rel = 'noopener noreferrer nofollow';
        a.target = '_blank';
        appendInline(a, m[7], doc);
        parent.append(a);
      } else {
        parent.append(doc.createTextNode(m[0]));
      }
    } else {
      parent.append(doc.createElement('br'));
    }
  }
  if (last < text.length) parent.append(doc.createTextNode(text.slice(last)));
}
