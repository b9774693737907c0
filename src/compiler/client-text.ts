/**
 * Text a client sent (node ids, NACK messages) is untrusted: before it is
 * logged, stored for status or printed, control characters (newlines, ANSI
 * escapes), bidirectional overrides and other invisible code points are
 * written as escapes, and the text is cut to a bound. One log line stays one
 * event, and a terminal shows what was sent rather than obeying it.
 */
export const CLIENT_TEXT_MAX = 512;

// C0/C1 controls, DEL, zero-width and bidi controls, line/paragraph separators, BOM.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

export function clientText(text: string, max = CLIENT_TEXT_MAX): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const safe = cut.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return text.length > max ? `${safe}… (${text.length - max} more characters)` : safe;
}
