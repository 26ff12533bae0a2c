// The include glob's syntax, as Go's path.Match checks it (go/src/path/
// match.go: scanChunk, matchChunk, getEsc), so that Node refuses exactly
// the patterns the Go planner cannot use. Both are tested with
// jobs/testdata/include_vectors.json.

/**
 * Reports why glob is not a valid path.Match pattern, or null when it is.
 * @param {string} glob
 * @returns {string|null}
 */
export function globError(glob) {
  const c = Array.from(glob); // code points: Go's getEsc reads one rune
  if (c.some((ch) => { const u = ch.codePointAt(0); return u >= 0xd800 && u <= 0xdfff; })) return 'not valid UTF-8';
  let i = 0;
  while (i < c.length) {
    while (i < c.length && c[i] === '*') i++;
    // scanChunk: up to the next '*' outside a character class.
    let j = i;
    let inrange = false;
    for (; j < c.length; j++) {
      if (c[j] === '\\') {
        if (j + 1 < c.length) j++;
      } else if (c[j] === '[') {
        inrange = true;
      } else if (c[j] === ']') {
        inrange = false;
      } else if (c[j] === '*' && !inrange) {
        break;
      }
    }
    if (!chunkOK(c.slice(i, j))) return 'syntax error in pattern';
    i = j;
  }
  return null;
}

// chunkOK is matchChunk's parse, without the matching.
function chunkOK(k) {
  let i = 0;
  while (i < k.length) {
    if (k[i] === '[') {
      i++;
      if (i < k.length && k[i] === '^') i++;
      for (let n = 0; ; n++) {
        if (i < k.length && k[i] === ']' && n > 0) {
          i++;
          break;
        }
        i = esc(k, i);
        if (i < 0) return false;
        if (k[i] === '-') {
          i = esc(k, i + 1);
          if (i < 0) return false;
        }
      }
    } else if (k[i] === '\\') {
      i += 2;
      if (i > k.length) return false;
    } else {
      i++;
    }
  }
  return true;
}

// esc is getEsc: one (possibly escaped) character of a class, which must
// be followed by more of the pattern. It returns the next index, or -1.
function esc(k, i) {
  if (i >= k.length || k[i] === '-' || k[i] === ']') return -1;
  if (k[i] === '\\') {
    i++;
    if (i >= k.length) return -1;
  }
  i++;
  return i >= k.length ? -1 : i;
}
