/** Server-sent events without I/O: text chunks become lines, lines become events. */

export interface ServerSentEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/** Splits a stream of text chunks into lines ending in `\n`, `\r\n` or `\r`, however the chunks fall. */
export class LineSplitter {
  private buffer = "";
  private pendingCR = false;

  push(chunk: string): string[] {
    let text = chunk;
    if (this.pendingCR && text.startsWith("\n")) text = text.slice(1); // the \n of a \r\n cut in two
    this.pendingCR = false;
    const lines: string[] = [];
    let start = 0;
    const all = this.buffer + text;
    const offset = this.buffer.length;
    this.buffer = "";
    for (let i = offset; i < all.length; i++) {
      const c = all[i];
      if (c !== "\n" && c !== "\r") continue;
      lines.push(all.slice(start, i));
      if (c === "\r") {
        if (i + 1 < all.length) {
          if (all[i + 1] === "\n") i++;
        } else {
          this.pendingCR = true;
        }
      }
      start = i + 1;
    }
    this.buffer = all.slice(start);
    return lines;
  }
}

/** Feed it the lines of an event stream; it returns an event at each blank line that ends one. */
export class SSEDecoder {
  private event = "";
  private id: string | undefined = undefined;
  private data: string[] = [];

  feed(line: string): ServerSentEvent | undefined {
    if (line === "") {
      if (this.data.length === 0 && !this.event) return undefined;
      const done: ServerSentEvent = { event: this.event || "message", id: this.id, data: this.data.join("\n") };
      this.event = "";
      this.id = undefined;
      this.data = [];
      return done;
    }
    if (line.startsWith(":")) return undefined; // a comment: the server's keep-alive
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.event = value;
    else if (name === "data") this.data.push(value);
    else if (name === "id" && !value.includes("\0")) this.id = value;
    return undefined;
  }
}
