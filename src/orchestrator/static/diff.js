// The diff of a task's branch on the task page: a page of files at a time from /api/tasks/<id>/diff, each
// line coloured as added / removed / hunk / header, and a light token colouring by the file's language.
// A diff is hostile text: every piece of it becomes a DOM text node (textContent), never markup.
"use strict";

const LANGS = {
  py: { comment: "#", words: "and as assert async await break class continue def del elif else except False finally for from global if import in is lambda None nonlocal not or pass raise return True try while with yield self" },
  js: { comment: "//", words: "async await break case catch class const continue default delete do else export extends false finally for function if import in instanceof let new null return super switch this throw true try typeof undefined var void while yield of" },
  go: { comment: "//", words: "break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var nil true false" },
  rs: { comment: "//", words: "as async await break const continue crate else enum extern false fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait true type unsafe use where while" },
  c: { comment: "//", words: "auto break case char const continue default do double else enum extern float for goto if int long register return short signed sizeof static struct switch typedef union unsigned void volatile while class public private protected new delete this true false null import package" },
  sh: { comment: "#", words: "if then else elif fi for while do done case esac function in return export local set echo" },
  conf: { comment: "#", words: "true false null" },
};
const EXT_LANG = {
  py: "py", js: "js", mjs: "js", cjs: "js", ts: "js", tsx: "js", jsx: "js", go: "go", rs: "rs",
  c: "c", h: "c", cc: "c", cpp: "c", hpp: "c", java: "c", kt: "c", cs: "c", swift: "c",
  sh: "sh", bash: "sh", zsh: "sh", toml: "conf", yaml: "conf", yml: "conf", ini: "conf", cfg: "conf",
};
const WORDS = Object.fromEntries(Object.entries(LANGS).map(([k, v]) => [k, new Set(v.words.split(" "))]));
const MAX_TOKEN_LINE = 400; // longer lines are shown plain

function langOf(path) {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase();
  return ext ? EXT_LANG[ext] || null : null;
}

// [[class, text], ...] covering `code` exactly.
function tokens(code, lang) {
  const def = LANGS[lang];
  const words = WORDS[lang];
  const c = def.comment === "#" ? "#" : "\\/\\/";
  const re = new RegExp(`(${c}.*$)|("(?:[^"\\\\]|\\\\.)*"?|'(?:[^'\\\\]|\\\\.)*'?|\`(?:[^\`\\\\]|\\\\.)*\`?)|(\\b\\d[\\d_.xXa-fA-F]*\\b)|([A-Za-z_$][\\w$]*)`, "g");
  const out = [];
  let last = 0;
  for (const m of code.matchAll(re)) {
    if (m.index > last) out.push(["", code.slice(last, m.index)]);
    const [text, comment, string, number, word] = m;
    if (comment) out.push(["tk-comment", text]);
    else if (string) out.push(["tk-string", text]);
    else if (number) out.push(["tk-number", text]);
    else if (word && words.has(word)) out.push(["tk-keyword", text]);
    else out.push(["", text]);
    last = m.index + text.length;
  }
  if (last < code.length) out.push(["", code.slice(last)]);
  return out;
}

function diffLine(line, lang) {
  const div = document.createElement("div");
  let kind = "ctx";
  if (line.startsWith("@@")) kind = "hunk";
  else if (/^(diff --git |index |--- |\+\+\+ |new file|deleted file|old mode|new mode|similarity|Binary files|\\ )/.test(line)) kind = "meta";
  else if (line.startsWith("+")) kind = "add";
  else if (line.startsWith("-")) kind = "del";
  div.className = `dl ${kind}`;
  if ((kind === "add" || kind === "del" || kind === "ctx") && lang && line.length <= MAX_TOKEN_LINE) {
    div.append(line.slice(0, 1));
    for (const [cls, text] of tokens(line.slice(1), lang)) {
      if (!cls) {
        div.append(text);
        continue;
      }
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      div.append(span);
    }
  } else div.textContent = line || " ";
  return div;
}

function diffFile(file) {
  const details = document.createElement("details");
  details.className = "diff-file";
  details.open = true;
  details.dataset.path = file.path;
  const summary = document.createElement("summary");
  const path = document.createElement("code");
  path.textContent = file.path;
  const stat = document.createElement("span");
  stat.className = "diff-stat";
  stat.textContent = file.binary ? "binary" : `+${file.additions} −${file.deletions}`;
  summary.append(path, " ", stat);
  details.append(summary);
  if (file.binary) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "A binary file: changed, not shown.";
    details.append(p);
    return details;
  }
  const pre = document.createElement("pre");
  pre.className = "diff-body";
  const lang = langOf(file.path);
  const lines = file.patch.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  for (const line of lines) pre.append(diffLine(line, lang));
  if (file.truncated) pre.append(Object.assign(document.createElement("div"), { className: "dl meta", textContent: "… more than the service shows at once" }));
  details.append(pre);
  return details;
}

let diffAsked = 0; // the latest request: an older answer arriving late is dropped

async function loadDiff(id, page) {
  const box = $("tp-diff");
  box.dataset.state = "loading";
  const asked = ++diffAsked;
  let diff;
  try {
    diff = await api(`/api/tasks/${encodeURIComponent(id)}/diff?page=${page}`);
  } catch (err) {
    if (taskView?.id !== id || asked !== diffAsked) return;
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = err.status === 404 ? "No branch to compare yet." : `The diff could not be read: ${err.message}`;
    box.replaceChildren(p);
    box.dataset.state = err.status === 404 ? "none" : "error";
    $("tp-diff-summary").textContent = "";
    $("tp-diff-page").textContent = "";
    $("tp-diff-prev").disabled = $("tp-diff-next").disabled = true;
    return;
  }
  if (taskView?.id !== id || asked !== diffAsked) return;
  taskView.diffPage = diff.page;
  taskView.diffPages = diff.pages;
  $("tp-diff-summary").textContent = `${diff.files_total} file${diff.files_total === 1 ? "" : "s"} · ${diff.branch} vs ${diff.base.slice(0, 12)}`;
  $("tp-diff-page").textContent = `Page ${diff.page} of ${diff.pages}`;
  $("tp-diff-prev").disabled = diff.page <= 1;
  $("tp-diff-next").disabled = diff.page >= diff.pages;
  box.replaceChildren(...diff.files.map(diffFile));
  if (!diff.files.length) box.append(Object.assign(document.createElement("p"), { className: "empty", textContent: "The branch changes nothing." }));
  if (diff.truncated) box.append(Object.assign(document.createElement("p"), { className: "hint", textContent: "Git said more than the service reads: the rest is not shown." }));
  box.dataset.state = "loaded";
  box.dataset.page = String(diff.page);
}

function wireDiff() {
  const go = (delta) => {
    if (!taskView) return;
    loadDiff(taskView.id, Math.min(Math.max((taskView.diffPage || 1) + delta, 1), taskView.diffPages || 1));
  };
  $("tp-diff-prev").onclick = () => go(-1);
  $("tp-diff-next").onclick = () => go(1);
  $("tp-diff-reload").onclick = () => taskView && loadDiff(taskView.id, taskView.diffPage || 1);
}

wireDiff();
